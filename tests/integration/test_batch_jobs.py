"""Bedrock batch inference jobs through a real ``bedrock`` client with botocore's Stubber (moto has no batch jobs)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from agentrail_runtime.batch.files import JobLocation
from agentrail_runtime.batch.jobs import BatchJobError, BatchJobs

ROLE = "arn:aws:iam::123456789012:role/agentrail-batch"
JOB_ARN = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/a1b2c3d4e5f6"
LOCATION = JobLocation("agentrail-batch", "batch/job-0001")


@pytest.fixture
def bedrock() -> Iterator[tuple[BatchJobs, Stubber]]:
    client = boto3.client("bedrock", region_name="us-east-1")
    with Stubber(client) as stub:
        yield BatchJobs(ROLE, client=client), stub
        stub.assert_no_pending_responses()


def described(status: str, **fields: object) -> dict:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return {
        "jobArn": JOB_ARN,
        "jobName": "job-0001",
        "modelId": "amazon.nova-lite-v1:0",
        "roleArn": ROLE,
        "status": status,
        "submitTime": at,
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": LOCATION.input_uri}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": LOCATION.output_uri}},
        **fields,
    }


def test_a_job_is_submitted_over_its_files_as_converse_records_with_its_name_as_the_request_token(bedrock) -> None:
    jobs, stub = bedrock
    stub.add_response(
        "create_model_invocation_job",
        {"jobArn": JOB_ARN},
        expected_params={
            "jobName": "job-0001",
            "clientRequestToken": "job-0001",
            "roleArn": ROLE,
            "modelId": "amazon.nova-lite-v1:0",
            "modelInvocationType": "Converse",
            "inputDataConfig": {
                "s3InputDataConfig": {
                    "s3Uri": "s3://agentrail-batch/batch/job-0001/input/records.jsonl",
                    "s3InputFormat": "JSONL",
                }
            },
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://agentrail-batch/batch/job-0001/output/"}},
            "timeoutDurationInHours": 24,
        },
    )

    assert jobs.submit("job-0001", "amazon.nova-lite-v1:0", LOCATION) == JOB_ARN


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ("Submitted", "running"),
        ("Validating", "running"),
        ("Scheduled", "running"),
        ("InProgress", "running"),
        ("Stopping", "running"),
        ("Completed", "done"),
        ("PartiallyCompleted", "done"),
        ("Failed", "failed"),
        ("Stopped", "failed"),
        ("Expired", "failed"),
    ],
)
def test_each_bedrock_status_tells_the_lane_to_wait_read_or_give_up(bedrock, status: str, phase: str) -> None:
    jobs, stub = bedrock
    stub.add_response(
        "get_model_invocation_job",
        described(status, message="", totalRecordCount=20, successRecordCount=18, errorRecordCount=2),
        expected_params={"jobIdentifier": JOB_ARN},
    )

    state = jobs.state(JOB_ARN)

    assert (state.status, state.phase, state.total, state.succeeded, state.errored) == (status, phase, 20, 18, 2)


def test_a_refused_job_raises_one_sentence_naming_it_and_bedrocks_code(bedrock) -> None:
    jobs, stub = bedrock
    stub.add_client_error("create_model_invocation_job", service_error_code="ServiceQuotaExceededException", http_status_code=400)
    stub.add_client_error("get_model_invocation_job", service_error_code="ResourceNotFoundException", http_status_code=404)

    with pytest.raises(BatchJobError) as refused:
        jobs.submit("job-0002", "amazon.nova-lite-v1:0", LOCATION)
    with pytest.raises(BatchJobError) as unknown:
        jobs.state(JOB_ARN)

    assert str(refused.value) == "Bedrock refused batch job job-0002 (ServiceQuotaExceededException)."
    assert str(unknown.value) == f"Bedrock could not describe batch job {JOB_ARN} (ResourceNotFoundException)."
