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
    if op.get_context().dialect.name != "mysql":
        op.drop_index(
            op.f("ix_records_buckets_bucket_id"), table_name="records_buckets"
        )
        return
    # InnoDB keeps an index on a foreign key's columns: it dropped the one it
    # made for the foreign key when the upgrade created this one, and refuses
    # to drop this one. Re-creating the foreign key gives it its own again.
    foreign_key = op.f("fk_records_buckets_bucket_id_files_bucket")
    op.drop_constraint(foreign_key, "records_buckets", type_="foreignkey")
    op.drop_index(op.f("ix_records_buckets_bucket_id"), table_name="records_buckets")
    op.create_foreign_key(
        foreign_key, "records_buckets", "files_bucket", ["bucket_id"], ["id"]
    )
