# SPDX-License-Identifier: MIT
"""Create records files branch."""

# revision identifiers, used by Alembic.
revision = "2da9a03b0833"
down_revision = None
branch_labels = ("invenio_records_files",)
depends_on = "dbdbc1b19cf2"


def upgrade():
    """Upgrade database."""


def downgrade():
    """Downgrade database."""
