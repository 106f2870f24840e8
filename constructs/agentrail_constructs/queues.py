"""Encrypted SQS queues that always come with a dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from agentrail_constructs.nag import acknowledge


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
    dead_letter_retention:
        Default: 14 days, the maximum.

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
        dead_letter_retention: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if max_receive_count < 1:
            raise ValueError("max_receive_count must be at least 1")
        encryption = (
            {"encryption": sqs.QueueEncryption.KMS, "encryption_master_key": encryption_key}
            if encryption_key is not None
            else {"encryption": sqs.QueueEncryption.SQS_MANAGED}
        )
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            fifo=fifo or None,
            retention_period=dead_letter_retention or Duration.days(14),
            enforce_ssl=True,
            **encryption,
        )
        acknowledge(
            self.dead_letter_queue.node.default_child,
            "SQS3",
            "This queue is itself the dead-letter queue; its messages are inspected and redriven with `agentrail dlq`.",
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            fifo=fifo or None,
            visibility_timeout=visibility_timeout,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=max_receive_count),
            **encryption,
        )
