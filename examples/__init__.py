# SPDX-License-Identifier: MIT
"""Examples."""
