"""moto in this process: a threaded server for every AWS API, with Lambda invocations routed to our execution environments.

moto's Lambda without Docker only echoes payloads. Replacing
``LambdaSimpleBackend.invoke`` is the one seam through which every moto-side
invocation passes (``lambda.invoke`` from any client, and Step Functions'
``arn:aws:states:::lambda:invoke`` tasks, which call moto's Lambda API), so
that is where the real handler code is plugged in.

moto's Lambda API reads an ``Invoke``'s qualifier from a ``qualifier`` query parameter, but boto (and Step
Functions' ``lambda:invoke`` with ``Qualifier``) sends ``Qualifier``: moto drops it and runs ``$LATEST``. A third
seam, on ``LambdaResponse.invoke``, passes it on, so a workflow's step pinned to a version runs that version.

moto's EventBridge delivers to queues, log groups and buses but not to Lambda
functions (it raises, which fails the caller's ``PutEvents``). A second seam,
on ``Rule.send_to_targets``, invokes Lambda targets asynchronously, as
EventBridge does, and leaves every other target to moto.

moto's ``StopExecution`` does not end a task that waits for a task token: the
execution keeps waiting until the task's timeout, then ends ``FAILED``. While
local mode runs, stopping also wakes such waits, and an execution once stopped
stays ``ABORTED``, as in AWS (a cancelled task's workflow must not run on).

moto's Step Functions calls its service integrations (``dynamodb:putItem``, ``sqs:sendMessage``...) through
boto3 clients of its own, over HTTP to this server. While local mode runs, those clients tag their User-Agent
(``app/agentrail-sfn``), so the call meter can tell them from local mode's own calls.

moto evaluates a bucket policy's statements without their conditions, so an SSL-only bucket (CDK's ``enforceSSL``)
denied every object request from local mode's functions, which reach moto over HTTP on loopback. While local mode
runs, a fourth seam, on ``FakeBucket.get_permission``, leaves that one statement out of the verdict.

moto keeps its state in module globals, so one process hosts one local cloud
at a time.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import boto3
from botocore.config import Config
from moto.awslambda.responses import LambdaResponse
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core import config as moto_config
from moto.core.exceptions import JsonRESTError
from moto.events.models import Rule as EventRule
from moto.events.utils import EventTemplateParser
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.s3.models import FakeBucket
from moto.server import ThreadedMotoServer
from moto.stepfunctions.parser.asl.eval.environment import Environment as ExecutionEnvironment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.utils import boto_client as step_functions_clients
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from werkzeug.serving import make_server

from agentrail_local.account import REGION
from agentrail_local.awslambda.definitions import PayloadTooLarge, Throttled
from agentrail_local.awslambda.environments import ExecutionEnvironments
from agentrail_local.awslambda.observers import LOCAL_APP_ID, STEP_FUNCTIONS_APP_ID

#: Lambda without Docker (our seam runs the code) and Step Functions that really execute.
MOTO_CONFIG = {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}

_lock = threading.Lock()
_active: ExecutionEnvironments | None = None
_original_invoke = LambdaSimpleBackend.invoke
_original_invoke_response = LambdaResponse.invoke
_original_send_to_targets = EventRule.send_to_targets
_original_get_permission = FakeBucket.get_permission
_original_stop = ExecutionWorker.stop
_original_set_error = ExecutionEnvironment.set_error
_original_client_config = step_functions_clients.Config
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
    if result.executed_version:
        response_headers["x-amz-executed-version"] = result.executed_version
    return result.payload


def _invoke_response(response: LambdaResponse) -> Any:
    qualifier = response.querystring.get("Qualifier")
    if qualifier and not response.querystring.get("qualifier"):
        response.querystring["qualifier"] = qualifier
    return _original_invoke_response(response)


def _invoke_async(environments: ExecutionEnvironments, target: str, qualifier: str | None, payload: bytes) -> None:
    try:
        result = environments.invoke(target, payload or b"{}", qualifier=qualifier)
    except (Throttled, PayloadTooLarge) as error:
        _log.warning("asynchronous invocation of %s dropped: %s", target, error)
        return
    if result.function_error:
        _log.warning("asynchronous invocation of %s failed: %s", target, result.payload.decode(errors="replace")[:500])


def _is_lambda_target(arn: str) -> bool:
    return arn.startswith("arn:") and arn.split(":")[2:3] == ["lambda"]


def eventbridge_event(message: Mapping[str, Any]) -> dict[str, Any]:
    """The event a Lambda target receives, from moto's internal event message (whose ``time`` is epoch seconds)."""
    moment = message.get("time")
    if isinstance(moment, int | float):
        moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
    return {
        "version": "0",
        "id": message.get("id"),
        "detail-type": message.get("detail-type"),
        "source": message.get("source"),
        "account": message.get("account"),
        "time": moment,
        "region": message.get("region"),
        "resources": list(message.get("resources") or []),
        "detail": message.get("detail") or {},
    }


def target_input(target: Mapping[str, Any], message: Mapping[str, Any]) -> Any:
    """What a rule target receives: ``Input``, ``InputPath``, ``InputTransformer`` or the whole event."""
    event = eventbridge_event(message)
    if target.get("Input") is not None:
        return json.loads(target["Input"])
    if target.get("InputPath"):
        from jsonpath_ng.ext import parse

        found = parse(target["InputPath"]).find(event)
        return found[0].value if found else None
    transformer = target.get("InputTransformer")
    if transformer:
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            # moto's TypedDict of an event admits no None, which a message without one of the fields leaves.
            event={**event, "ingestion-time": message.get("ingestion-time")},  # type: ignore[typeddict-item]
        )
    return event


def _send_to_targets(rule: EventRule, original_event: Any, transform_input: bool = True) -> None:
    environments = _active
    functions = [t for t in rule.targets if _is_lambda_target(str(t.get("Arn", "")))] if environments is not None else []
    if not functions:
        return _original_send_to_targets(rule, original_event, transform_input)
    assert environments is not None
    if rule.state == "ENABLED" and rule.event_pattern.matches_event(original_event):
        for target in functions:
            if not environments.knows(target["Arn"]):
                _log.warning("EventBridge rule %s: target %s is not a deployed function; event dropped", rule.name, target["Arn"])
                continue
            payload = json.dumps(target_input(target, original_event)).encode()
            threading.Thread(target=_invoke_async, args=(environments, target["Arn"], None, payload), daemon=True).start()
    others = [t for t in rule.targets if t not in functions]
    if others:
        # A copy, so a concurrent PutEvents on the same rule still sees every target.
        view = copy.copy(rule)
        view.targets = others
        _original_send_to_targets(view, original_event, transform_input)
    return None


def _stop_execution(worker: ExecutionWorker, stop_date: Any, error: str | None, cause: str | None) -> None:
    _original_stop(worker, stop_date, error, cause)
    if worker.env is not None:
        for endpoint in list(worker.env.callback_pool_manager._pool.values()):
            endpoint.interrupt_all()


def _set_error(environment: ExecutionEnvironment, error: Any) -> None:
    # The woken wait reports a timeout; a stopped execution must still end ABORTED, not FAILED.
    if isinstance(environment.program_state(), ProgramStopped):
        return
    _original_set_error(environment, error)


def _patch_step_functions(enabled: bool) -> None:
    # Patching a method with a plain function: mypy compares it with the bound signature (assignment).
    if enabled:
        ExecutionWorker.stop = _stop_execution  # type: ignore[method-assign,assignment]
        ExecutionEnvironment.set_error = _set_error  # type: ignore[method-assign,assignment]
        # botocore-stubs lag botocore: Config takes user_agent_appid since 1.31.
        tagged = functools.partial(_original_client_config, user_agent_appid=STEP_FUNCTIONS_APP_ID)  # type: ignore[call-arg]
        step_functions_clients.Config = tagged  # type: ignore[misc,assignment]
    else:
        ExecutionWorker.stop = _original_stop  # type: ignore[method-assign]
        ExecutionEnvironment.set_error = _original_set_error  # type: ignore[method-assign]
        step_functions_clients.Config = _original_client_config  # type: ignore[misc]


#: A WSGI application (moto's server is one); a middleware takes one and returns one.
WsgiApp = Callable[..., Any]


class _WrappedMotoServer(ThreadedMotoServer):
    """moto's threaded server with a middleware around its WSGI application (moto's ``_server_entry``, plus ``wrap``)."""

    def __init__(self, wrap: Callable[[WsgiApp], WsgiApp], **options: Any) -> None:
        super().__init__(**options)
        self._wrap = wrap

    def _server_entry(self) -> None:
        app = self._wrap(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


class MotoServer:
    """moto's threaded server on ``127.0.0.1``, configured for local mode.

    Parameters
    ----------
    port:
        Default: 0, a free port.
    middleware:
        Wraps moto's WSGI application: it sees every request to moto (local mode's call meter). Default: none.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, middleware: Callable[[WsgiApp], WsgiApp] | None = None) -> None:
        options: dict[str, Any] = {"ip_address": host, "port": port, "verbose": False}
        self._server = ThreadedMotoServer(**options) if middleware is None else _WrappedMotoServer(middleware, **options)
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
        self._previous_config = copy.deepcopy(dict(_moto_user_config()))
        for service, settings in MOTO_CONFIG.items():
            _moto_user_config().setdefault(service, {}).update(settings)
        _reset_moto()
        _patch_step_functions(True)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        # Step Functions' service integrations call back into moto at localhost:$MOTO_PORT.
        self._previous_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(self.port)
        return self

    def stop(self) -> None:
        self._server.stop()
        _patch_step_functions(False)
        if self._previous_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = self._previous_port
        if self._previous_config is not None:
            _moto_user_config().clear()
            _moto_user_config().update(self._previous_config)
        _reset_moto()


class MotoClients:
    """boto3 clients pointed at the local moto server, one per service, safe to share between threads.

    ``app_id`` tags their User-Agent (``app/<app_id>``): the call meter counts none of local mode's own calls.
    """

    def __init__(self, endpoint_url: str, region: str = REGION, *, app_id: str = LOCAL_APP_ID) -> None:
        self.endpoint_url = endpoint_url
        self._session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing", region_name=region
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._config = Config(retries={"max_attempts": 2, "mode": "standard"}, user_agent_appid=app_id)  # type: ignore[call-arg]

    def __call__(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                # boto3-stubs types one overload per literal service name; any name is taken here.
                client = self._clients[service] = self._session.client(  # type: ignore[call-overload]
                    service, endpoint_url=self.endpoint_url, config=self._config
                )
            return client


def _moto_user_config() -> dict[str, Any]:
    """moto's process-wide configuration, changed in place: a TypedDict in moto's annotations, a plain dict at run time."""
    return cast(dict[str, Any], moto_config.default_user_config)


def _reset_moto() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


#: The statement CDK's ``enforceSSL`` adds to a bucket policy: deny every request made without TLS.
_DENY_WITHOUT_TLS = {"Bool": {"aws:SecureTransport": "false"}}


def _get_permission(bucket: FakeBucket, action: str, resource: str) -> Any:
    """A bucket policy's verdict on an object request, as AWS gives it to a function's HTTPS request.

    moto evaluates no conditions, so the ``aws:SecureTransport: false`` deny of an SSL-only bucket denied every
    object request, and local mode's functions reach moto over plain HTTP on loopback, where their AWS calls would
    use TLS. That statement is left out of the verdict (the policy moto stores and returns is unchanged)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(bucket.policy.decode())
    statements = document.get("Statement", [])
    kept = [s for s in (statements if isinstance(statements, list) else [statements]) if s.get("Condition") != _DENY_WITHOUT_TLS]
    return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(action, resource)


def install_lambda_seam(environments: ExecutionEnvironments) -> None:
    """Route moto's Lambda invocations of deployed functions, and EventBridge's deliveries to them, to ``environments``.

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
        LambdaResponse.invoke = _invoke_response  # type: ignore[method-assign]
        EventRule.send_to_targets = _send_to_targets  # type: ignore[method-assign,assignment]
        FakeBucket.get_permission = _get_permission  # type: ignore[method-assign,assignment]


def remove_lambda_seam(environments: ExecutionEnvironments) -> None:
    global _active
    with _lock:
        if _active is environments:
            _active = None
            LambdaSimpleBackend.invoke = _original_invoke  # type: ignore[method-assign]
            LambdaResponse.invoke = _original_invoke_response  # type: ignore[method-assign]
            EventRule.send_to_targets = _original_send_to_targets  # type: ignore[method-assign]
            FakeBucket.get_permission = _original_get_permission  # type: ignore[method-assign]


__all__ = [
    "MOTO_CONFIG",
    "MotoClients",
    "MotoServer",
    "eventbridge_event",
    "install_lambda_seam",
    "remove_lambda_seam",
    "target_input",
]
