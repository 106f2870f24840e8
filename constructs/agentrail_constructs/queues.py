"""Encrypted SQS queues that always come with a dead-letter queue."""

from __future__ import annotations

from typing import TypedDict

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from agentrail_constructs.nag import acknowledge, default_resource, skip_checkov


class _Encryption(TypedDict, total=False):
    """The encryption keyword arguments of ``sqs.Queue``."""

    encryption: sqs.QueueEncryption
    encryption_master_key: kms.IKey


def _encryption(key: kms.IKey | None) -> _Encryption:
    if key is not None:
        return {"encryption": sqs.QueueEncryption.KMS, "encryption_master_key": key}
    return {"encryption": sqs.QueueEncryption.SQS_MANAGED}


def _skip_sse_check(queue: sqs.Queue, key: kms.IKey | None) -> None:
    if key is None:
        skip_checkov(
            default_resource(queue),
            "CKV_AWS_27",
            "Encrypted with SQS managed keys (SqsManagedSseEnabled), which this check does not recognize; give the "
            "construct an encryption_key for a customer managed key.",
        )


def visibility_timeout_for(consumer_timeout: Duration) -> Duration:
    """Six times the consuming function's timeout: AWS's guidance for a queue that is a Lambda event source."""
    return Duration.seconds(6 * consumer_timeout.to_seconds())


#: Node metadata (in the cloud assembly, not the template) naming what a queue is for.
ROLE_METADATA = "agentrail:role"
DEAD_LETTER_ROLE = "dead-letter-queue"


def dead_letter_queue(
    scope: Construct, construct_id: str, *, encryption_key: kms.IKey | None = None, fifo: bool = False
) -> sqs.Queue:
    """An encrypted, SSL-only queue that is itself a dead-letter queue (for event source and async-invoke failures)."""
    queue = sqs.Queue(
        scope,
        construct_id,
        fifo=fifo or None,
        retention_period=Duration.days(14),
        enforce_ssl=True,
        **_encryption(encryption_key),
    )
    acknowledge(
        default_resource(queue),
        "SQS3",
        "This queue is itself the dead-letter queue; its messages are inspected and redriven with `agentrail dlq`.",
    )
    _skip_sse_check(queue, encryption_key)
    queue.node.add_metadata(ROLE_METADATA, DEAD_LETTER_ROLE)
    return queue


def is_dead_letter_queue(queue: sqs.IQueue) -> bool:
    """Whether ``queue`` was made by :func:`dead_letter_queue` (AgentMonitoring alarms on any message in it)."""
    return any(entry.type == ROLE_METADATA and entry.data == DEAD_LETTER_ROLE for entry in queue.node.metadata)


class QueueWithDeadLetters(Construct):
    """A queue, its dead-letter queue, SSL enforced and server-side encryption on both.

    Parameters
    ----------
    visibility_timeout:
        At least six times the consumer's timeout (AWS's guidance for Lambda event sources).
    max_receive_count:
        Receives before a message moves to the DLQ. Default: 5.
    fifo:
        FIFO queues keep order per message group. Default: false.
    encryption_key:
        A customer managed key. Default: SQS-managed encryption (SSE-SQS).

    Attributes
    ----------
    queue, dead_letter_queue
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        visibility_timeout: Duration,
        max_receive_count: int = 5,
        fifo: bool = False,
        encryption_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if max_receive_count < 1:
            raise ValueError("max_receive_count must be at least 1")
        encryption = _encryption(encryption_key)
        self.dead_letter_queue = dead_letter_queue(self, "DeadLetterQueue", encryption_key=encryption_key, fifo=fifo)
        self.queue = sqs.Queue(
            self,
            "Queue",
            fifo=fifo or None,
            visibility_timeout=visibility_timeout,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=max_receive_count),
            **encryption,
        )
        _skip_sse_check(self.queue, encryption_key)
