"""Bedrock batch inference jobs: submit one over a job's files, and read where it stands.

A job is submitted with ``CreateModelInvocationJob`` (Converse records, the lane's role, a 24-hour timeout, the job
name as its client request token, so a retried submit starts no second job) and polled with
``GetModelInvocationJob``. :class:`JobState` says what the lane does next:

- ``running`` (``Submitted``, ``Validating``, ``Scheduled``, ``InProgress``, ``Stopping``): wait;
- ``done`` (``Completed``, ``PartiallyCompleted``): read the output; a record without an answer fails its task only;
- ``failed`` (``Failed``, ``Stopped``, ``Expired``): the job's tasks run again or fail, with the job's message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from agentrail_runtime import aws
from agentrail_runtime.batch.files import BatchFiles, JobLocation
from agentrail_runtime.batch.records import emulate_job
from agentrail_runtime.contract import BATCH_WINDOW_HOURS
from agentrail_runtime.models.base import ModelProvider

__all__ = ["JOB_TIMEOUT_HOURS", "BatchJobError", "BatchJobs", "JobState", "LocalBatchJobs"]

#: How long Bedrock may take over a job before it expires it: its shortest allowed timeout (the completion window).
JOB_TIMEOUT_HOURS = BATCH_WINDOW_HOURS
_RUNNING = frozenset({"Submitted", "Validating", "Scheduled", "InProgress", "Stopping"})
_DONE = frozenset({"Completed", "PartiallyCompleted"})


class BatchJobError(RuntimeError):
    """Bedrock refused to start or to describe a job; the message names the job and Bedrock's error code."""


@dataclass(frozen=True)
class JobState:
    """Where a job stands: Bedrock's ``status``, what it means for the lane (``phase``), Bedrock's ``message`` and
    its record counts."""

    job_arn: str
    status: str
    phase: Literal["running", "done", "failed"]
    message: str = ""
    total: int = 0
    succeeded: int = 0
    errored: int = 0


class BatchJobs:
    """Submits and describes the lane's jobs.

    Parameters
    ----------
    role_arn:
        The role Bedrock assumes to read the job's input and write its output (``AGENT_BATCH_ROLE_ARN``).
    client:
        A ``bedrock`` client. Default: :func:`agentrail_runtime.aws.client`'s, made on first use.
    """

    client = aws.LazyClient("bedrock")

    def __init__(self, role_arn: str, *, client: Any = None) -> None:
        self.role_arn = role_arn
        self.client = client

    def submit(self, job_name: str, model_id: str, location: JobLocation) -> str:
        """Start the job over ``location``'s files on ``model_id``; its ARN. Submitting the same ``job_name`` again
        (a retried step) returns the same job.

        Raises
        ------
        BatchJobError
            Bedrock refused the job (its quota of jobs in flight, a model without batch inference, access).
        """
        try:
            response = self.client.create_model_invocation_job(
                jobName=job_name,
                clientRequestToken=job_name,
                roleArn=self.role_arn,
                modelId=model_id,
                modelInvocationType="Converse",
                inputDataConfig={"s3InputDataConfig": {"s3Uri": location.input_uri, "s3InputFormat": "JSONL"}},
                outputDataConfig={"s3OutputDataConfig": {"s3Uri": location.output_uri}},
                timeoutDurationInHours=JOB_TIMEOUT_HOURS,
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise BatchJobError(f"Bedrock refused batch job {job_name} ({code}).") from None
        except BotoCoreError as error:
            raise BatchJobError(f"Bedrock could not be reached to start batch job {job_name} ({type(error).__name__}).") from None
        return str(response["jobArn"])

    def state(self, job_arn: str) -> JobState:
        """Where the job stands.

        Raises
        ------
        BatchJobError
            Bedrock could not describe it.
        """
        try:
            job = self.client.get_model_invocation_job(jobIdentifier=job_arn)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise BatchJobError(f"Bedrock could not describe batch job {job_arn} ({code}).") from None
        except BotoCoreError as error:
            raise BatchJobError(
                f"Bedrock could not be reached to describe batch job {job_arn} ({type(error).__name__})."
            ) from None
        status = str(job.get("status", ""))
        phase: Literal["running", "done", "failed"] = "running" if status in _RUNNING else "done" if status in _DONE else "failed"
        return JobState(
            job_arn=job_arn,
            status=status,
            phase=phase,
            message=str(job.get("message") or ""),
            total=int(job.get("totalRecordCount") or 0),
            succeeded=int(job.get("successRecordCount") or 0),
            errored=int(job.get("errorRecordCount") or 0),
        )


class LocalBatchJobs:
    """``CreateModelInvocationJob`` as local mode runs it, for the local model (Bedrock cannot run it, and moto has no
    batch jobs): :meth:`submit` answers every record of the job's input file on ``provider``
    (:func:`~agentrail_runtime.batch.records.emulate_job`) and writes the output file where Bedrock would, so the lane
    reads it back as it reads a real job's. The job has then ended: :meth:`state` says ``Completed``.

    Parameters
    ----------
    files:
        The lane's bucket.
    provider:
        The model that answers the records (the local model).
    """

    def __init__(self, files: BatchFiles, provider: ModelProvider) -> None:
        self.files = files
        self.provider = provider

    def submit(self, job_name: str, model_id: str, location: JobLocation) -> str:
        """Run the job over ``location``'s input, once: submitting the same job again (a retried step) finds its
        output and runs nothing. Its ARN names the job."""
        if not self.files.output_keys(location):
            body = emulate_job(self.files.read_input(location).splitlines(), self.provider)
            self.files.write_output(location, job_name, body)
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        return f"arn:aws:bedrock:{region}:000000000000:model-invocation-job/{job_name}"

    def state(self, job_arn: str) -> JobState:
        return JobState(job_arn=job_arn, status="Completed", phase="done")
