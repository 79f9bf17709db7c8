# SPDX-License-Identifier: MIT
"""Maintenance: the consistency check, fixity verification and their commands.

.. versionadded:: 5.0.0
"""
