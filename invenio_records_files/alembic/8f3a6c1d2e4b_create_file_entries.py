# SPDX-License-Identifier: MIT
"""Create the records_files_entries table (one row per file of a record).

Records written by earlier versions keep ``_files`` in their JSON; they move
to rows on their next write, or all at once with
``flask records-files check --fix``.
"""

import sqlalchemy as sa
import sqlalchemy_utils
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

# revision identifiers, used by Alembic.
revision = "8f3a6c1d2e4b"
down_revision = "4a5d5b4d4c2f"
branch_labels = ()
depends_on = None


def upgrade():
    """Upgrade database."""
    op.create_table(
        "records_files_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("record_id", sqlalchemy_utils.types.uuid.UUIDType(), nullable=False),
        sa.Column(
            "key", sa.Text().with_variant(mysql.VARCHAR(255), "mysql"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column(
            "data",
            sa.JSON()
            .with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
            .with_variant(sqlalchemy_utils.types.json.JSONType(), "sqlite")
            .with_variant(sqlalchemy_utils.types.json.JSONType(), "mysql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records_metadata.id"],
            name=op.f("fk_records_files_entries_record_id_records_metadata"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records_files_entries")),
        sa.UniqueConstraint(
            "record_id", "key", name="uq_records_files_entries_record_id_key"
        ),
    )


def downgrade():
    """Downgrade database."""
    op.drop_table("records_files_entries")
