# SPDX-License-Identifier: MIT
"""Database models: records and buckets, file entries, a CRC-32 cache."""

from invenio_db import db
from invenio_files_rest.models import Bucket, FileInstance
from invenio_records.models import RecordMetadata
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy_utils.types import JSONType, UUIDType


class RecordsBuckets(db.Model):
    """Relationship between Records and Buckets."""

    __tablename__ = "records_buckets"

    record_id = db.Column(
        UUIDType,
        db.ForeignKey(RecordMetadata.id),
        primary_key=True,
        nullable=False,
    )
    """Record related with the bucket."""

    bucket_id = db.Column(
        UUIDType,
        db.ForeignKey(Bucket.id),
        primary_key=True,
        nullable=False,
        index=True,
    )
    """Bucket related with the record."""

    bucket = db.relationship(Bucket)
    """Relationship to the bucket."""

    record = db.relationship(RecordMetadata)
    """Relationship to the record."""

    @classmethod
    def create(cls, record, bucket: Bucket) -> "RecordsBuckets":
        """Create a new RecordsBuckets and add it to the session.

        Nothing is committed: the caller owns the transaction.

        :param record: Record used to relate with the Bucket (a
            :class:`~invenio_records.models.RecordMetadata` or a record API
            object with a ``model``).
        :param bucket: Bucket used to relate with the Record.
        :returns: The :class:`RecordsBuckets` object created.
        """
        model = getattr(record, "model", record)
        with db.session.begin_nested():
            obj = cls(record=model, bucket=bucket)
            db.session.add(obj)
        return obj


class FileEntry(db.Model):
    """A file of a record: its place in the record's order and its metadata.

    One row per file the record lists in ``_files``. The bucket holds the
    file itself (its head :class:`~invenio_files_rest.models.ObjectVersion`
    under the same ``key``); the row holds what the record adds to it: the
    position of the file in the record's order and the file's metadata
    (``description``, ``type``, ...). ``_files`` is built from these rows and
    the bucket when the record is loaded, so that a change to one file
    writes one small row instead of the whole list.

    .. versionadded:: 5.0.0
    """

    __tablename__ = "records_files_entries"
    __table_args__ = (
        db.UniqueConstraint(
            "record_id", "key", name="uq_records_files_entries_record_id_key"
        ),
    )

    id = db.Column(
        db.BigInteger().with_variant(db.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    """Surrogate key; files appended to a record follow in ``id`` order."""

    record_id = db.Column(
        UUIDType,
        db.ForeignKey(RecordMetadata.id, ondelete="CASCADE"),
        nullable=False,
    )
    """The record that lists the file."""

    key = db.Column(
        db.Text().with_variant(mysql.VARCHAR(255), "mysql"),
        nullable=False,
    )
    """Key of the file in the record's bucket."""

    position = db.Column(db.Integer, nullable=True)
    """Place set by ``sort_by()``; ``NULL`` for files added since (they
    follow, in the order they were added)."""

    data = db.Column(
        db.JSON()
        .with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
        .with_variant(JSONType(), "sqlite")
        .with_variant(JSONType(), "mysql"),
        nullable=False,
        default=dict,
    )
    """Metadata of the file set by the application (never the fields the
    bucket provides: ``key``, ``bucket``, ``version_id``, ``file_id``,
    ``size``, ``checksum``)."""


class FileCRC32(db.Model):
    """CRC-32 of a file instance, computed while streaming it into an archive.

    Zip archives need each member's CRC-32 in their central directory, and
    Invenio-Files-REST keeps only an MD5 checksum: a resumed archive download
    takes the CRC-32 of the members it does not send whole from here. A value
    is used only while the file instance still has the size and checksum it
    was computed for.

    .. versionadded:: 5.0.0
    """

    __tablename__ = "records_files_crc32"

    file_id = db.Column(
        UUIDType,
        db.ForeignKey(FileInstance.id, ondelete="CASCADE"),
        primary_key=True,
    )
    """File instance whose bytes were read."""

    crc32 = db.Column(db.BigInteger, nullable=False)
    """CRC-32 of the bytes (0 to 2**32 - 1)."""

    size = db.Column(db.BigInteger, nullable=False)
    """Size of the file instance when the CRC-32 was computed."""

    checksum = db.Column(db.String(255), nullable=True)
    """Checksum of the file instance when the CRC-32 was computed."""
