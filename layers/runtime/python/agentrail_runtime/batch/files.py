"""A batch job's files in S3: the input JSONL the lane writes, and the output Bedrock writes beside it.

Layout under the lane's bucket, one folder per job (``<prefix>/<job name>/``):

- ``input/records.jsonl``: the records (:func:`~agentrail_runtime.batch.records.input_jsonl`);
- ``output/``: the job's output location; Bedrock writes ``<job id>/records.jsonl.out`` (one line per record) and
  ``<job id>/manifest.json.out`` under it.

:meth:`BatchFiles.output_lines` reads every ``.jsonl.out`` under a job's output location, whatever job id folder
Bedrock chose, line by line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agentrail_runtime import aws

__all__ = ["INPUT_FILE", "BatchFiles", "JobLocation"]

#: The one input file of a job, under its ``input/`` folder.
INPUT_FILE = "records.jsonl"
#: What Bedrock appends to an input file's name for its output file.
OUTPUT_SUFFIX = ".jsonl.out"


@dataclass(frozen=True)
class JobLocation:
    """Where one job's files are: its input file's URI and its output folder's."""

    bucket: str
    folder: str

    @property
    def input_key(self) -> str:
        return f"{self.folder}/input/{INPUT_FILE}"

    @property
    def output_prefix(self) -> str:
        return f"{self.folder}/output/"

    @property
    def input_uri(self) -> str:
        return f"s3://{self.bucket}/{self.input_key}"

    @property
    def output_uri(self) -> str:
        return f"s3://{self.bucket}/{self.output_prefix}"


class BatchFiles:
    """The lane's bucket (``AGENT_BATCH_BUCKET``): each job's input and output, under ``prefix``.

    Parameters
    ----------
    bucket:
        The bucket's name.
    prefix:
        The folder of every job. Default: ``batch``.
    client:
        An S3 client. Default: :func:`agentrail_runtime.aws.client`'s, made on first use.
    """

    client = aws.LazyClient("s3")

    def __init__(self, bucket: str, *, prefix: str = "batch", client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client

    def location(self, job_name: str) -> JobLocation:
        return JobLocation(self.bucket, f"{self.prefix}/{job_name}")

    def write_input(self, job_name: str, body: bytes) -> JobLocation:
        """Store a job's input file; where its files are. Written again with the same body, it is the same file."""
        location = self.location(job_name)
        self.client.put_object(Bucket=self.bucket, Key=location.input_key, Body=body, ContentType="application/jsonl")
        return location

    def has_input(self, location: JobLocation) -> bool:
        """Whether the job's input file was written."""
        listed = self.client.list_objects_v2(Bucket=location.bucket, Prefix=location.input_key, MaxKeys=1)
        return any(item["Key"] == location.input_key for item in listed.get("Contents", []))

    def read_input(self, location: JobLocation) -> bytes:
        return bytes(self.client.get_object(Bucket=location.bucket, Key=location.input_key)["Body"].read())

    def output_keys(self, location: JobLocation) -> list[str]:
        """The output files Bedrock wrote for the job (every ``.jsonl.out`` under its output folder), sorted."""
        keys: list[str] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.output_prefix)
        for page in pages:
            keys.extend(item["Key"] for item in page.get("Contents", []) if item["Key"].endswith(OUTPUT_SUFFIX))
        return sorted(keys)

    def output_lines(self, location: JobLocation) -> Iterator[bytes]:
        """Every line of every output file of the job, file after file."""
        for key in self.output_keys(location):
            body = self.client.get_object(Bucket=location.bucket, Key=key)["Body"]
            yield from body.iter_lines()

    def delete_job(self, job_name: str) -> int:
        """Delete every file of the job (its input and output hold the tasks' messages and answers, which the tasks
        now keep); how many."""
        prefix = f"{self.location(job_name).folder}/"
        keys = [
            item["Key"]
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True})
        return len(keys)

    def write_output(self, location: JobLocation, job_id: str, body: bytes) -> str:
        """Store a job's output file as Bedrock does (``<output>/<job id>/records.jsonl.out``): what local mode's
        emulated job writes. Returns its key."""
        key = f"{location.output_prefix}{job_id}/{INPUT_FILE}.out"
        self.client.put_object(Bucket=location.bucket, Key=key, Body=body, ContentType="application/jsonl")
        return key
