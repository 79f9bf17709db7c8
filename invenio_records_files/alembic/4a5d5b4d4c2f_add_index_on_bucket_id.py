# SPDX-License-Identifier: MIT
"""Add an index on records_buckets.bucket_id."""

from alembic import op

# revision identifiers, used by Alembic.
revision = "4a5d5b4d4c2f"
down_revision = "1ba76da94103"
branch_labels = ()
depends_on = None


def upgrade():
    """Upgrade database."""
    op.create_index(
        op.f("ix_records_buckets_bucket_id"),
        "records_buckets",
        ["bucket_id"],
        unique=False,
    )


def downgrade():
    """Downgrade database."""
    op.drop_index(op.f("ix_records_buckets_bucket_id"), table_name="records_buckets")
