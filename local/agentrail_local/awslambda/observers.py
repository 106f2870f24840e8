"""What local mode tells an observer (the call meter) as it runs: functions, invocations, log lines and gateway traffic."""

from __future__ import annotations

import hashlib
from typing import Protocol

from agentrail_local.awslambda.definitions import FunctionDefinition, InvocationResult

#: The ``app/...`` part botocore puts in the User-Agent of local mode's own clients, the SQS pollers' and the clients
#: moto's Step Functions uses for service integrations (``AWS_SDK_UA_APP_ID`` / ``Config(user_agent_appid=...)``).
LOCAL_APP_ID = "agentrail-local"
POLLER_APP_ID = "agentrail-poller"
STEP_FUNCTIONS_APP_ID = "agentrail-sfn"
FUNCTION_APP_ID_PREFIX = "agentrail-fn."


def function_app_id(function_name: str) -> str:
    """The User-Agent app id of a function's SDK clients: short, as botocore allows 50 characters and names run longer."""
    return FUNCTION_APP_ID_PREFIX + hashlib.sha256(function_name.encode()).hexdigest()[:16]


class InvocationObserver(Protocol):
    """Told of every function registered, every invocation it runs (before and after: ``result`` is None when it was
    throttled or failed to start) and every log line it writes."""

    def function_added(self, label: str, definition: FunctionDefinition) -> None: ...

    def invoking(self, label: str) -> None: ...

    def invoked(self, label: str, result: InvocationResult | None) -> None: ...

    def logged(self, label: str, size: int) -> None: ...


class TrafficObserver(Protocol):
    """Told of every request an API gateway serves and every WebSocket frame in or out."""

    def api_request(self, api_id: str) -> None: ...

    def websocket_frames(self, size: int) -> None: ...

    def websocket_closed(self, connected_ms: float) -> None: ...


__all__ = [
    "FUNCTION_APP_ID_PREFIX",
    "LOCAL_APP_ID",
    "POLLER_APP_ID",
    "STEP_FUNCTIONS_APP_ID",
    "InvocationObserver",
    "TrafficObserver",
    "function_app_id",
]
