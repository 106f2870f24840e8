"""The scripted tour: a few requests per pattern that show what the API does, each checked against what it should do.

Adding a pattern is a data change: add its steps to :data:`TOURS`. A step can

- reuse what an earlier step captured, with ``{name}`` placeholders in its path (``/tasks/{task_id}``);
- capture values from its own response for later steps (``capture=(("task_id", _field("task_id")),)``);
- repeat its request until a condition holds (``poll=PollUntil(...)``), for work that finishes later
  (``*_submit_then_read(...)`` gives the two steps of a task: submit it, then read it until it has finished);
- be signed as another principal (``principal=APPROVER``), with the credentials :func:`run_tour` is given for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from agentrail_cli.client import AgentApiClient, json_or_text
from agentrail_local.apigateway.auth import APPROVER

Body = Any

#: Characters of "€" are three bytes in UTF-8: 6,000 of them are within the API's 8,000-character
#: schema but over the handler's 16 KiB byte limit, so the handler (not the gateway) answers 413.
OVERSIZED_MESSAGE = "€" * 6000
#: Task states that never change again (the runtime's ``agentrail_runtime.tasks.models.FINISHED``, as the API spells them).
FINISHED_TASK_STATES = frozenset({"succeeded", "failed", "cancelled", "budget_exceeded"})


@dataclass(frozen=True)
class Reply:
    """What checks and captures see: the response, its JSON body (or text) and the values captured so far."""

    response: httpx.Response
    body: Body
    values: Mapping[str, Any]


Predicate = Callable[[Reply], bool]
Extractor = Callable[[Reply], Any]


@dataclass(frozen=True)
class Check:
    """One expectation about a response, described for the reader."""

    description: str
    holds: Predicate


@dataclass(frozen=True)
class PollUntil:
    """Send the step's request again until ``condition`` holds or ``timeout_seconds`` have passed.

    The step's status and checks then apply to the last response.
    """

    condition: Check
    timeout_seconds: float = 30.0
    interval_seconds: float = 0.2


@dataclass(frozen=True)
class TourStep:
    """One request of the tour and what must come back.

    ``path`` may hold ``{name}`` placeholders, filled with values an earlier step captured.
    """

    title: str
    method: str
    path: str
    expect_status: int
    json: Any = None
    raw_body: str | None = None
    authenticated: bool = True
    principal: str | None = None
    checks: tuple[Check, ...] = ()
    capture: tuple[tuple[str, Extractor], ...] = ()
    poll: PollUntil | None = None
    note: str = ""


# -- reading responses -------------------------------------------------------------------------


def field_at(body: Body, path: str) -> Any:
    """``body["a"]["b"][0]`` for ``path="a.b.0"``; ``None`` when any part is missing."""
    value = body
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _field(path: str) -> Extractor:
    return lambda reply: field_at(reply.body, path)


def _equals(path: str, expected: Any) -> Predicate:
    return lambda reply: field_at(reply.body, path) == expected


def _at_least(path: str, minimum: float) -> Predicate:
    def holds(reply: Reply) -> bool:
        value = field_at(reply.body, path)
        return isinstance(value, int | float) and value >= minimum

    return holds


def _mentions(path: str, *words: str) -> Predicate:
    return lambda reply: all(w in str(field_at(reply.body, path) or "") for w in words)


def _answer_mentions(*words: str) -> Predicate:
    return _mentions("answer", *words)


def _used_tools(*tools: str, path: str = "tool_calls") -> Predicate:
    return lambda reply: set(tools) <= {c.get("tool") for c in field_at(reply.body, path) or [] if isinstance(c, dict)}


def _error_is(*codes: str) -> Predicate:
    return lambda reply: field_at(reply.body, "error") in codes


def _does_not_contain(*fragments: str) -> Predicate:
    return lambda reply: not any(f in reply.response.text for f in fragments)


def _has_usage_and_cost() -> Predicate:
    def holds(reply: Reply) -> bool:
        tokens = field_at(reply.body, "usage.total_tokens")
        return isinstance(tokens, int) and tokens > 0 and isinstance(field_at(reply.body, "cost_usd"), int | float)

    return holds


def _health_lists(name: str) -> Predicate:
    return lambda reply: any(c.get("name") == name for c in field_at(reply.body, "checks") or [])


def _status_is(*states: str) -> Predicate:
    return lambda reply: field_at(reply.body, "status") in states


def _status_url_of(value: str) -> Predicate:
    return lambda reply: field_at(reply.body, "status_url") == f"/tasks/{reply.values.get(value)}"


def _is_hex_id(path: str) -> Predicate:
    def holds(reply: Reply) -> bool:
        value = field_at(reply.body, path)
        return isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value)

    return holds


def _approvals_of(reply: Reply, task_value: str) -> list[dict[str, Any]]:
    """The listed approvals that belong to the task captured as ``task_value``."""
    wanted = reply.values.get(task_value)
    return [a for a in field_at(reply.body, "approvals") or [] if a.get("task_id") == wanted]


def _approval_of(task_value: str) -> Extractor:
    """The id of the pending approval that belongs to the task captured as ``task_value``."""
    return lambda reply: next((a.get("approval_id") for a in _approvals_of(reply, task_value)), None)


def _approval_of_task_asks(task_value: str, tool: str, amount: float) -> Predicate:
    def holds(reply: Reply) -> bool:
        found = _approvals_of(reply, task_value)
        return len(found) == 1 and found[0].get("tool") == tool and field_at(found[0], "arguments.amount_usd") == amount

    return holds


def _history_is(*messages: str) -> Predicate:
    return lambda reply: [t.get("message") for t in field_at(reply.body, "history") or []] == list(messages)


def _spend_by(*agents: str) -> Predicate:
    return lambda reply: set(agents) <= set(field_at(reply.body, "spend") or {})


def _subtask_attempts(text_fragment: str, attempts: int) -> Predicate:
    def holds(reply: Reply) -> bool:
        subtasks = field_at(reply.body, "result.data.subtasks") or []
        return any(
            text_fragment in str(s.get("text")) and s.get("attempts") == attempts and s.get("status") == "done" for s in subtasks
        )

    return holds


_NO_LEAK = Check("no stack trace, input not echoed", _does_not_contain("Traceback", "tour-marker"))
_NO_TOKEN = Check("no task token in the response", _does_not_contain("task_token", "taskToken"))
_FINISHED = Check("the task has finished", _status_is(*FINISHED_TASK_STATES))
_SUCCEEDED = Check("succeeded", _status_is("succeeded"))


def _read_task(
    title: str, task: str, *, checks: tuple[Check, ...], until: Check = _FINISHED, seconds: float = 30.0, note: str = ""
) -> TourStep:
    """``GET /tasks/{task}`` until ``until`` holds (the task captured as ``task``); ``checks`` apply to the last read."""
    return TourStep(
        title, "GET", f"/tasks/{{{task}}}", 200, poll=PollUntil(until, timeout_seconds=seconds), checks=checks, note=note
    )


def _submit_then_read(
    title: str,
    message: dict[str, Any],
    *,
    task: str = "task_id",
    submit_checks: tuple[Check, ...] = (),
    note: str = "",
    read_title: str = "Poll until it has finished",
    checks: tuple[Check, ...],
    until: Check = _FINISHED,
    seconds: float = 30.0,
    read_note: str = "",
) -> tuple[TourStep, TourStep]:
    """Submit a task (``POST /tasks``, 202, its id captured as ``task``), then :func:`_read_task` it."""
    return (
        TourStep(
            title, "POST", "/tasks", 202, json=message, checks=submit_checks, capture=((task, _field("task_id")),), note=note
        ),
        _read_task(read_title, task, checks=checks, until=until, seconds=seconds, note=read_note),
    )


# -- the tours --------------------------------------------------------------------------------

STATELESS_TOUR: tuple[TourStep, ...] = (
    TourStep(
        "Health check",
        "GET",
        "/health",
        200,
        checks=(Check("lists model:local", _health_lists("model:local")),),
        note="The function proves its model provider and AWS dependencies are reachable.",
    ),
    TourStep(
        "The agent uses two tools",
        "POST",
        "/invoke",
        200,
        json={"message": "Calculate (12 + 30) * 2 and convert 10 km to mi"},
        checks=(
            Check("answer mentions 84", _answer_mentions("84")),
            Check("called calculator and convert_units", _used_tools("calculator", "convert_units")),
            Check("reports tokens and cost", _has_usage_and_cost()),
        ),
        note="The local model plans tool calls; each step is logged with the request's correlation id.",
    ),
    TourStep(
        "An order lookup",
        "POST",
        "/invoke",
        200,
        json={"message": "What is the status of order A-1002?"},
        checks=(
            Check("called lookup_order", _used_tools("lookup_order")),
            Check("answer mentions the status", _answer_mentions("processing")),
        ),
    ),
    TourStep(
        "No credentials",
        "POST",
        "/invoke",
        403,
        json={"message": "hello"},
        authenticated=False,
        checks=(Check("refused by the gateway", _error_is("not_found_or_unauthenticated", "invalid_api_key")),),
        note="API Gateway refuses it before any function runs.",
    ),
    TourStep(
        "Malformed JSON",
        "POST",
        "/invoke",
        400,
        raw_body='{"message": "tour-marker',
        checks=(Check("refused by the gateway's schema", _error_is("invalid_request")), _NO_LEAK),
    ),
    TourStep(
        "Unknown route",
        "GET",
        "/no-such-route",
        403,
        checks=(Check("same answer as a missing credential", _error_is("not_found_or_unauthenticated")),),
        note="API Gateway does not reveal which routes exist.",
    ),
    TourStep(
        "A body over the handler's byte limit",
        "POST",
        "/invoke",
        413,
        json={"message": OVERSIZED_MESSAGE},
        checks=(Check("the handler answers payload_too_large", _error_is("payload_too_large")), _NO_LEAK),
        note="6,000 three-byte characters pass the gateway's 8,000-character schema; the handler's 16 KiB limit stops them.",
    ),
)

STATEFUL_TOUR: tuple[TourStep, ...] = (
    TourStep(
        "Start a conversation",
        "POST",
        "/sessions",
        201,
        json={},
        checks=(
            Check("returns a session id", _is_hex_id("session_id")),
            Check("says when it expires", _at_least("expires_at", 1)),
        ),
        capture=(("session_id", _field("session_id")),),
        note="A session belongs to the caller who created it; its turns live in DynamoDB and expire after a day without use.",
    ),
    TourStep(
        "Tell the agent a fact",
        "POST",
        "/sessions/{session_id}/messages",
        200,
        json={"message": "My name is Ada"},
        checks=(Check("this is turn 1", _equals("turn", 1)), Check("reports tokens and cost", _has_usage_and_cost())),
    ),
    TourStep(
        "Ask about it in a later request",
        "POST",
        "/sessions/{session_id}/messages",
        200,
        json={"message": "What is my name?"},
        checks=(Check("answer mentions Ada", _answer_mentions("Ada")), Check("this is turn 2", _equals("turn", 2))),
        note="Each turn runs in a fresh Lambda invocation; the agent sees the session's history window.",
    ),
    TourStep(
        "Read the session",
        "GET",
        "/sessions/{session_id}",
        200,
        checks=(
            Check("2 turns", _equals("turns", 2)),
            Check("history holds both messages, in order", _history_is("My name is Ada", "What is my name?")),
        ),
    ),
    TourStep(
        "A malformed session id",
        "POST",
        "/sessions/tour-marker/messages",
        400,
        json={"message": "hello"},
        checks=(Check("refused as invalid_request", _error_is("invalid_request")), _NO_LEAK),
        note="Session ids are 32 hex characters; anything else never reaches the table.",
    ),
    TourStep(
        "Erase the session",
        "DELETE",
        "/sessions/{session_id}",
        204,
        checks=(Check("no body", lambda reply: reply.response.content == b""),),
        note="The turns, state and summary go at once, not when the TTL would have removed them.",
    ),
    TourStep(
        "It is gone",
        "GET",
        "/sessions/{session_id}",
        404,
        checks=(Check("session_not_found", _error_is("session_not_found")),),
    ),
)

ASYNC_TOUR: tuple[TourStep, ...] = (
    *_submit_then_read(
        "Submit a task",
        {"message": "Calculate (12 + 30) * 2"},
        submit_checks=(
            Check("returns a task id", _is_hex_id("task_id")),
            Check("status_url points at the task", _status_url_of("task_id")),
        ),
        note="The API answers at once; a worker takes the task from an SQS queue.",
        checks=(
            _SUCCEEDED,
            Check("answer mentions 84", _mentions("result.answer", "84")),
            Check("called calculator", _used_tools("calculator", path="result.tool_calls")),
            Check("reports tokens and cost", _has_usage_and_cost()),
        ),
    ),
    *_submit_then_read(
        "A long task",
        {"message": "Calculate (12 + 30) * 2 and convert 10 km to mi", "task_type": "long"},
        task="long_task_id",
        note="Task type 'long' runs in a Step Functions workflow: the agent is checkpointed between steps.",
        read_title="Poll the long task",
        checks=(_SUCCEEDED, Check("used both tools", _used_tools("calculator", "convert_units", path="result.tool_calls"))),
    ),
    *_submit_then_read(
        "A refund that needs a human",
        {"message": "Please refund 150 USD for order A-1002", "task_type": "reviewed"},
        task="refund_task_id",
        note="Refunds above 100 USD wait for an approver; the workflow pauses with a task token.",
        read_title="Poll until it waits for approval",
        until=Check("the task waits for approval or has finished", _status_is("waiting_approval", *FINISHED_TASK_STATES)),
        checks=(Check("waiting_approval", _status_is("waiting_approval")),),
    ),
    TourStep(
        "The approver's queue",
        "GET",
        "/approvals?status=pending",
        200,
        principal=APPROVER,
        checks=(Check("lists the refund of 150 USD", _approval_of_task_asks("refund_task_id", "issue_refund", 150.0)), _NO_TOKEN),
        capture=(("approval_id", _approval_of("refund_task_id")),),
        note="Approvers see what the tool would do, with exactly these arguments.",
    ),
    TourStep(
        "Approve it",
        "POST",
        "/approvals/{approval_id}/decision",
        200,
        principal=APPROVER,
        json={"decision": "approve", "comment": "Checked with the customer"},
        checks=(
            Check("approved", _status_is("approved")),
            Check("decided by the approver", _mentions("decided_by", APPROVER)),
            _NO_TOKEN,
        ),
        note="The decision resumes the paused workflow (SendTaskSuccess); it can be made only once.",
    ),
    _read_task(
        "Poll until the refund is done",
        "refund_task_id",
        checks=(_SUCCEEDED, Check("answer reports the refund", _mentions("result.answer", "refund issued", "150"))),
    ),
)

MULTIAGENT_TOUR: tuple[TourStep, ...] = _submit_then_read(
    "A billing question",
    {"message": "Why was I charged twice on invoice INV-1001?"},
    note="A router agent picks a specialist; each agent is its own function, connected by SQS queues.",
    checks=(
        _SUCCEEDED,
        Check("answered by the billing specialist", _equals("result.data.answered_by", "billing")),
        Check("answer looks at the invoice", _mentions("result.answer", "INV-1001")),
        Check("spend shows router and billing", _spend_by("router", "billing")),
    ),
    read_note="Every agent's tokens and cost are added to the task under its name.",
)

HIERARCHICAL_TOUR: tuple[TourStep, ...] = _submit_then_read(
    "A research task",
    {"message": "Research Lambda; research flaky Step Functions; compare DynamoDB and SQS", "task_type": "research"},
    note="A supervisor plans subtasks; a Step Functions distributed Map runs one worker per subtask.",
    checks=(
        _SUCCEEDED,
        Check("3 subtasks", lambda reply: len(field_at(reply.body, "result.data.subtasks") or []) == 3),
        Check("the review re-ran a failed subtask", _at_least("result.data.review_reruns", 1)),
        Check("the flaky subtask took 2 attempts", _subtask_attempts("flaky", 2)),
        Check("spend shows supervisor and worker", _spend_by("supervisor", "worker")),
    ),
    seconds=60.0,
    read_note="The flaky worker fails once, within the tolerated failure share; the supervisor's review runs it again.",
)

#: The FastAPI example agent (``examples/fastapi_agent``) behind AsgiAgent: the app's own routes and validation.
ASGI_TOUR: tuple[TourStep, ...] = (
    TourStep(
        "The app's own health route",
        "GET",
        "/health",
        200,
        checks=(Check("status ok", lambda reply: field_at(reply.body, "status") == "ok"),),
        note="ANY /{proxy+} sends every path to the app through mangum, behind the API's auth.",
    ),
    TourStep(
        "The app runs the agent",
        "POST",
        "/invoke",
        200,
        json={"message": "Calculate (12 + 30) * 2"},
        checks=(
            Check("answer mentions 84", _answer_mentions("84")),
            Check("called calculator", lambda reply: "calculator" in (field_at(reply.body, "tools") or [])),
        ),
        note="A FastAPI route calling agentrail's Agent; the answer carries the request's correlation id.",
    ),
    TourStep(
        "A blank message is the app's own 422",
        "POST",
        "/invoke",
        422,
        json={"message": "   "},
        checks=(Check("FastAPI's detail names the message", lambda reply: "message" in str(field_at(reply.body, "detail"))),),
        note="The gateway's model (generated from the app's OpenAPI document) accepts it; the app's validator does not.",
    ),
)

#: Steps per pattern (the ``agentrail:pattern`` tag of the REST API).
TOURS: dict[str, tuple[TourStep, ...]] = {
    "stateless": STATELESS_TOUR,
    "stateful": STATEFUL_TOUR,
    "async": ASYNC_TOUR,
    "multiagent": MULTIAGENT_TOUR,
    "hierarchical": HIERARCHICAL_TOUR,
    "asgi": ASGI_TOUR,
}


# -- running ----------------------------------------------------------------------------------


@dataclass
class StepOutcome:
    """What one step got: the last HTTP status (None when no response came), what failed, its time and its requests."""

    step: TourStep
    status: int | None
    failures: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    attempts: int = 0

    @property
    def passed(self) -> bool:
        return not self.failures


def _shorten(value: Any, limit: int = 160) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:40]}… ({len(value)} chars, {len(value.encode())} bytes)"
    if isinstance(value, dict):
        return {k: _shorten(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v, limit) for v in value]
    return value


def _render(value: Any, indent: str, width: int = 100) -> list[str]:
    """JSON with one line per key, nested values on one line when they fit."""
    compact = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if len(indent) + len(compact) <= width or not isinstance(value, dict | list) or not value:
        return [compact]
    inner = indent + "  "
    if isinstance(value, dict):
        opening, closing = "{", "}"
        entries = [(f"{json.dumps(key)}: ", item) for key, item in value.items()]
    else:
        opening, closing = "[", "]"
        entries = [("", item) for item in value]
    lines = [opening]
    for position, (label, item) in enumerate(entries):
        rendered = _render(item, inner, width)
        rendered[0] = f"{inner}{label}{rendered[0]}"
        if position < len(entries) - 1:
            rendered[-1] += ","
        lines.extend(rendered)
    return [*lines, indent + closing]


def _pretty(body: Any, *, indent: str = "      ") -> str:
    if isinstance(body, str):
        return indent + (body if len(body) <= 200 else body[:200] + "…")
    lines = _render(_shorten(body), indent)
    lines[0] = indent + lines[0]
    return "\n".join(lines)


class PrincipalClients:
    """One API client per principal a tour signs as, made on first use.

    Parameters
    ----------
    client:
        The tour's client; steps without ``principal`` use it.
    principals:
        Per principal name, its authentication or a ready client (left open). Default: none, so a step that
        names a principal fails.
    """

    def __init__(self, client: AgentApiClient, principals: Mapping[str, httpx.Auth | AgentApiClient] | None = None) -> None:
        self._default = client
        self._given = principals or {}
        self._made: dict[str, AgentApiClient] = {}

    def client_for(self, principal: str | None) -> AgentApiClient:
        """Raises LookupError for a principal without credentials."""
        if principal is None:
            return self._default
        given = self._given.get(principal)
        if given is None:
            raise LookupError(f"no credentials for {principal}")
        if isinstance(given, AgentApiClient):
            return given
        if principal not in self._made:
            self._made[principal] = AgentApiClient(self._default.base_url, auth=given)
        return self._made[principal]

    def close(self) -> None:
        for client in self._made.values():
            client.close()


def _send(client: AgentApiClient, step: TourStep, path: str) -> httpx.Response:
    if step.raw_body is not None:
        return client.request(step.method, path, content=step.raw_body, authenticated=step.authenticated)
    return client.request(step.method, path, json=step.json, authenticated=step.authenticated)


def run_step(
    client: AgentApiClient,
    step: TourStep,
    values: dict[str, Any] | None = None,
    *,
    signers: PrincipalClients | None = None,
) -> tuple[StepOutcome, httpx.Response | None]:
    """Send one step (repeatedly, for a polling step), check it and add what it captures to ``values``.

    ``signers`` gives the client of a step's ``principal``. Returns the outcome (with the milliseconds the
    step took) and the last response.
    """
    values = {} if values is None else values
    started = time.perf_counter()
    try:
        path = step.path.format_map(values)
    except KeyError as missing:
        return StepOutcome(step, None, [f"needs {missing.args[0]} from an earlier step"]), None
    own = signers is None
    signers = signers or PrincipalClients(client)
    try:
        return _run_step(signers, step, path, values, started)
    finally:
        if own:
            signers.close()


def _run_step(
    signers: PrincipalClients, step: TourStep, path: str, values: dict[str, Any], started: float
) -> tuple[StepOutcome, httpx.Response | None]:
    try:
        sender = signers.client_for(step.principal)
    except LookupError as error:
        return StepOutcome(step, None, [str(error)]), None
    deadline = started + (step.poll.timeout_seconds if step.poll else 0.0)
    attempts = 0
    while True:
        attempts += 1
        try:
            response = _send(sender, step, path)
        except httpx.HTTPError as error:
            elapsed = (time.perf_counter() - started) * 1000
            return StepOutcome(step, None, [f"request failed: {type(error).__name__}: {error}"], elapsed, attempts), None
        reply = Reply(response, json_or_text(response), values)
        if step.poll is None or step.poll.condition.holds(reply) or time.perf_counter() >= deadline:
            break
        time.sleep(step.poll.interval_seconds)
    elapsed = (time.perf_counter() - started) * 1000
    outcome = StepOutcome(step, response.status_code, elapsed_ms=elapsed, attempts=attempts)
    if step.poll is not None and not step.poll.condition.holds(reply):
        outcome.failures.append(f"still not true after {step.poll.timeout_seconds:g} s: {step.poll.condition.description}")
    if response.status_code != step.expect_status:
        outcome.failures.append(f"expected HTTP {step.expect_status}, got {response.status_code}")
    # Captured first, so this step's checks can use what it captured (the task id in its status_url...).
    for name, extract in step.capture:
        value = extract(reply)
        if value is None:
            outcome.failures.append(f"could not read {name} from the response")
        else:
            values[name] = value
    for check in step.checks:
        if not check.holds(reply):
            outcome.failures.append(f"expected: {check.description}")
    return outcome, response


def run_tour(
    client: AgentApiClient,
    steps: Sequence[TourStep],
    *,
    out: TextIO,
    title: str,
    principals: Mapping[str, httpx.Auth | AgentApiClient] | None = None,
) -> list[StepOutcome]:
    """Run ``steps`` against ``client``, printing each request, response, verdict and timing to ``out``.

    Parameters
    ----------
    client:
        Signs as the tour's default principal.
    principals:
        Authentication (or a client) per principal that steps name in ``principal``. Default: none (such steps fail).
    """
    print(f"\n{title}\n", file=out)
    outcomes = []
    values: dict[str, Any] = {}
    signers = PrincipalClients(client, principals)
    started = time.perf_counter()
    try:
        for number, step in enumerate(steps, 1):
            outcomes.append(_run_and_print(client, step, number, len(steps), values, signers, out))
    finally:
        signers.close()
    seconds = time.perf_counter() - started
    passed = sum(o.passed for o in outcomes)
    print(f"  {passed}/{len(outcomes)} steps passed in {seconds:.1f} s\n", file=out)
    return outcomes


def _run_and_print(
    client: AgentApiClient,
    step: TourStep,
    number: int,
    total: int,
    values: dict[str, Any],
    signers: PrincipalClients,
    out: TextIO,
) -> StepOutcome:
    print(f"[{number}/{total}] {step.title}", file=out)
    if step.note:
        print(f"      {step.note}", file=out)
    if not step.authenticated:
        who = "   (no credentials)"
    elif step.principal:
        who = f"   (signed as {step.principal})"
    else:
        who = ""
    try:
        shown_path = step.path.format_map(values)
    except KeyError:
        shown_path = step.path
    repeat = f"   (repeated until {step.poll.condition.description})" if step.poll else ""
    print(f"  → {step.method} {shown_path}{who}{repeat}", file=out)
    if step.raw_body is not None:
        print(f"      {step.raw_body}   (not valid JSON)", file=out)
    elif step.json is not None:
        print(_pretty(step.json), file=out)
    outcome, response = run_step(client, step, values, signers=signers)
    if response is not None:
        polled = f" · {outcome.attempts} requests" if step.poll else ""
        print(f"  ← {response.status_code} {response.reason_phrase} · {outcome.elapsed_ms:.0f} ms{polled}", file=out)
        body = json_or_text(response)
        if body != "":
            print(_pretty(body if not isinstance(body, str) else body[:400]), file=out)
    if outcome.passed:
        described = [f"HTTP {step.expect_status}", *(c.description for c in step.checks)]
        print(f"  ✓ {'; '.join(described)}\n", file=out)
    else:
        for failure in outcome.failures:
            print(f"  ✗ {failure}", file=out)
        print(file=out)
    return outcome


__all__ = [
    "ASGI_TOUR",
    "ASYNC_TOUR",
    "FINISHED_TASK_STATES",
    "HIERARCHICAL_TOUR",
    "MULTIAGENT_TOUR",
    "OVERSIZED_MESSAGE",
    "STATEFUL_TOUR",
    "STATELESS_TOUR",
    "TOURS",
    "Check",
    "PollUntil",
    "PrincipalClients",
    "Reply",
    "StepOutcome",
    "TourStep",
    "field_at",
    "run_step",
    "run_tour",
]
