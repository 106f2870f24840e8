"""moto in this process: a threaded server for every AWS API, with Lambda invocations routed to our execution environments.

moto's Lambda without Docker only echoes payloads. Replacing
``LambdaSimpleBackend.invoke`` is the one seam through which every moto-side
invocation passes (``lambda.invoke`` from any client, and Step Functions'
``arn:aws:states:::lambda:invoke`` tasks, which call moto's Lambda API), so
that is where the real handler code is plugged in.

moto keeps its state in module globals, so one process hosts one local cloud
at a time.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core import config as moto_config
from moto.core.exceptions import JsonRESTError
from moto.server import ThreadedMotoServer

from agentrail_cli.local.functions import ExecutionEnvironments, PayloadTooLarge, Throttled

#: Lambda without Docker (our seam runs the code) and Step Functions that really execute.
MOTO_CONFIG = {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}

_lock = threading.Lock()
_active: ExecutionEnvironments | None = None
_original_invoke = LambdaSimpleBackend.invoke
_log = logging.getLogger("agentrail.local")


class TooManyRequestsException(JsonRESTError):
    code = 429

    def __init__(self, message: str) -> None:
        super().__init__("TooManyRequestsException", message)


class RequestTooLargeException(JsonRESTError):
    code = 413

    def __init__(self, message: str) -> None:
        super().__init__("RequestTooLargeException", message)


def _invoke(
    backend: LambdaSimpleBackend, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes | str | None:
    environments = _active
    if environments is None or not environments.knows(function_name, qualifier):
        # Not from the templates: moto's own behaviour, after the existence check its simple backend skips.
        backend.get_function(function_name, qualifier)
        return _original_invoke(backend, function_name, qualifier, body, headers, response_headers)
    payload = body.encode() if isinstance(body, str) else (body or b"")
    invocation_type = headers.get("X-Amz-Invocation-Type", "RequestResponse")
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        threading.Thread(target=_invoke_async, args=(environments, function_name, qualifier, payload), daemon=True).start()
        return b""
    try:
        result = environments.invoke(function_name, payload or b"{}", qualifier=qualifier)
    except Throttled as error:
        raise TooManyRequestsException(str(error)) from None
    except PayloadTooLarge as error:
        raise RequestTooLargeException(str(error)) from None
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    return result.payload


def _invoke_async(environments: ExecutionEnvironments, target: str, qualifier: str | None, payload: bytes) -> None:
    try:
        result = environments.invoke(target, payload or b"{}", qualifier=qualifier)
    except (Throttled, PayloadTooLarge) as error:
        _log.warning("asynchronous invocation of %s dropped: %s", target, error)
        return
    if result.function_error:
        _log.warning("asynchronous invocation of %s failed: %s", target, result.payload.decode(errors="replace")[:500])


class MotoServer:
    """moto's threaded server on ``127.0.0.1``, configured for local mode.

    Parameters
    ----------
    port:
        Default: 0, a free port.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._previous_config: dict[str, Any] | None = None
        self._previous_port: str | None = None
        self.host = host
        self.port = port

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MotoServer:
        # Request logs from moto's server would drown the function logs on the console.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # The state-machine parser warns about fields it ignores (ToleratedFailurePercentage...) on every create.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.ERROR)
        self._previous_config = copy.deepcopy(dict(moto_config.default_user_config))
        for service, settings in MOTO_CONFIG.items():
            moto_config.default_user_config.setdefault(service, {}).update(settings)  # type: ignore[misc]
        _reset_moto()
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        # Step Functions' service integrations call back into moto at localhost:$MOTO_PORT.
        self._previous_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(self.port)
        return self

    def stop(self) -> None:
        self._server.stop()
        if self._previous_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = self._previous_port
        if self._previous_config is not None:
            moto_config.default_user_config.clear()
            moto_config.default_user_config.update(self._previous_config)  # type: ignore[typeddict-item]
        _reset_moto()


def _reset_moto() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def install_lambda_seam(environments: ExecutionEnvironments) -> None:
    """Route moto's Lambda invocations of deployed functions to ``environments``.

    Raises
    ------
    RuntimeError
        When another local cloud already holds the seam in this process.
    """
    global _active
    with _lock:
        if _active is not None and _active is not environments:
            raise RuntimeError("another local cloud is running in this process; stop it first")
        _active = environments
        LambdaSimpleBackend.invoke = _invoke  # type: ignore[method-assign,assignment]


def remove_lambda_seam(environments: ExecutionEnvironments) -> None:
    global _active
    with _lock:
        if _active is environments:
            _active = None
            LambdaSimpleBackend.invoke = _original_invoke  # type: ignore[method-assign]


__all__ = ["MOTO_CONFIG", "MotoServer", "install_lambda_seam", "remove_lambda_seam"]
