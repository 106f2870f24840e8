"""The scripted tour: a few requests per pattern that show what the API does, each checked against what it should do.

Adding a pattern is a data change: add its steps to :data:`TOURS`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from agentrail_cli.client import AgentApiClient

Body = Any
Predicate = Callable[[httpx.Response, Body], bool]

#: Characters of "€" are three bytes in UTF-8: 6,000 of them are within the API's 8,000-character
#: schema but over the handler's 16 KiB byte limit, so the handler (not the gateway) answers 413.
OVERSIZED_MESSAGE = "€" * 6000


@dataclass(frozen=True)
class Check:
    """One expectation about a response, described for the reader."""

    description: str
    holds: Predicate


@dataclass(frozen=True)
class TourStep:
    """One request of the tour and what must come back."""

    title: str
    method: str
    path: str
    expect_status: int
    json: Any = None
    raw_body: str | None = None
    authenticated: bool = True
    checks: tuple[Check, ...] = ()
    note: str = ""


def _answer_mentions(*words: str) -> Predicate:
    return lambda _, body: isinstance(body, dict) and all(w in str(body.get("answer", "")) for w in words)


def _used_tools(*tools: str) -> Predicate:
    return lambda _, body: isinstance(body, dict) and set(tools) <= {c.get("tool") for c in body.get("tool_calls", [])}


def _error_is(*codes: str) -> Predicate:
    return lambda _, body: isinstance(body, dict) and body.get("error") in codes


def _does_not_contain(*fragments: str) -> Predicate:
    return lambda response, _: not any(f in response.text for f in fragments)


def _has_usage_and_cost(_: httpx.Response, body: Body) -> bool:
    return isinstance(body, dict) and body.get("usage", {}).get("total_tokens", 0) > 0 and isinstance(body.get("cost_usd"), int | float)


def _health_lists(name: str) -> Predicate:
    return lambda _, body: isinstance(body, dict) and any(c.get("name") == name for c in body.get("checks", []))


_NO_LEAK = Check("no stack trace, input not echoed", _does_not_contain("Traceback", "tour-marker"))

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
            Check("reports tokens and cost", _has_usage_and_cost),
        ),
        note="The local model plans tool calls; each step is logged with the request's correlation id.",
    ),
    TourStep(
        "An order lookup",
        "POST",
        "/invoke",
        200,
        json={"message": "What is the status of order A-1002?"},
        checks=(Check("called lookup_order", _used_tools("lookup_order")), Check("answer mentions the status", _answer_mentions("processing"))),
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

#: Steps per pattern (the ``agentrail:pattern`` tag of the REST API).
TOURS: dict[str, tuple[TourStep, ...]] = {"stateless": STATELESS_TOUR}


@dataclass
class StepOutcome:
    step: TourStep
    status: int | None
    failures: list[str] = field(default_factory=list)

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
        lines = ["{"]
        for position, (key, item) in enumerate(value.items()):
            rendered = _render(item, inner, width)
            rendered[0] = f"{inner}{json.dumps(key)}: {rendered[0]}"
            rendered[1:] = [line for line in rendered[1:]]
            if position < len(value) - 1:
                rendered[-1] += ","
            lines.extend(rendered)
        return [*lines, indent + "}"]
    lines = ["["]
    for position, item in enumerate(value):
        rendered = _render(item, inner, width)
        rendered[0] = inner + rendered[0]
        if position < len(value) - 1:
            rendered[-1] += ","
        lines.extend(rendered)
    return [*lines, indent + "]"]


def _pretty(body: Any, *, indent: str = "      ") -> str:
    if isinstance(body, str):
        return indent + (body if len(body) <= 200 else body[:200] + "…")
    lines = _render(_shorten(body), indent)
    lines[0] = indent + lines[0]
    return "\n".join(lines)


def run_step(client: AgentApiClient, step: TourStep) -> tuple[StepOutcome, httpx.Response | None, float]:
    started = time.perf_counter()
    try:
        if step.raw_body is not None:
            response = client.request(step.method, step.path, content=step.raw_body, authenticated=step.authenticated)
        else:
            response = client.request(step.method, step.path, json=step.json, authenticated=step.authenticated)
    except httpx.HTTPError as error:
        return StepOutcome(step, None, [f"request failed: {type(error).__name__}: {error}"]), None, 0.0
    elapsed = (time.perf_counter() - started) * 1000
    try:
        body: Body = response.json()
    except ValueError:
        body = response.text
    outcome = StepOutcome(step, response.status_code)
    if response.status_code != step.expect_status:
        outcome.failures.append(f"expected HTTP {step.expect_status}, got {response.status_code}")
    for check in step.checks:
        if not check.holds(response, body):
            outcome.failures.append(f"expected: {check.description}")
    return outcome, response, elapsed


def run_tour(client: AgentApiClient, steps: Sequence[TourStep], *, out: TextIO, title: str) -> list[StepOutcome]:
    """Run ``steps`` against ``client``, printing each request, response and verdict to ``out``."""
    print(f"\n{title}\n", file=out)
    outcomes = []
    for number, step in enumerate(steps, 1):
        print(f"[{number}/{len(steps)}] {step.title}", file=out)
        if step.note:
            print(f"      {step.note}", file=out)
        auth = "" if step.authenticated else "   (no credentials)"
        print(f"  → {step.method} {step.path}{auth}", file=out)
        if step.raw_body is not None:
            print(f"      {step.raw_body}   (not valid JSON)", file=out)
        elif step.json is not None:
            print(_pretty(step.json), file=out)
        outcome, response, elapsed = run_step(client, step)
        if response is not None:
            print(f"  ← {response.status_code} {response.reason_phrase} · {elapsed:.0f} ms", file=out)
            try:
                print(_pretty(response.json()), file=out)
            except ValueError:
                print(_pretty(response.text[:400]), file=out)
        if outcome.passed:
            described = [f"HTTP {step.expect_status}", *(c.description for c in step.checks)]
            print(f"  ✓ {'; '.join(described)}\n", file=out)
        else:
            for failure in outcome.failures:
                print(f"  ✗ {failure}", file=out)
            print(file=out)
        outcomes.append(outcome)
    return outcomes


__all__ = ["OVERSIZED_MESSAGE", "STATELESS_TOUR", "TOURS", "Check", "StepOutcome", "TourStep", "run_step", "run_tour"]
