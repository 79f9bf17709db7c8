# SPDX-License-Identifier: MIT
"""Invenio-Records-Files: records that own a bucket of files."""

from setuptools import setup

setup()
