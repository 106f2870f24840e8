"""``agentrail smoke``: the end-to-end scenarios of a pattern, against local mode or a deployed stack alike.

The scenarios are the tour's own steps (:mod:`agentrail_cli.tour`), grouped by what they prove, so the suite that
checks local mode is the one that checks a deployment: a stateless invoke; a session that remembers across two
turns; an async task polled to completion, and a refund paused for an approver when an approver can sign; a task a
router hands to a specialist; a research task a supervisor splits. They expect the demo agents on the local model
(what the app deploys by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from agentrail_cli.client import AgentApiClient
from agentrail_cli.tour import (
    ASGI_TOUR,
    ASYNC_TOUR,
    HIERARCHICAL_TOUR,
    MULTIAGENT_TOUR,
    STATEFUL_TOUR,
    STATELESS_TOUR,
    TourStep,
    run_tour,
)
from agentrail_local.apigateway.auth import APPROVER


@dataclass(frozen=True)
class Scenario:
    """Steps that prove one behaviour together; ``needs_approver`` when a step signs as the approver."""

    name: str
    steps: tuple[TourStep, ...]

    @property
    def needs_approver(self) -> bool:
        return any(step.principal == APPROVER for step in self.steps)


#: The scenarios of each pattern (the ``agentrail:pattern`` tag of its API), in the order they run.
SCENARIOS: dict[str, tuple[Scenario, ...]] = {
    "stateless": (Scenario("stateless invoke", STATELESS_TOUR[1:2]),),
    "stateful": (Scenario("session remembers two turns", STATEFUL_TOUR[0:4] + STATEFUL_TOUR[5:6]),),
    "async": (
        Scenario("async task to completion", ASYNC_TOUR[0:2]),
        Scenario("task paused for an approval", ASYNC_TOUR[4:]),
    ),
    "multiagent": (Scenario("multiagent routed task", MULTIAGENT_TOUR),),
    "hierarchical": (Scenario("hierarchical research task", HIERARCHICAL_TOUR),),
    # The example agent's routes; another ASGI app has routes of its own (smoke it with your own checks).
    "asgi": (Scenario("asgi example app", ASGI_TOUR),),
}


class PatternUnknown(Exception):
    """The API's OpenAPI document does not say which pattern it serves; the message names the fix."""


def detect_pattern(document: Mapping[str, Any]) -> str:
    """The pattern an API serves, from its OpenAPI document's paths.

    Raises
    ------
    PatternUnknown
        For a task API without approvals (multi-agent and hierarchical ones look alike), or no agent API at all.
    """
    paths = set(document.get("paths") or {})
    if "/invoke" in paths:
        return "stateless"
    if "/sessions" in paths:
        return "stateful"
    if any(path.startswith("/approvals") for path in paths):
        return "async"
    if "/tasks" in paths:
        raise PatternUnknown("the API serves /tasks without approvals; pass --pattern multiagent or --pattern hierarchical")
    raise PatternUnknown("the API's OpenAPI document shows no agentrail routes; pass --pattern")


def fetch_pattern(client: AgentApiClient) -> str:
    """:func:`detect_pattern` of the document at ``GET /openapi.json``.

    Raises
    ------
    PatternUnknown
        The document could not be read, or names no one pattern.
    """
    response = client.request("GET", "/openapi.json")
    if response.status_code != 200:
        raise PatternUnknown(f"GET /openapi.json answered {response.status_code}; pass --pattern")
    return detect_pattern(response.json())


@dataclass(frozen=True)
class SmokeResult:
    """The names of the scenarios that passed, failed and were skipped (with why)."""

    passed: tuple[str, ...]
    failed: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]

    @property
    def ok(self) -> bool:
        return not self.failed and bool(self.passed)


def run_smoke(
    client: AgentApiClient,
    pattern: str,
    *,
    out: TextIO,
    approver: httpx.Auth | AgentApiClient | None = None,
    only: Sequence[str] = (),
) -> SmokeResult:
    """Run the scenarios of ``pattern`` (or those named in ``only``) and say which passed.

    Parameters
    ----------
    client:
        Signs as the caller of every step but the approver's.
    approver:
        How the approver signs; without it, scenarios that need one are skipped, saying so.
    """
    passed: list[str] = []
    failed: list[str] = []
    skipped: list[tuple[str, str]] = []
    principals = {APPROVER: approver} if approver is not None else {}
    for scenario in SCENARIOS[pattern]:
        if only and scenario.name not in only:
            continue
        if scenario.needs_approver and approver is None:
            skipped.append((scenario.name, "no approver credentials (--approver-token, or local mode's approver)"))
            print(f"\nskipped: {scenario.name}: {skipped[-1][1]}", file=out)
            continue
        outcomes = run_tour(client, scenario.steps, out=out, title=f"Smoke: {scenario.name}", principals=principals)
        (passed if all(o.passed for o in outcomes) else failed).append(scenario.name)
    return SmokeResult(tuple(passed), tuple(failed), tuple(skipped))


__all__ = ["SCENARIOS", "PatternUnknown", "Scenario", "SmokeResult", "detect_pattern", "fetch_pattern", "run_smoke"]
