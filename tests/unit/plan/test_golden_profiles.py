"""Golden profiles: each example requirements file maps to the pattern, the reasons and the settings a reviewer agreed on.

The profiles are the shipped examples in ``examples/plans/`` (``agentrail plan --file examples/plans/<name>.yaml``).
Each reason is asserted with the requirements that drove it, so a rule that changes its mind fails here by name.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest

from agentrail_cli.plan.recommend import Recommendation, recommend
from agentrail_cli.plan.requirements import Requirements, load_requirements

PROFILES = Path(__file__).resolve().parents[3] / "examples" / "plans"


def plan_of(name: str) -> tuple[Requirements, Recommendation]:
    requirements = load_requirements(PROFILES / f"{name}.yaml")
    return requirements, recommend(requirements)


def chosen(rec: Recommendation, subject: str) -> tuple[str, ...]:
    """The requirements that drove the choice of ``subject`` (fails when it was not chosen)."""
    (decision,) = [d for d in rec.chosen if d.subject == subject]
    return decision.driven_by


def rejected(rec: Recommendation, subject: str) -> str:
    (decision,) = [d for d in rec.rejected if d.subject == subject]
    return decision.reason


def test_every_example_profile_is_a_golden_case() -> None:
    assert {p.stem for p in PROFILES.glob("*.yaml")} == set(GOLDEN)


def test_faq_bot_at_50_requests_an_hour_is_one_stateless_function_behind_a_rest_api() -> None:
    requirements, rec = plan_of("faq-bot")

    assert rec.patterns == ("stateless",)
    assert rec.components == (("request", 1.0),)
    assert set(chosen(rec, "stateless")) >= {"state", "task_duration"}
    assert "stateless" not in {d.subject for d in rec.rejected}
    assert "sessions would cost a read and a write per turn" in rejected(rec, "stateful")
    assert "queue would add a submit, a poll" in rejected(rec, "async")
    assert "REST API validates requests" in rejected(rec, "HTTP API")
    assert "the team's operations experience is 'none'" in rejected(rec, "always-on containers (Fargate)")
    assert rec.settings.timeout_seconds == 10  # 5 s x 1.5, at least 10
    assert rec.settings.reserved_concurrency is None and rec.settings.provisioned_concurrency is None
    assert rec.cdk_arguments == "-c patterns=stateless"
    assert requirements.tasks_per_month == 50 * 730


def test_support_chat_with_memory_is_a_streamed_stateful_session_with_its_idle_ttl() -> None:
    requirements, rec = plan_of("support-chat")

    assert rec.patterns == ("stateful",)
    assert rec.components == (("session_start", 1.0), ("stream_connect", 1.0), ("stream_turn", 8.0))
    assert set(chosen(rec, "stateful")) >= {"state", "turns_per_session", "streaming"}
    assert "state is session" in rejected(rec, "stateless")
    assert rec.settings.streaming and rec.settings.session_ttl_seconds == 7200
    assert rec.context == {"patterns": "stateful", "streaming": "true"}
    assert requirements.tasks_per_month == pytest.approx(600 / 8 * 730)


def test_overnight_research_of_two_hours_is_hierarchical_with_a_four_hour_workflow() -> None:
    _, rec = plan_of("overnight-research")

    assert rec.patterns == ("hierarchical",)
    assert rec.variant == "research"
    assert set(chosen(rec, "hierarchical")) == {"complexity", "subtasks"}
    assert "does not plan, fan out or review" in rejected(rec, "multiagent")
    assert rec.settings.execution_timeout_seconds == 4 * 3600  # twice the task, whole hours
    assert rec.settings.subtasks == 6


def test_refunds_needing_approval_are_reviewed_tasks_that_wait_two_days() -> None:
    _, rec = plan_of("refunds")

    assert rec.patterns == ("async",)
    assert rec.components == (("reviewed_task", 1.0),)
    assert set(chosen(rec, "async")) == {"approvals", "approval_wait"}
    assert rec.settings.approval_timeout_seconds == 2 * 86_400
    assert chosen(rec, "hardened profile") == ("security",)
    assert chosen(rec, "webhooks off") == ("security",)
    assert rec.context == {"patterns": "async", "approval_timeout": "172800", "security": "hardened", "webhooks": "false"}
    assert rec.settings.batch_size == 5  # short tasks share an invocation


def test_four_specialists_behind_a_router_is_multiagent_and_names_the_team_to_replace() -> None:
    _, rec = plan_of("specialist-router")

    assert rec.patterns == ("multiagent",)
    assert rec.components == (("routed", 1.0),)
    assert set(chosen(rec, "multiagent")) == {"complexity", "specialists"}
    assert chosen(rec, "your specialists") == ("specialists",)
    assert "nothing needs planning" in rejected(rec, "hierarchical")
    assert rec.settings.specialists == 4


def test_a_ten_thousand_concurrency_chat_asks_for_a_quota_and_takes_the_http_api() -> None:
    requirements, rec = plan_of("chat-10k")

    assert rec.patterns == ("stateful",)
    assert requirements.concurrency == 10_000
    assert rec.settings.reserved_concurrency == 12_000
    assert any("request 12,000 (Service Quotas" in warning for warning in rec.warnings)
    assert rec.settings.api == "http" and chosen(rec, "HTTP API") == ("requests_per_hour",)
    assert rec.settings.provisioned_concurrency == 556  # 500,000 an hour x 4 s, kept warm
    assert set(chosen(rec, "serverless first")) == {"ops_experience"}


def test_twenty_minute_summaries_outlive_one_lambda_invocation_and_run_as_long_tasks() -> None:
    _, rec = plan_of("nightly-summaries")

    assert rec.patterns == ("async",)
    assert rec.variant == "long_task"
    assert "longer than the 15 minutes one Lambda invocation may run" in rec.chosen[0].reason
    assert chosen(rec, "task_type long") == ("task_duration",)
    assert rec.settings.batch_size == 1  # a slow task never holds others' visibility
    assert rec.settings.execution_timeout_seconds == 3600


def test_a_chat_that_sometimes_starts_a_refund_mixes_sessions_with_reviewed_tasks() -> None:
    _, rec = plan_of("chat-with-refunds")

    assert rec.patterns == ("stateful", "async")
    assert rec.components == (("session_start", 1.0), ("turn", 6.0), ("reviewed_task", 0.05))
    assert set(chosen(rec, "async")) == {"approvals", "approval_wait"}
    assert chosen(rec, "stateful") == ("state",)
    assert rec.settings.session_ttl_seconds == 86_400 and rec.settings.approval_timeout_seconds == 86_400


def test_a_busy_stateless_classifier_takes_the_http_api_and_provisioned_concurrency() -> None:
    _, rec = plan_of("classifier-at-scale")

    assert rec.patterns == ("stateless",)
    assert rec.settings.api == "http"
    assert rec.settings.provisioned_concurrency == 112  # 200,000 an hour x 2 s
    assert set(chosen(rec, "provisioned concurrency 112")) == {"requests_per_hour", "latency"}


GOLDEN = {
    "faq-bot",
    "support-chat",
    "overnight-research",
    "refunds",
    "specialist-router",
    "chat-10k",
    "nightly-summaries",
    "chat-with-refunds",
    "classifier-at-scale",
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_the_app_py_stanza_names_real_constructs_and_options(name: str) -> None:
    """The stanza parses, imports names the construct library exports, and passes only keywords they take."""
    import agentrail_constructs
    import agentrail_constructs.stacks.pattern

    requirements, rec = plan_of(name)
    tree = ast.parse(rec.stanza(requirements))

    for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        target = getattr(agentrail_constructs, call.func.id, None)
        if target is None:
            continue
        if dataclasses.is_dataclass(target):
            accepted = {f.name for f in dataclasses.fields(target)}
        else:
            parameters = inspect.signature(target.__init__).parameters
            accepted = set(parameters)
            if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
                accepted |= set(inspect.signature(agentrail_constructs.stacks.pattern.PatternStack.__init__).parameters)
        assert {k.arg for k in call.keywords} <= accepted, call.func.id
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "agentrail_constructs"
        for alias in node.names
    }
    assert imported <= set(agentrail_constructs.__all__)
