# SPDX-License-Identifier: MIT
"""Sphinx configuration of Invenio-Records-Files."""

import os
import sys

import invenio_records_files

# The doctests use the example application (examples/app.py).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

project = "Invenio-Records-Files"
author = "CERN and the Invenio-Records-Files authors"
project_copyright = "2016-2019 CERN, 2026 The Invenio-Records-Files authors"
version = release = invenio_records_files.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
]

master_doc = "index"
exclude_patterns = ["_build"]
pygments_style = "sphinx"

# No intersphinx (the docs build offline): references to other Invenio
# modules' classes stay plain text instead of failing the build.
nitpicky = False

autodoc_member_order = "bysource"
# Types go next to the parameters that are documented, not into signatures.
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"

html_theme = "alabaster"
html_theme_options = {
    "description": "Records that own a bucket of files.",
    "github_user": "inveniosoftware",
    "github_repo": "invenio-records-files",
    "github_button": False,
}
html_static_path = []
