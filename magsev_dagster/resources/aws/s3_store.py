"""The `storage` resource on AWS: raw objects in one S3 bucket, under the same keys as on disk (layout.py)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import boto3
from botocore.exceptions import ClientError
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from magsev_dagster.resources.aws.firehose import deliver
from magsev_dagster.resources.aws.missing import MissingAwsResource
from magsev_dagster.resources.storage import RawStore

DELETE_BATCH = 1000  # the most keys one DeleteObjects call accepts


class MissingAwsConfiguration(RuntimeError):
    """The AWS mode was chosen without what it needs to reach AWS."""


class S3AccessError(RuntimeError):
    """S3 refused or failed an operation; names the operation, the object and S3's error code."""


@contextmanager
def s3_errors(operation: str, uri: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Unknown"), error.get("Message", "")
        if code == "NoSuchBucket":  # whatever key was asked for: the bucket is the problem
            raise MissingAwsResource(
                "S3 bucket", uri.removeprefix("s3://").split("/", 1)[0], "MAGSEV_S3_BUCKET"
            ) from None
        hint = (
            " (the runs' role needs the policy of `make provision PROVISION_ARGS=--print-policy`)"
            if code in ("AccessDenied", "403")
            else ""
        )
        raise S3AccessError(f"S3 {operation} on {uri} failed: {code}: {message}{hint}") from None


class S3RawStore(RawStore):
    """Objects in `bucket`; a key is the object key. The client comes from dagster-aws's S3Resource,
    which follows the standard boto3 credential chain and AWS_ENDPOINT_URL."""

    bucket: str
    s3: S3Resource
    firehose_stream: str | None = None

    _client: object = PrivateAttr(default=None)

    def setup_for_execution(self, context) -> None:
        """Fail the run before any request or write when no AWS credentials can be found at all."""
        if boto3.Session().get_credentials() is None:
            raise MissingAwsConfiguration(
                "MAGSEV_ENV=aws but no AWS credentials were found (environment variables, ~/.aws, "
                "or an instance/task role): configure the standard boto3 credential chain"
            )

    @property
    def client(self):
        if self._client is None:
            self._client = self.s3.get_client()
        return self._client

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, data: bytes) -> None:
        # One PutObject: S3 makes the new object visible whole or not at all.
        with s3_errors("PutObject", self.uri(key)):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def stream(self, records: Iterable[bytes]) -> int:
        if not self.firehose_stream:
            return 0
        client = boto3.client("firehose", region_name=self.s3.region_name)
        return deliver(client, self.firehose_stream, list(records))

    def get(self, key: str) -> bytes:
        with s3_errors("GetObject", self.uri(key)):
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        with s3_errors("ListObjectsV2", self.uri(prefix)):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            with s3_errors("HeadObject", self.uri(key)):
                raise

    def has_prefix(self, prefix: str) -> bool:
        with s3_errors("ListObjectsV2", self.uri(prefix)):
            return self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0) > 0

    def list_folders(self, prefix: str) -> builtins.list[str]:  # `list` is the method above here
        """The 'sub-folders' (common prefixes) directly under `prefix`."""
        folders: list[str] = []
        with s3_errors("ListObjectsV2", self.uri(prefix)):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                folders.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        return sorted(folders)

    def delete(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            with s3_errors("DeleteObjects", self.uri(batch[0])):
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise S3AccessError(
                    f"S3 DeleteObjects failed for {len(response['Errors'])} keys, first "
                    f"{self.uri(first['Key'])}: {first.get('Code')}: {first.get('Message')}"
                )
        return len(keys)
