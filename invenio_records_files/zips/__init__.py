# SPDX-License-Identifier: MIT
"""The zip format, pure: layouts, streaming and reading, with no I/O of its own.

Imports only the standard library and :mod:`invenio_records_files.errors`
(checked by import-linter). Bytes come in through small protocols
(:class:`~.stream.MemberSource`, seekable streams); the CRC-32 function is
passed in by the caller.

.. versionadded:: 5.0.0
"""
