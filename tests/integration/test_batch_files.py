"""The batch lane's JSONL round trip through S3 (moto): the input a job reads, the output Bedrock writes beside it, and
every task's outcome read back, however damaged the output is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agentrail_runtime.batch.files import BatchFiles
from agentrail_runtime.batch.records import converse_record, emulate_job, input_jsonl, read_output
from agentrail_runtime.models.local import LocalModel

BUCKET = "agentrail-batch"
TASKS = [f"{n:032x}" for n in range(1, 21)]


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def records() -> bytes:
    return input_jsonl(
        [
            (t, converse_record(system="Be brief.", message=f"My city is Lyon number {n}.", max_tokens=100))
            for n, t in enumerate(TASKS)
        ]
    )


def test_twenty_tasks_make_one_input_file_and_every_answer_reads_back_from_the_output_folder(s3: Any) -> None:
    files = BatchFiles(BUCKET, client=s3)
    location = files.write_input("job-0001", records())

    # The job (local mode's emulation of CreateModelInvocationJob) reads the input and writes beside it, as Bedrock does.
    files.write_output(location, "a1b2c3d4e5f6", emulate_job(files.read_input(location).splitlines(), LocalModel()))
    s3.put_object(Bucket=BUCKET, Key=f"{location.output_prefix}a1b2c3d4e5f6/manifest.json.out", Body=b'{"totalRecordCount": 20}')

    read = read_output(files.output_lines(location), TASKS, model="local")

    assert location.input_uri == f"s3://{BUCKET}/batch/job-0001/input/records.jsonl"
    assert location.output_uri == f"s3://{BUCKET}/batch/job-0001/output/"
    assert files.output_keys(location) == ["batch/job-0001/output/a1b2c3d4e5f6/records.jsonl.out"]  # not the manifest
    assert [o.ok for o in read.outcomes.values()] == [True] * 20
    assert read.outcomes[TASKS[7]].response.message.text == "Noted: your city is Lyon number 7."  # type: ignore[union-attr]


def test_an_output_with_a_cut_line_a_lost_record_and_a_stray_file_still_accounts_for_every_task(s3: Any) -> None:
    files = BatchFiles(BUCKET, client=s3)
    location = files.write_input("job-0002", records())
    lines = emulate_job(files.read_input(location).splitlines(), LocalModel()).decode().splitlines()
    damaged = [
        line[:40] if json.loads(line)["recordId"] == TASKS[3] else line
        for line in lines
        if json.loads(line)["recordId"] != TASKS[9]
    ]
    files.write_output(location, "job-a", "\n".join(damaged[:10]).encode())  # the output split over two files
    files.write_output(location, "job-b", "\n".join(damaged[10:]).encode())
    s3.put_object(Bucket=BUCKET, Key="batch/job-0003/output/x/records.jsonl.out", Body=lines[0].encode())  # another job's

    read = read_output(files.output_lines(location), TASKS, model="local")

    failed = {task_id: outcome.cause for task_id, outcome in read.outcomes.items() if not outcome.ok}
    assert failed == {
        TASKS[3]: "the job's output has no record for the task",
        TASKS[9]: "the job's output has no record for the task",
    }
    assert sum(o.ok for o in read.outcomes.values()) == 18
    assert read.malformed == 1
