# SPDX-License-Identifier: MIT
"""What a request may do and how a write is carried out, without HTTP.

:mod:`.access` holds ``authorize``, the one permission decision of every
read and write path; :mod:`.files` the writes of the REST endpoints (locks,
publication, the record's revision). Imports ``records`` and ``store``,
never ``rest``.

.. versionadded:: 5.0.0
"""
