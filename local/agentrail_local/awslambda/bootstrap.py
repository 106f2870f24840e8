"""One Lambda execution environment, run by path on the function's interpreter.

Started by :mod:`agentrail_local.awslambda.workers` with the function's own
environment and ``cwd`` set to its code folder. It imports the handler once
(the init phase), then serves invocations one at a time: requests arrive as
JSON lines on stdin, answers leave as JSON lines on the descriptor named by
``AGENTRAIL_RESPONSE_FD``. Stdout and stderr stay free for the function's logs.

This module must only import the standard library, and run on every Python of
a Lambda runtime (3.9 and later): the function's interpreter may be another
than local mode's, and everything else the process imports belongs to the function.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback
from datetime import datetime, timezone
from typing import Any

RESPONSE_FD_ENV = "AGENTRAIL_RESPONSE_FD"


class LambdaContext:
    """The context object Lambda passes to a handler, with the attributes Powertools reads."""

    def __init__(self, *, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.invoked_function_arn = invoked_function_arn
        self.aws_request_id = request_id
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def error_payload(error: BaseException, error_type: str | None = None, message: str | None = None) -> dict[str, Any]:
    """Lambda's error shape: ``errorMessage``, ``errorType`` and ``stackTrace``."""
    frames = traceback.extract_tb(error.__traceback__)
    return {
        "errorMessage": message if message is not None else str(error),
        "errorType": error_type or type(error).__name__,
        "stackTrace": list(traceback.format_list(frames)),
    }


def load_handler(spec: str) -> Any:
    """Import ``module.function`` the way the Lambda Python runtime does, with its error types."""
    module_name, _, attribute = spec.rpartition(".")
    if not module_name:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{spec}': not enough values to unpack")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}") from error
    except SyntaxError as error:
        raise _InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {error}") from error
    handler = getattr(module, attribute, None)
    if handler is None:
        raise _InitError("Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_name}'")
    return handler


class _InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _timestamp(seconds: float | None = None) -> str:
    """Lambda's log timestamp (``2026-01-31T12:00:00.000Z``) of ``seconds`` since the epoch. Default: now."""
    # timezone.utc, not datetime.UTC: this module runs on Python 3.9, and UTC is 3.11's.
    moment = datetime.now(timezone.utc) if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)  # noqa: UP017
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _log_error(payload: dict[str, Any], request_id: str | None) -> None:
    # What the Lambda runtime writes to the log stream when a handler fails (JSON log format).
    record = {
        "timestamp": _timestamp(),
        "level": "ERROR",
        "message": payload,
        "requestId": request_id,
    }
    print(json.dumps(record), file=sys.stderr, flush=True)


class _JsonLogFormatter(logging.Formatter):
    """The Lambda Python runtime's JSON log line for a standard-library record (``AWS_LAMBDA_LOG_FORMAT=JSON``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": _timestamp(record.created),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": _request_id,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["stackTrace"] = record.exc_text.splitlines()
        return json.dumps(entry, default=str)


class _TextLogFormatter(logging.Formatter):
    """The Lambda Python runtime's text log line (``AWS_LAMBDA_LOG_FORMAT=Text``, Lambda's default):
    ``[LEVEL]<tab>timestamp<tab>request id<tab>message``, then the traceback, if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"[{record.levelname}]\t{_timestamp(record.created)}\t{_request_id or ''}\t{record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        return f"{line}\n{record.exc_text}" if record.exc_text else line


#: The invocation in progress (Lambda's log lines carry its request id); None before the first.
_request_id: str | None = None
#: ``AWS_LAMBDA_LOG_LEVEL`` as the ``logging`` module names it.
_LEVELS = {"TRACE": "DEBUG", "DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARNING", "ERROR": "ERROR", "FATAL": "CRITICAL"}


def setup_logging() -> None:
    """What the Lambda Python runtime does before it imports the handler: one handler on the root logger writing to
    the log stream (JSON lines under ``AWS_LAMBDA_LOG_FORMAT=JSON``), at ``AWS_LAMBDA_LOG_LEVEL`` when set (the
    function's ``ApplicationLogLevel``), else the ``logging`` module's WARNING. So what libraries log (botocore at
    DEBUG logs whole request bodies) reaches the function's log as it would in Lambda, through whatever filters the
    function's code adds to that handler."""
    handler = logging.StreamHandler(sys.stdout)
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON":
        handler.setFormatter(_JsonLogFormatter())
    else:
        handler.setFormatter(_TextLogFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = _LEVELS.get(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper())
    if level is not None:
        root.setLevel(level)


def main() -> int:
    global _request_id
    channel = os.fdopen(int(os.environ.pop(RESPONSE_FD_ENV)), "w", encoding="utf-8")

    def send(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    setup_logging()
    try:
        handler = load_handler(os.environ["_HANDLER"])
    except _InitError as error:
        payload = {"errorMessage": str(error), "errorType": error.error_type, "stackTrace": []}
        _log_error(payload, None)
        send({"type": "ready", "error": payload})
        return 1
    except Exception as error:
        payload = error_payload(error)
        _log_error(payload, None)
        send({"type": "ready", "error": payload})
        return 1
    send({"type": "ready"})

    for line in sys.stdin.buffer:
        request = json.loads(line)
        request_id = request["request_id"]
        _request_id = request_id
        context = LambdaContext(
            request_id=request_id,
            deadline_ms=request["deadline_ms"],
            invoked_function_arn=request["invoked_function_arn"],
        )
        # Lambda sets the invocation's X-Ray header in the environment before each invocation.
        if request.get("trace_header"):
            os.environ["_X_AMZN_TRACE_ID"] = request["trace_header"]
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            event = json.loads(request["payload"]) if request["payload"] else {}
            result = handler(event, context)
        except Exception as error:
            payload = error_payload(error)
            _log_error(payload, request_id)
            send({"type": "error", "request_id": request_id, "payload": payload})
            continue
        try:
            body = json.dumps(result)
        except (TypeError, ValueError) as error:
            payload = error_payload(error, "Runtime.MarshalError", f"Unable to marshal response: {error}")
            send({"type": "error", "request_id": request_id, "payload": payload})
            continue
        send({"type": "result", "request_id": request_id, "payload": body})
    return 0


if __name__ == "__main__":
    sys.exit(main())
