# SPDX-License-Identifier: MIT
"""Records with files: the mapping API (``record.files``) and per-record state.

:mod:`.record` (``Record``, ``FilesMixin``), :mod:`.files` (``FilesIterator``,
``FileObject``), :mod:`.state` (what a record knows about its files within a
transaction) and :mod:`.extension` (the Invenio-Records extension). Imports
:mod:`invenio_records_files.store`, never the REST layer.

.. versionadded:: 5.0.0
"""
