# SPDX-License-Identifier: MIT
"""Alembic migrations of the ``invenio_records_files`` branch."""
