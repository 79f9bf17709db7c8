# SPDX-License-Identifier: MIT
"""S3 for tests: a moto server on loopback and the production settings.

The fixtures built on these helpers live in ``tests/conftest.py`` (``s3``,
``s3_app``, ``s3_db``, ``s3_location``, ``s3_client``...), so that any test
file can run its paths with the files on S3.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import boto3
from flask import Config
from moto.server import ThreadedMotoServer

DEPLOYMENT_CONFIG = Path(__file__).parent.parent / "examples" / "deployment_config.py"
"""The production settings shown in ``docs/deployment.rst``."""

ACCESS_KEY_ID = "irf-test-key"
SECRET_ACCESS_KEY = "irf-test-secret"  # noqa: S105 - moto accepts any key
REGION_NAME = "us-east-1"


@contextmanager
def s3_server() -> Iterator[str]:
    """Run moto's S3 server on loopback; yield its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def deployment_settings(endpoint_url: str) -> dict:
    """Load the S3 settings of ``examples/deployment_config.py`` for a server.

    The file reads the server's address and keys from the environment, as in
    production; the environment is patched while it loads.
    """
    environment = {
        "S3_ENDPOINT_URL": endpoint_url,
        "S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "S3_REGION_NAME": REGION_NAME,
    }
    config = Config(str(DEPLOYMENT_CONFIG.parent))
    with mock.patch.dict(os.environ, environment):
        config.from_pyfile(str(DEPLOYMENT_CONFIG))
    return dict(config)


def client(settings: dict):
    """Return a boto3 S3 client for the server the settings name."""
    return boto3.client(
        "s3",
        endpoint_url=settings["S3_ENDPOINT_URL"],
        aws_access_key_id=settings["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=settings["S3_SECRET_ACCESS_KEY"],
        region_name=settings["S3_REGION_NAME"],
    )


def create_bucket(s3) -> str:
    """Create an S3 bucket of a unique name; return the name."""
    name = f"irf-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def delete_bucket(s3, name: str) -> None:
    """Delete an S3 bucket and everything in it."""
    for key in keys(s3, name):
        s3.delete_object(Bucket=name, Key=key)
    s3.delete_bucket(Bucket=name)


def keys(s3, bucket: str) -> list[str]:
    """Keys of the objects in an S3 bucket, sorted."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def key_of(fileinstance) -> str:
    """S3 key of a file instance's bytes (``s3://<bucket>/<key>``)."""
    return fileinstance.uri.split("/", 3)[3]
