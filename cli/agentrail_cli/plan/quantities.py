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
- KMS: DynamoDB asks for each table's key about once every 5 minutes while the table is in use;
- the model's wait: the function holds its memory while the model answers (``model_latency`` per call);
- a research task's distributed Map: one transition per subtask in its child execution (moto does not list them).

DynamoDB storage is the bytes a task leaves, kept for its retention: records ``retention_days`` (sessions: their idle
TTL), approvals a year (their audit retention), idempotency records an hour.
"""

from __future__ import annotations

from collections.abc import Mapping

from agentrail_cli.plan.calls import CallCounts
from agentrail_cli.plan.recommend import Recommendation
from agentrail_cli.plan.requirements import Requirements
from agentrail_cli.plan.usage import Basis, FixedMonthly, Quantity, TaskUsage, TokenUse
from agentrail_cli.plan.workloads import HARDENED, NO_MODEL_CALLS, STREAMING_STATEFUL

__all__ = ["PLATFORM_LOG_BYTES", "estimated_raw", "fixed_monthly", "tables_of", "task_usage"]

PLATFORM_LOG_BYTES = 260
ACCESS_LOG_BYTES = 800
TRANSITION_LOG_BYTES = 400
GIB = float(2**30)
MONTH_DAYS = 365 / 12
#: States of the research workflow's distributed Map item processor (its Work step): each subtask's child execution
#: enters it once. moto runs the child executions without listing them, so their transitions are added by count.
MAP_ITEM_STATES = 1
#: KMS requests DynamoDB makes for one table's AWS managed key in a month: one every 5 minutes.
KMS_REQUESTS_PER_TABLE_MONTH = 12 * 730


def estimated_raw(
    counts: CallCounts, rec: Recommendation, r: Requirements, *, model_calls: float | None = None
) -> dict[str, float]:
    """Raw counts of one task of ``rec`` from the call-count file: each component's lines at its model calls."""
    calls = r.model_calls_per_task if model_calls is None else model_calls
    total: dict[str, float] = {}
    for variant, times in rec.components:
        counted = counts.variant(variant)
        if counted.regressor == "subtasks":
            # A research task's AWS use follows its subtasks; its model calls (and the memory they hold) are yours.
            per_task = counted.at(float(r.subtasks))
            measured_calls = per_task.get("model_calls", 0.0)
            held = per_task.get("model_function_memory_gb", 0.0) / measured_calls if measured_calls else 1.0
            per_task = {**per_task, "model_calls": calls, "model_function_memory_gb": held * calls}
        else:
            per_task = counted.at(0.0 if variant in NO_MODEL_CALLS else calls)
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
    tables: float = 0.0,
) -> TaskUsage:
    """The priced quantities of one task whose raw counts are ``raw``.

    Parameters
    ----------
    measured_tokens:
        Price the tokens ``raw`` holds (the local model's, for ``--measure``) instead of the requirements' tokens per
        model call.
    basis:
        How the raw counts were obtained: counted in local mode, by the benchmark or by ``--measure``.
    tables:
        DynamoDB tables of the plan's stacks, for the KMS requests DynamoDB makes for their keys.
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
    api_item = "http_api_requests" if s.api == "http" else "rest_api_requests"
    put(api_item, requests, basis)
    put(
        "websocket_messages",
        get("websocket_messages"),
        basis,
        "the demo agent's messages and events (longer answers send more token events)",
    )
    if s.streaming:
        minutes = r.turns_per_session * (r.model_calls_per_task * r.model_latency + 30.0) / 60.0
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
    children = get("subtasks") * MAP_ITEM_STATES
    put(
        "sfn_transitions",
        get("sfn_transitions") + children,
        basis,
        f"plus an estimated {children:g} in the distributed Map's child executions (local mode runs them unlisted)"
        if children
        else "",
    )
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
    if tables:
        # DynamoDB asks KMS for a table's key about once every 5 minutes while the table is in use (AWS managed key).
        put(
            "kms_requests",
            tables * KMS_REQUESTS_PER_TABLE_MONTH / r.tasks_per_month,
            Basis.ESTIMATED,
            f"{tables:g} tables x one key request every 5 minutes, spread over the month's tasks",
        )

    tokens = []
    if model_calls > 0:
        if measured_tokens:
            input_tokens, output_tokens, token_basis = get("input_tokens"), get("output_tokens"), basis
        else:
            input_tokens = model_calls * r.input_tokens_per_call
            output_tokens = model_calls * r.output_tokens_per_call
            token_basis = Basis.GIVEN
        cache_write = cache_read = 0.0
        if r.prompt_caching and not measured_tokens:
            # The stable prefix (system prompt, tool schemas) is written once per task and read by every later call.
            prefix = r.input_tokens_per_call * r.cached_prompt_share
            cache_write, cache_read = prefix, prefix * max(0.0, model_calls - 1)
            input_tokens -= cache_write + cache_read
        tokens.append(
            TokenUse(
                model=r.model,
                calls=model_calls,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                batch=r.batch_lane,
                basis=token_basis,
            )
        )
    unit = ", ".join(_unit(variant, times) for variant, times in rec.components)
    return TaskUsage(pattern="+".join(rec.patterns), unit=unit, architecture=s.architecture, quantities=q, tokens=tokens)


_UNITS = {
    "request": ("request", "requests"),
    "session_start": ("session opened", "sessions opened"),
    "turn": ("turn", "turns"),
    "stream_connect": ("streaming connection", "streaming connections"),
    "stream_turn": ("streamed turn", "streamed turns"),
    "task": ("task", "tasks"),
    "long_task": ("long task", "long tasks"),
    "reviewed_task": ("task with an approval", "tasks with an approval"),
    "routed": ("routed request", "routed requests"),
    "research": ("research task", "research tasks"),
}


def _unit(variant: str, times: float) -> str:
    one, many = _UNITS.get(variant, (variant, variant))
    return f"{times:g} {one if times == 1 else many}"


def tables_of(counts: CallCounts, rec: Recommendation) -> float:
    """DynamoDB tables in the plan's stacks, from the synthesized templates."""
    return float(sum(counts.templates.get(pattern, {}).get("tables", 0) for pattern in _template_keys(rec)))


def _template_keys(rec: Recommendation) -> list[str]:
    """The templates' keys of the plan's stacks: the stateful one with its streaming API when it streams."""
    return [STREAMING_STATEFUL if p == "stateful" and rec.settings.streaming else p for p in rec.patterns]


def fixed_monthly(counts: CallCounts, rec: Recommendation) -> FixedMonthly:
    """What the plan's stacks cost per month whatever the traffic: from the synthesized templates' resources."""
    total: dict[str, float] = {}
    for pattern in _template_keys(rec):
        for name, value in counts.templates.get(pattern, {}).items():
            total[name] = total.get(name, 0.0) + value
    q: dict[str, Quantity] = {}
    if rec.settings.security == "hardened":
        # The hardened profile's own resources: its keys and interface endpoints, from the hardened synth.
        for pattern in rec.patterns:
            hardened = counts.templates.get(f"{pattern}{HARDENED}", {})
            for key in ("kms_keys", "vpc_endpoint_azs"):
                total[key] = total.get(key, 0.0) + hardened.get(key, 0)
    for item, key in (("alarms", "alarms"), ("dashboards", "dashboards"), ("secrets", "secrets"), ("kms_keys", "kms_keys")):
        if total.get(key, 0) > 0:
            q[item] = Quantity(value=total[key], basis=Basis.COUNTED, note="in the synthesized templates")
    if total.get("vpc_endpoint_azs", 0) > 0:
        q["vpc_endpoint_hours"] = Quantity(
            value=total["vpc_endpoint_azs"] * 730,
            basis=Basis.COUNTED,
            note=f"{total['vpc_endpoint_azs']:g} interface endpoint-AZs in the hardened templates, all month",
        )
    if total.get("custom_metrics", 0) > 0:
        q["custom_metrics"] = Quantity(
            value=total["custom_metrics"],
            basis=Basis.COUNTED,
            note="the metric series the demo agents put in local mode; yours grow with your tools and models",
        )
    s = rec.settings
    if s.provisioned_concurrency:
        seconds = s.provisioned_concurrency * s.memory_mb / 1024.0 * 730 * 3600
        q["provisioned_gb_seconds"] = Quantity(
            value=seconds, basis=Basis.GIVEN, note=f"{s.provisioned_concurrency} environments all month"
        )
    return FixedMonthly(quantities=q)
