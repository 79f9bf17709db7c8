# SPDX-License-Identifier: MIT
"""Create the CRC-32 cache of archived files."""

import sqlalchemy as sa
import sqlalchemy_utils
from alembic import op

# revision identifiers, used by Alembic.
revision = "7c3e91a4d2b6"
down_revision = "8f3a6c1d2e4b"
branch_labels = ()
depends_on = None


def upgrade():
    """Upgrade database."""
    op.create_table(
        "records_files_crc32",
        sa.Column("file_id", sqlalchemy_utils.types.uuid.UUIDType(), nullable=False),
        sa.Column("crc32", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["files_files.id"],
            name=op.f("fk_records_files_crc32_file_id_files_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_records_files_crc32")),
    )


def downgrade():
    """Downgrade database."""
    op.drop_table("records_files_crc32")
