"""The one Logger, Tracer and Metrics of a function, created once per execution environment.

Configuration comes from the standard Powertools environment variables that the
AgentFunction construct sets: ``POWERTOOLS_SERVICE_NAME``,
``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_LOG_LEVEL``; and ``AGENT_LOG_REDACTION`` (default ``true``): every
log line passes through :class:`RedactingFormatter` (``false``: :class:`MaskingFormatter`, fetched secrets masked only).
"""

import functools
import json
import logging
import os
from collections.abc import AsyncGenerator, Callable, Collection, Generator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import cache, partial
from types import ModuleType
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentrail_runtime.redaction import redact, redact_data

_SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME", "agentrail")


class _NoSegment(BaseSegment):
    """What an untraced function's subsegments are: nothing recorded, nothing sent."""

    def close(self, end_time: int | None = None) -> None:
        return None

    def add_subsegment(self, subsegment: Any) -> None:
        return None

    def remove_subsegment(self, subsegment: Any) -> None:
        return None

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        return None


class UntracedProvider(BaseProvider):
    """The Tracer's provider when tracing is off: records nothing, and keeps the X-Ray SDK out of the process.

    Powertools' Tracer imports ``aws_xray_sdk.core`` even when tracing is disabled (its default provider); with
    tracing off (``POWERTOOLS_TRACE_DISABLED``, local mode, tests, anywhere outside Lambda) that import is pure
    cold-start cost. In Lambda with tracing on, the Tracer keeps the X-Ray provider and patches botocore as always.
    """

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield _NoSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncGenerator[BaseSegment, None]:
        yield _NoSegment()

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def patch(self, modules: Sequence[str]) -> None:
        return None

    def patch_all(self) -> None:
        return None


def tracing_disabled() -> bool:
    """Powertools' own rule: ``POWERTOOLS_TRACE_DISABLED``, or not in Lambda (no ``LAMBDA_TASK_ROOT``), or SAM/Chalice local."""
    return bool(Tracer._is_tracer_disabled())


#: The secrets tools fetched in this execution environment (see :func:`never_log`), each with the forms a log line
#: may carry it in: as written, and as JSON escapes it (a message that holds a JSON dump). The one registry of them:
#: the logs and the agent loop's :func:`~agentrail_runtime.agent.secrets.mask_secrets` read it.
_SECRETS: dict[str, tuple[str, ...]] = {}
LOG_MASK = "**********"


def never_log(value: str) -> None:
    """From now on, every log line of this execution environment shows ``value`` as ``**********``: in the message,
    in any key, in an exception's trace, as it is and as JSON escapes it, through the logger and the root logger's
    handlers alike (whether or not personal data is redacted)."""
    if value and value not in _SECRETS:
        forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
        _SECRETS[value] = tuple(sorted(forms, key=len, reverse=True))


def never_logged() -> Collection[str]:
    """The values given to :func:`never_log` so far."""
    return _SECRETS.keys()


def scrub(text: str, *, redact_pii: bool) -> str:
    """``text`` as a log line may carry it: every value of :func:`never_log` masked (in each of its forms), then,
    with ``redact_pii``, personal and secret data redacted (``[REDACTED:<kind>]``). What the formatter does to each
    value it redacts and the filter to each message and trace."""
    for forms in _SECRETS.values():
        for form in forms:
            text = text.replace(form, LOG_MASK)
    return redact(text) if redact_pii else text


_SCRUB = partial(scrub, redact_pii=True)
_MASK = partial(scrub, redact_pii=False)


#: Values :func:`redact_data` gives back as they are (counts and latencies on every line of the agent loop).
_NEVER_REDACTED = frozenset({bool, float, type(None)})
#: The first characters of a JSON text (``json.loads`` also reads ``NaN`` and ``Infinity``); the empty string is none.
_JSON_STARTS = frozenset('{["-0123456789tfnNI')


class MaskingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, with the values of :func:`never_log` masked in the finished line (in each of the
    forms :func:`never_log` keeps): in the message, the exception, and every key and value at any depth."""

    #: Redact personal data too (:class:`RedactingFormatter`), besides masking the values of :func:`never_log`.
    redact_pii = False
    #: Written by Powertools from the record and the Lambda context, never from what a user or a model said.
    FRAMEWORK_KEYS = frozenset(
        {
            "level",
            "location",
            "timestamp",
            "service",
            "sampling_rate",
            "cold_start",
            "function_name",
            "function_memory_size",
            "function_arn",
            "function_request_id",
            "xray_trace_id",
            "exception_name",
            "agent_version",
        }
    )

    def _extract_log_message(self, log_record: logging.LogRecord) -> Any:
        # Powertools decodes a message that is JSON; it tries every message, and an exception per line (the agent
        # loop's "reasoning step") is a fair share of a warm request. A text that starts with none of JSON's first
        # characters (after JSON's whitespace) cannot decode: it stays as it is, as it would after the attempt.
        message = log_record.msg
        if (
            isinstance(message, str)
            and not log_record.args
            and message.lstrip(" \t\n\r")[:1] not in _JSON_STARTS
            and self.json_deserializer is json.loads
        ):
            return message
        return super()._extract_log_message(log_record)

    def serialize(self, log: LogRecord) -> str:
        if self.redact_pii:
            # A value is masked before it is redacted: a secret that holds personal data (an email in a password)
            # redacted first would leave its other parts in the line, where the mask of the line no longer finds it.
            text = _SCRUB if _SECRETS else redact
            cleaned = dict(log)
            for key in log.keys() - self.FRAMEWORK_KEYS:
                value = log[key]  # type: ignore[literal-required]
                if value.__class__ not in _NEVER_REDACTED and not key.endswith(("_id", "_arn")):
                    cleaned[key] = redact_data(value, text=text)
            log = cleaned
        line = super().serialize(log)
        return _MASK(line) if _SECRETS else line


class RedactingFormatter(MaskingFormatter):
    """Powertools' JSON formatter that redacts personal and secret data (``[REDACTED:<kind>]``) before it writes a line,
    and masks the values of :func:`never_log` in the finished line (see :class:`MaskingFormatter`).

    The values of the message, the exception (its trace, stack and notes), the ``extra`` fields and the appended keys
    (at any depth) are redacted; the fields Powertools itself writes (:data:`FRAMEWORK_KEYS`: level, timestamp, location,
    the Lambda context) are written as they are, and ids (keys ending in ``_id`` or ``_arn``) only masked. A value
    with none of the recognizers' hints and no run of four digits costs one regular-expression search.
    """

    redact_pii = True


class LogSettings(BaseSettings):
    """What the logs of the runtime read from the environment (part of
    :class:`~agentrail_runtime.config.RuntimeSettings`, read here once, at cold start, without the rest)."""

    model_config = SettingsConfigDict(env_prefix="AGENT_", extra="ignore", frozen=True)

    #: Redact personal data in every log line (``AGENT_LOG_REDACTION``); fetched secrets are masked regardless.
    log_redaction: bool = True


@cache
def log_redaction_enabled() -> bool:
    """``AGENT_LOG_REDACTION`` (default ``true``), read once through :class:`LogSettings`."""
    return LogSettings().log_redaction


class RedactingFilter(logging.Filter):
    """Masks the values of :func:`never_log`, and redacts personal data unless ``redact_pii`` is off, in what other
    libraries log through the root logger's handlers (the Lambda runtime's own handler): botocore at DEBUG logs
    whole request bodies, prompts and tool arguments included."""

    def __init__(self, *, redact_pii: bool = True) -> None:
        super().__init__()
        self.redact_pii = redact_pii

    def filter(self, record: logging.LogRecord) -> bool:
        if not (self.redact_pii or _SECRETS):
            return True
        record.msg, record.args = scrub(record.getMessage(), redact_pii=self.redact_pii), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, redact_pii=self.redact_pii)
        return True


logger = Logger(
    service=_SERVICE,
    log_uncaught_exceptions=True,
    # Fetched secrets are masked always; personal data is redacted unless AGENT_LOG_REDACTION=false.
    logger_formatter=RedactingFormatter() if log_redaction_enabled() else MaskingFormatter(),
)
for _handler in logging.getLogger().handlers:  # in Lambda: the runtime's handler, installed before this import
    if not any(isinstance(f, RedactingFilter) for f in _handler.filters):
        _handler.addFilter(RedactingFilter(redact_pii=log_redaction_enabled()))

#: The module a program imports, of the libraries the X-Ray SDK names otherwise (``sqlalchemy_core`` patches
#: ``sqlalchemy``). ``botocore`` waits for ``botocore.session``, which every way of making a client (boto3's too)
#: imports: ``botocore.config`` alone (the clients' retry settings) makes no call.
_IMPORTED_AS = {"botocore": "botocore.session", "sqlalchemy_core": "sqlalchemy"}


def patch_on_import(patch: Callable[[str], None], libraries: Mapping[str, str]) -> None:
    """``patch(name)`` for each of ``libraries`` (X-Ray SDK name -> module) the moment this process first imports it,
    or now if it has: what ``patch_all`` traces, without importing every supported library at cold start (httpx
    alone, with its command line, costs more than the rest of the handler's init). A library the function never
    imports is never patched, and never loaded."""
    # wrapt ships with the X-Ray SDK (which patches through it): loaded only where tracing is on (cold-start cost).
    from wrapt import register_post_import_hook

    for name, module in libraries.items():
        register_post_import_hook(_patching(patch, name), module)


def _patching(patch: Callable[[str], None], name: str) -> Callable[[ModuleType], None]:
    def on_import(_module: ModuleType) -> None:
        patch(name)

    return on_import


def _tracer() -> Tracer:
    """The function's Tracer: recording nothing with tracing off; with it on, X-Ray's, each supported library
    patched when first imported (see :func:`patch_on_import`) rather than all of them now."""
    if tracing_disabled():
        return Tracer(service=_SERVICE, provider=UntracedProvider())
    traced = Tracer(service=_SERVICE, auto_patch=False)
    # Tracer() imported the SDK's core already. What patch_all patches (NO_DOUBLE_PATCH: each library, not what it
    # uses), with X-Ray's own patch, errors ignored as patch_all ignores them.
    from aws_xray_sdk.core import patcher  # type: ignore[import-untyped]

    patch_on_import(
        lambda name: patcher.patch([name], raise_errors=False),
        {name: _IMPORTED_AS.get(name, name) for name in patcher.NO_DOUBLE_PATCH},
    )
    return traced


tracer = _tracer()
metrics = Metrics(service=_SERVICE, namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "Agentrail"))

Handler = Callable[[Any, Any], Any]
#: Keys of the execution environment (``agent_version``): on every log line, kept when an invocation's keys are cleared.
_ENVIRONMENT_KEYS: dict[str, str] = {}


def log_environment_keys(**keys: str) -> None:
    """Put ``keys`` on every log line of this execution environment, from now on and in every later invocation."""
    _ENVIRONMENT_KEYS.update(keys)
    logger.append_keys(**keys)


def observed(correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
    """Every handler's wrapping: the Lambda context (and correlation id) on each log line, keys of the last
    invocation cleared (the environment's own keys, as registered when the handler is wrapped, stay), an X-Ray
    segment without the response, metrics flushed with the cold-start metric."""

    def wrap(handler: Handler) -> Handler:
        measured = metrics.log_metrics(handler, capture_cold_start_metric=True)
        traced = tracer.capture_lambda_handler(measured, capture_response=False)
        # The keys as the handler's module left them (its services are built before its handler is wrapped): a
        # service built later in the same process, another handler's or a test's, does not relabel this one's lines.
        keys = dict(_ENVIRONMENT_KEYS)

        @functools.wraps(handler)
        def keyed(event: Any, context: Any) -> Any:
            if keys:
                logger.append_keys(**keys)  # inject_lambda_context's clear_state removed them
            return traced(event, context)

        return logger.inject_lambda_context(keyed, correlation_id_path=correlation_id_path, clear_state=True)

    return wrap


def correlate(correlation_id: str | None, **keys: str) -> None:
    """Carry a correlation id (and keys such as ``task_id``) on every log line and on the trace of this invocation.

    Each agent of a multi-agent task calls this with the id its message carries, so one task can be followed
    across every function in the logs (``correlation_id``) and in X-Ray (annotations, searchable).
    """
    if keys:
        logger.append_keys(**keys)
    if correlation_id:
        logger.set_correlation_id(correlation_id)
        tracer.put_annotation(key="correlation_id", value=correlation_id)
    for key, value in keys.items():
        tracer.put_annotation(key=key, value=value)


#: The environment variable in which Lambda gives each invocation its X-Ray trace header (active tracing).
TRACE_HEADER_ENV = "_X_AMZN_TRACE_ID"


def trace_header() -> str | None:
    """The X-Ray trace header of this invocation (``Root=1-...;Parent=...;Sampled=1``), or None outside a trace.

    Lambda sets it in ``_X_AMZN_TRACE_ID`` before each invocation. What this function sends on (an SQS message,
    an EventBridge event, a Step Functions execution) carries it explicitly, so the next hop joins the same trace
    whether or not the X-Ray SDK patched botocore (it does not when tracing is disabled, as in local mode).
    """
    return os.environ.get(TRACE_HEADER_ENV) or None


def sqs_trace_attributes() -> dict[str, Any]:
    """``send_message`` keyword arguments that put :func:`trace_header` in the ``AWSTraceHeader`` system attribute.

    SQS keeps that attribute with the message and Lambda's event source mapping continues (links) the trace; an
    explicit attribute overrides the HTTP header the X-Ray SDK adds
    (https://docs.aws.amazon.com/xray/latest/devguide/xray-services-sqs.html). Empty outside a trace.
    """
    header = trace_header()
    if header is None:
        return {}
    return {"MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": header}}}


def eventbridge_trace_fields() -> dict[str, str]:
    """Fields of a ``PutEventsRequestEntry`` that carry :func:`trace_header` (``TraceHeader``) to the rule's targets.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-related-service-xray.html. Empty outside a trace.
    """
    header = trace_header()
    return {"TraceHeader": header} if header else {}


def step_functions_trace_fields() -> dict[str, str]:
    """``start_execution`` keyword arguments (``traceHeader``, Standard workflows) that continue this trace."""
    header = trace_header()
    return {"traceHeader": header} if header else {}


__all__ = [
    "LOG_MASK",
    "TRACE_HEADER_ENV",
    "LogSettings",
    "MaskingFormatter",
    "RedactingFilter",
    "RedactingFormatter",
    "UntracedProvider",
    "correlate",
    "eventbridge_trace_fields",
    "log_environment_keys",
    "log_redaction_enabled",
    "logger",
    "metrics",
    "never_log",
    "never_logged",
    "observed",
    "patch_on_import",
    "scrub",
    "sqs_trace_attributes",
    "step_functions_trace_fields",
    "trace_header",
    "tracer",
    "tracing_disabled",
]
