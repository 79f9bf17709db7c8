# SPDX-License-Identifier: MIT
"""JSON schemas of the fields Invenio-Records-Files manages in a record."""
