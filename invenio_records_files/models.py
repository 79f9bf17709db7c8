# SPDX-License-Identifier: MIT
"""Link between records and buckets."""

from invenio_db import db
from invenio_files_rest.models import Bucket
from invenio_records.models import RecordMetadata
from sqlalchemy_utils.types import UUIDType


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
