# SPDX-License-Identifier: MIT
"""Create records files tables."""

import sqlalchemy as sa
import sqlalchemy_utils
from alembic import op

# revision identifiers, used by Alembic.
revision = "1ba76da94103"
down_revision = "2da9a03b0833"
branch_labels = ()
# The records and files tables must exist first.
depends_on = ("862037093962", "2e97565eba72")


def upgrade():
    """Upgrade database."""
    op.create_table(
        "records_buckets",
        sa.Column("record_id", sqlalchemy_utils.types.uuid.UUIDType(), nullable=False),
        sa.Column("bucket_id", sqlalchemy_utils.types.uuid.UUIDType(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bucket_id"],
            ["files_bucket.id"],
            name=op.f("fk_records_buckets_bucket_id_files_bucket"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records_metadata.id"],
            name=op.f("fk_records_buckets_record_id_records_metadata"),
        ),
        sa.PrimaryKeyConstraint(
            "record_id", "bucket_id", name=op.f("pk_records_buckets")
        ),
    )


def downgrade():
    """Downgrade database."""
    op.drop_table("records_buckets")
