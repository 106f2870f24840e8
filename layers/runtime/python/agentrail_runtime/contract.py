"""What the runtime and the CDK constructs must agree on, in one dependency-free module.

The constructs import this module, and only this one, from the runtime: it uses
the standard library alone and imports nothing else from ``agentrail_runtime``,
so an app that ``pip install``-s agentrail-aws without pydantic can still use it.
"""

from __future__ import annotations

import re
from typing import Literal

#: Model providers a model spec may name.
PROVIDERS = ("local", "bedrock", "openai")
#: A model spec: ``local``, ``bedrock:<model-id>`` or ``openai:<model>``.
MODEL_SPEC = re.compile(r"^(local|(bedrock|openai):[\w.:/-]+)$")
#: How a wrong model spec is explained, by the runtime's settings and by the constructs at synth.
MODEL_SPEC_HELP = "use 'local', 'bedrock:<model-id>' or 'openai:<model>'"
#: Cross-region inference profile ids start with one of these ("us.amazon.nova-lite-v1:0").
INFERENCE_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.", "ca.", "jp.", "au.")

#: AWS dependencies ``GET /health`` can probe (``AGENT_HEALTH_CHECKS`` entries' ``kind``).
HealthCheckKind = Literal["dynamodb", "sqs", "s3", "secretsmanager", "stepfunctions", "events", "sns"]
HEALTH_CHECK_KINDS: tuple[HealthCheckKind, ...] = ("dynamodb", "sqs", "s3", "secretsmanager", "stepfunctions", "events", "sns")

#: Names of runtime exceptions that Step Functions retries (a Lambda error's ``errorType`` is its class name).
MODEL_THROTTLED_ERROR = "ModelThrottledError"
MODEL_UNAVAILABLE_ERROR = "ModelUnavailableError"
#: The model's transient failures: worth retrying later.
MODEL_TRANSIENT_ERRORS = (MODEL_THROTTLED_ERROR, MODEL_UNAVAILABLE_ERROR)
#: EventBridge refused a task's event after its status was written: the event waits in the task's outbox, and a
#: retry of the step (or a redelivery of the message) publishes it.
TASK_EVENT_NOT_PUBLISHED_ERROR = "TaskEventNotPublished"


def unknown_model_message(spec: str) -> str:
    """The one sentence that refuses a model spec."""
    return f"unknown model {spec!r}: {MODEL_SPEC_HELP}"


__all__ = [
    "HEALTH_CHECK_KINDS",
    "INFERENCE_PROFILE_PREFIXES",
    "MODEL_SPEC",
    "MODEL_SPEC_HELP",
    "MODEL_THROTTLED_ERROR",
    "MODEL_TRANSIENT_ERRORS",
    "MODEL_UNAVAILABLE_ERROR",
    "PROVIDERS",
    "TASK_EVENT_NOT_PUBLISHED_ERROR",
    "HealthCheckKind",
    "unknown_model_message",
]
