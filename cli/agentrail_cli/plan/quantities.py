"""Raw counts per task (counted in local mode) to priced quantities (``usage.TaskUsage``), and the fixed monthly items.

The estimate and ``--measure`` both come through :func:`task_usage`: the estimate's raw counts are the call-count
file's lines at the requirements' model calls, the measurement's are what the meter counted. What local mode cannot
see is added from documented rates and labelled *estimated*:

- Lambda's event source mappings receive and delete each queued message: 2 SQS requests per message (a batch of one
  at low traffic; fewer per message when batches fill);
- log volume: the functions' own lines are counted, plus Lambda's ``START``/``END``/``REPORT`` lines (about 260 bytes
  per invocation), an API access log line (about 800 bytes per request) and a Step Functions execution log event
  (about 400 bytes per transition, level ALL without execution data);
- X-Ray: one trace per API request, sampled by the default rule (the first request each second, then 5%);
- the model's wait: the function holds its memory while the model answers (``model_latency`` per call).

DynamoDB storage is the bytes a task leaves, kept for its retention: records ``retention_days`` (sessions: their idle
TTL), approvals a year (their audit retention), idempotency records an hour.
"""

from __future__ import annotations

from collections.abc import Mapping

from agentrail_cli.plan.calls import CallCounts
from agentrail_cli.plan.recommend import Recommendation
from agentrail_cli.plan.requirements import Requirements
from agentrail_cli.plan.usage import Basis, FixedMonthly, Quantity, TaskUsage, TokenUse

__all__ = ["PLATFORM_LOG_BYTES", "estimated_raw", "fixed_monthly", "task_usage"]

PLATFORM_LOG_BYTES = 260
ACCESS_LOG_BYTES = 800
TRANSITION_LOG_BYTES = 400
GIB = float(2**30)
MONTH_DAYS = 365 / 12
#: Custom metrics one agent function emits (service, agent and model dimensions; outcomes; tools): an estimate.
METRICS_PER_AGENT_FUNCTION = 20


def estimated_raw(
    counts: CallCounts, rec: Recommendation, r: Requirements, *, model_calls: float | None = None
) -> dict[str, float]:
    """Raw counts of one task of ``rec`` from the call-count file: each component's lines at its model calls."""
    calls = r.model_calls_per_task if model_calls is None else model_calls
    total: dict[str, float] = {}
    for variant, times in rec.components:
        per_task = counts.variant(variant).at(0.0 if variant == "session_start" else calls)
        if variant == "session_start":
            per_task = {**per_task, "model_calls": 0.0}
        for name, value in per_task.items():
            total[name] = total.get(name, 0.0) + times * value
    return total


def _sampled_share(requests_per_hour: float) -> float:
    per_second = requests_per_hour / 3600.0
    if per_second <= 1:
        return 1.0
    return (1 + 0.05 * (per_second - 1)) / per_second


def task_usage(
    raw: Mapping[str, float],
    r: Requirements,
    rec: Recommendation,
    *,
    measured_tokens: bool = False,
    basis: Basis = Basis.COUNTED,
) -> TaskUsage:
    """The priced quantities of one task whose raw counts are ``raw``.

    Parameters
    ----------
    measured_tokens:
        Price the tokens ``raw`` holds (the local model's, for ``--measure``) instead of the requirements' tokens per
        model call.
    basis:
        How the raw counts were obtained: counted in local mode, by the benchmark or by ``--measure``.
    """
    get = lambda name: float(raw.get(name, 0.0))  # noqa: E731
    s = rec.settings
    q: dict[str, Quantity] = {}

    def put(name: str, value: float, how: Basis, note: str = "") -> None:
        if value > 0:
            q[name] = Quantity(value=value, basis=how, note=note)

    model_calls = get("model_calls")
    put("lambda_requests", get("lambda_requests"), basis)
    wait = get("model_function_memory_gb") * r.model_latency
    put(
        "lambda_gb_seconds",
        get("lambda_framework_gb_seconds") + wait,
        basis,
        f"{get('lambda_framework_gb_seconds'):.4f} GB-s measured, plus {wait:.3f} GB-s waiting {r.model_latency:g} s "
        f"for each of {model_calls:.2f} model calls",
    )
    requests = get("api_requests")
    streamed_turns = float(r.turns_per_session) if s.streaming else 0.0
    api_item = "http_api_requests" if s.api == "http" else "rest_api_requests"
    put(api_item, max(0.0, requests - streamed_turns), basis)
    if streamed_turns:
        per_turn_calls = r.model_calls_per_task
        frames = 2 + per_turn_calls * (1 + max(1.0, r.output_tokens_per_call / 50.0)) + 2 * max(0.0, per_turn_calls - 1)
        put(
            "websocket_messages",
            streamed_turns * frames,
            Basis.ESTIMATED,
            "a message, then step, token (about 50 tokens each), tool and final events",
        )
        minutes = r.turns_per_session * (per_turn_calls * r.model_latency + 30.0) / 60.0
        put("websocket_connection_minutes", minutes, Basis.ESTIMATED, "connected while answering, plus 30 s between turns")
    put("dynamodb_read_units", get("dynamodb_read_units"), basis)
    put("dynamodb_write_units", get("dynamodb_write_units"), basis)
    keep_days = (s.session_ttl_seconds / 86_400.0) if rec.variant == "turn" and s.session_ttl_seconds else float(r.retention_days)
    gb_months = (
        get("dynamodb_stored_bytes") * keep_days / MONTH_DAYS
        + get("dynamodb_approval_bytes") * 12.0
        + get("dynamodb_idempotency_bytes") / (MONTH_DAYS * 24)
    ) / GIB
    put("dynamodb_gb_months", gb_months, basis, f"bytes counted, kept {keep_days:g} days (approvals a year, idempotency an hour)")
    put(
        "sqs_requests",
        get("sqs_requests") + 2 * get("sqs_messages"),
        basis,
        f"{get('sqs_requests'):.2f} by the functions, plus an estimated receive and delete per message",
    )
    put("sqs_fifo_requests", get("sqs_fifo_requests"), basis)
    put("sfn_transitions", get("sfn_transitions"), basis)
    put("eventbridge_events", get("eventbridge_events"), basis)
    log_bytes = (
        get("log_bytes")
        + PLATFORM_LOG_BYTES * get("lambda_requests")
        + ACCESS_LOG_BYTES * requests
        + TRANSITION_LOG_BYTES * get("sfn_transitions")
    )
    put(
        "log_gb",
        log_bytes / 1e9,
        Basis.ESTIMATED,
        f"{get('log_bytes'):.0f} bytes of function logs counted; platform, access and workflow logs estimated",
    )
    put("xray_traces", requests * _sampled_share(r.requests_per_hour), Basis.ESTIMATED, "default sampling: 1 a second, then 5%")

    tokens = []
    if model_calls > 0:
        if measured_tokens:
            input_tokens, output_tokens, token_basis = get("input_tokens"), get("output_tokens"), basis
        else:
            input_tokens = model_calls * r.input_tokens_per_call
            output_tokens = model_calls * r.output_tokens_per_call
            token_basis = Basis.GIVEN
        tokens.append(
            TokenUse(model=r.model, calls=model_calls, input_tokens=input_tokens, output_tokens=output_tokens, basis=token_basis)
        )
    unit = ", ".join(_unit(variant, times) for variant, times in rec.components)
    return TaskUsage(pattern="+".join(rec.patterns), unit=unit, architecture=s.architecture, quantities=q, tokens=tokens)


_UNITS = {
    "request": ("request", "requests"),
    "session_start": ("session opened", "sessions opened"),
    "turn": ("turn", "turns"),
    "task": ("task", "tasks"),
    "long_task": ("long task", "long tasks"),
    "reviewed_task": ("task with an approval", "tasks with an approval"),
    "routed": ("routed request", "routed requests"),
    "research": ("research task", "research tasks"),
}


def _unit(variant: str, times: float) -> str:
    one, many = _UNITS.get(variant, (variant, variant))
    return f"{times:g} {one if times == 1 else many}"


def fixed_monthly(counts: CallCounts, rec: Recommendation) -> FixedMonthly:
    """What the plan's stacks cost per month whatever the traffic: from the synthesized templates' resources."""
    total: dict[str, float] = {}
    for pattern in rec.patterns:
        for name, value in counts.templates.get(pattern, {}).items():
            total[name] = total.get(name, 0.0) + value
    q: dict[str, Quantity] = {}
    for item, key in (("alarms", "alarms"), ("dashboards", "dashboards"), ("secrets", "secrets"), ("kms_keys", "kms_keys")):
        if total.get(key, 0) > 0:
            q[item] = Quantity(value=total[key], basis=Basis.COUNTED, note="in the synthesized templates")
    agents = total.get("agent_functions", 0)
    if agents:
        q["custom_metrics"] = Quantity(
            value=agents * METRICS_PER_AGENT_FUNCTION,
            basis=Basis.ESTIMATED,
            note=f"about {METRICS_PER_AGENT_FUNCTION} per agent function ({agents:g})",
        )
    s = rec.settings
    if s.provisioned_concurrency:
        seconds = s.provisioned_concurrency * s.memory_mb / 1024.0 * 730 * 3600
        q["provisioned_gb_seconds"] = Quantity(
            value=seconds, basis=Basis.GIVEN, note=f"{s.provisioned_concurrency} environments all month"
        )
    return FixedMonthly(quantities=q)
