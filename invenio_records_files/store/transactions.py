# SPDX-License-Identifier: MIT
"""Follow a session's savepoints: what still stands, and what to do on commit.

A row lock taken, or a file scheduled for removal, inside a savepoint lasts
as long as that savepoint: rolling it back undoes it, releasing it hands it
over to the enclosing transaction, and only the outermost commit makes it
final. SQLAlchemy does not say which of these happened to an earlier
savepoint, so two session listeners keep track:

* ``after_commit`` records that a released savepoint now belongs to its
  parent, and runs the callbacks registered with :func:`on_commit` once the
  outermost transaction has committed;
* ``after_transaction_end`` drops the callbacks of a transaction that ended
  without committing (rolled back, or closed by its parent's rollback).

The listeners are attached to the class of the application's session (see
:func:`listen`), never to SQLAlchemy's ``Session`` base class, so sessions
of other applications in the process are left alone.

.. versionadded:: 5.0.0
"""

from collections.abc import Callable

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, scoped_session

_HANDED_OVER = "invenio_records_files.handed_over"
_CALLBACKS = "invenio_records_files.on_commit"
_CHECKS = "invenio_records_files.before_commit"
_LISTENING = "_invenio_records_files_listening"


def current(session: Session) -> SessionTransaction | None:
    """Return the innermost transaction of ``session`` (``None`` if none)."""
    return session.get_nested_transaction() or session.get_transaction()


def stands(session: Session, transaction: SessionTransaction | None) -> bool:
    """Tell whether what was done in ``transaction`` still holds.

    True while ``transaction`` is open, or was released into a transaction
    that is still open; false once it, or one it was released into, rolled
    back, and once the outermost transaction ended.
    """
    if transaction is None:
        return False
    chain = set()
    node = current(session)
    while node is not None:
        chain.add(node)
        node = node.parent
    handed_over = session.info.get(_HANDED_OVER, {})
    while transaction is not None:
        if transaction in chain:
            return True
        transaction = handed_over.get(transaction)
    return False


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the current transaction is committed for good.

    That is after the outermost transaction commits, if the current
    transaction (a savepoint, maybe) and every enclosing one commit; never
    if any of them rolls back. Rolling back an unrelated savepoint changes
    nothing. Without an open transaction the callback runs at once.
    """
    transaction = current(session)
    if transaction is None:
        callback()
        return
    listen(session)
    session.info.setdefault(_CALLBACKS, {}).setdefault(transaction, []).append(callback)


def before_commit(session: Session, check: Callable[[], None]) -> None:
    """Call ``check`` before the outermost transaction commits (once).

    An exception ``check`` raises stops the commit. Forgotten when the
    outermost transaction ends either way.
    """
    listen(session)
    session.info.setdefault(_CHECKS, []).append(check)


def listen(session: Session | scoped_session) -> None:
    """Attach the listeners to the class of ``session`` (once)."""
    target = session.session_factory if isinstance(session, scoped_session) else session
    target = getattr(target, "class_", None) or type(target)
    if not vars(target).get(_LISTENING):
        event.listen(target, "before_commit", _before_commit)
        event.listen(target, "after_commit", _after_commit)
        event.listen(target, "after_transaction_end", _after_transaction_end)
        setattr(target, _LISTENING, True)


def _before_commit(session: Session) -> None:
    transaction = current(session)
    if transaction is None or transaction.parent is not None:
        return
    checks = session.info.get(_CHECKS)
    for check in checks or ():
        check()  # a failed check stays until the transaction ends
    session.info.pop(_CHECKS, None)


def _after_commit(session: Session) -> None:
    transaction = current(session)
    if transaction is None:
        return
    callbacks = session.info.get(_CALLBACKS, {}).pop(transaction, [])
    parent = transaction.parent
    if parent is not None:
        session.info.setdefault(_HANDED_OVER, {})[transaction] = parent
        if callbacks:
            session.info[_CALLBACKS].setdefault(parent, []).extend(callbacks)
        return
    for callback in callbacks:
        try:
            callback()
        except Exception:
            current_app.logger.exception("A callback after commit failed.")


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    callbacks = session.info.get(_CALLBACKS)
    if callbacks:
        callbacks.pop(transaction, None)
    if transaction.parent is None:
        session.info.pop(_HANDED_OVER, None)
        session.info.pop(_CALLBACKS, None)
        session.info.pop(_CHECKS, None)
