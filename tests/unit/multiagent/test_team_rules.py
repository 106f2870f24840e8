"""The pure parts of the multi-agent patterns: hand-off tools, routing by the local model, limits, settings, the demo team."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import ValidationError

from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.agent.loop import Agent, AgentStatus
from agentrail_runtime.agent.tools import ToolError
from agentrail_runtime.demo_team import (
    ACCOUNT_DESCRIPTION,
    BILLING_DESCRIPTION,
    TECHNICAL_DESCRIPTION,
    account,
    billing,
    check_service_status,
    lookup_invoice,
    research_topic,
    technical,
    update_contact_email,
)
from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.multiagent import RoutedMessage, SpecialistSpec, SpendLimit, SpentSoFar, handoff_tool
from agentrail_runtime.multiagent.hierarchy import MAX_SUBTASKS, is_weak, split_into_subtasks, summarize_findings
from agentrail_runtime.multiagent.routing import ROUTER_PROMPT, handoff_target
from agentrail_runtime.multiagent.settings import MultiAgentSettings

TEAM = {
    "billing": SpecialistSpec(name="billing", description=BILLING_DESCRIPTION),
    "technical": SpecialistSpec(name="technical", description=TECHNICAL_DESCRIPTION),
    "account": SpecialistSpec(name="account", description=ACCOUNT_DESCRIPTION),
}


def router() -> Agent:
    return Agent(model=LocalModel(), tools=[handoff_tool(spec) for spec in TEAM.values()], system_prompt=ROUTER_PROMPT)


def specialist(definition, *handoffs: str) -> Agent:
    tools = [*definition.tools, *(handoff_tool(TEAM[name]) for name in handoffs)]
    return Agent(model=LocalModel(), tools=tools, system_prompt=definition.system_prompt)


@pytest.fixture
def multi_env(env):
    for name in [n for n in os.environ if n.startswith("AGENT_")]:
        env.delenv(name)
    return env


# -- hand-offs and routing -----------------------------------------------------------------------


def test_a_handoff_tool_is_terminal_and_describes_its_specialist():
    tool = handoff_tool(TEAM["billing"])

    assert (tool.name, tool.description, tool.terminal) == ("handoff_to_billing", BILLING_DESCRIPTION, True)
    assert tool.spec.input_schema["required"] == ["request"]


@pytest.mark.parametrize(
    ("request_text", "target"),
    [
        ("Why was I charged twice on invoice INV-1001?", "billing"),
        ("The dashboard is down", "technical"),
        ("Change my email to a@b.co", "account"),
        ("Who is the account owner paying the invoices?", "account"),
    ],
)
def test_the_router_hands_each_request_to_the_specialist_whose_description_fits(request_text, target):
    result = router().run(request_text)

    assert result.status == AgentStatus.HANDED_OFF
    assert handoff_target(result) == target
    assert result.steps == 1  # the hand-off ends the run: the router never answers itself


def test_a_request_that_fits_no_description_is_not_handed_off():
    result = router().run("Hello there")

    assert result.status == AgentStatus.COMPLETED
    assert handoff_target(result) is None


def test_billing_and_account_hand_an_account_owner_question_to_each_other():
    question = "Who is the account owner paying the invoices?"

    from_account = specialist(account, "billing").run(question)
    from_billing = specialist(billing, "account").run(question)

    assert handoff_target(from_account) == "billing"
    assert handoff_target(from_billing) == "account"


def test_a_specialist_answers_what_its_tools_can_do_without_handing_off():
    result = specialist(billing, "account").run("Why was I charged twice on invoice INV-1001?")

    assert result.status == AgentStatus.COMPLETED
    assert handoff_target(result) is None
    assert '"charges": 2' in result.answer


# -- messages and limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Billing", "1st-line", "", "a" * 33, "billing team", "billing/eu"])
def test_a_specialist_name_must_be_a_short_lowercase_identifier(name):
    with pytest.raises(ValidationError, match="agent names are 1-32 characters"):
        SpecialistSpec(name=name, description=BILLING_DESCRIPTION)


def test_a_specialist_description_is_what_the_router_reads_so_it_has_bounds():
    with pytest.raises(ValidationError):
        SpecialistSpec(name="billing", description="bills")


def test_a_routed_message_counts_hops_from_zero_and_accepts_no_other_fields():
    message = RoutedMessage(task_id="t" * 32, message="hi", hop=1, sender="router", trail=["router"])

    assert json.loads(message.model_dump_json())["correlation_id"] is None
    with pytest.raises(ValidationError):
        RoutedMessage(task_id="t" * 32, message="hi", hop=-1, sender="router")
    with pytest.raises(ValidationError):
        RoutedMessage.model_validate(message.model_dump() | {"admin": True})


def test_a_routed_message_carries_the_tasks_owner_and_spend_so_far_or_neither_from_an_older_router():
    older = RoutedMessage.model_validate_json(
        '{"task_id": "' + "t" * 32 + '", "message": "hi", "hop": 1, "sender": "router", "trail": ["router"]}'
    )
    carried = older.model_copy(update={"owner": "iam:arn:aws:iam::123456789012:role/caller", "spent": SpentSoFar(tokens=120)})

    assert (older.owner, older.spent) == (None, None)
    again = RoutedMessage.model_validate_json(carried.model_dump_json())
    assert again.spent == SpentSoFar(tokens=120, usd=0.0, limit_reached=False)
    with pytest.raises(ValidationError):
        SpentSoFar(tokens=-1)


@pytest.mark.parametrize(
    ("spent", "exceeded", "remaining"),
    [
        (SpentSoFar(tokens=999), False, 1),
        (SpentSoFar(tokens=1000), True, 0),
        (SpentSoFar(tokens=10, limit_reached=True), True, 990),  # an agent could not afford its next call
    ],
)
def test_the_spend_limit_checks_the_spend_a_hand_off_carried_as_it_checks_a_task(spent, exceeded, remaining):
    assert SpendLimit(max_tokens=1000).check_spent(spent) == (exceeded, remaining)


@pytest.mark.parametrize(
    ("limit", "tokens", "usd", "exceeded", "remaining"),
    [
        (SpendLimit(), 10**9, 10**6, False, None),
        (SpendLimit(max_tokens=1000), 999, 0.0, False, 1),
        (SpendLimit(max_tokens=1000), 1000, 0.0, True, 0),
        (SpendLimit(max_tokens=1000), 1500, 0.0, True, 0),
        (SpendLimit(max_usd=0.5), 10**6, 0.49, False, None),
        (SpendLimit(max_usd=0.5), 10, 0.5, True, None),
    ],
)
def test_the_spend_limit_is_reached_at_its_tokens_or_its_usd(limit, tokens, usd, exceeded, remaining):
    assert limit.exceeded(tokens, usd) is exceeded
    assert limit.remaining_tokens(tokens) == remaining


# -- settings --------------------------------------------------------------------------------------


def test_settings_read_the_catalog_and_limits_the_construct_sets(multi_env):
    catalog = [{"name": s.name, "description": s.description, "queue_url": f"https://sqs/{s.name}"} for s in TEAM.values()]
    multi_env.setenv("AGENT_MULTI_SPECIALISTS", json.dumps(catalog))
    multi_env.setenv("AGENT_MULTI_HANDOFFS", '["account"]')
    multi_env.setenv("AGENT_MULTI_FALLBACK", "technical")
    multi_env.setenv("AGENT_MULTI_MAX_TASK_TOKENS", "5000")

    settings = MultiAgentSettings()

    assert [s.name for s in settings.specialists] == ["billing", "technical", "account"]
    assert settings.specialists[0].queue_url == "https://sqs/billing"
    assert (settings.handoffs, settings.fallback, settings.max_task_tokens, settings.max_hops) == (
        ("account",),
        "technical",
        5000,
        4,
    )


def test_the_fallback_must_be_one_of_the_specialists(multi_env):
    multi_env.setenv("AGENT_MULTI_SPECIALISTS", json.dumps([{"name": "billing", "description": BILLING_DESCRIPTION}]))
    multi_env.setenv("AGENT_MULTI_FALLBACK", "sales")

    with pytest.raises(ValidationError, match="AGENT_MULTI_FALLBACK must name one of AGENT_MULTI_SPECIALISTS"):
        MultiAgentSettings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AGENT_MULTI_MAX_HOPS", "0"),
        ("AGENT_MULTI_MAX_HOPS", "21"),
        ("AGENT_MULTI_MAX_REVIEW_ROUNDS", "6"),
        ("AGENT_MULTI_TOLERATED_FAILURE_PERCENTAGE", "101"),
        ("AGENT_MULTI_MAX_TASK_TOKENS", "0"),
    ],
)
def test_limits_out_of_range_fail_at_cold_start(multi_env, name, value):
    multi_env.setenv(name, value)

    with pytest.raises(ValidationError):
        MultiAgentSettings()


# -- the supervisor's tools and review rule ---------------------------------------------------------


def test_a_request_is_split_on_semicolons_then_also_and_numbered_items():
    assert split_into_subtasks.invoke(
        split_into_subtasks.validate({"request": "Research Lambda; research flaky Step Functions; compare DynamoDB and SQS"})
    ) == ["Research Lambda", "research flaky Step Functions", "compare DynamoDB and SQS"]
    assert split_into_subtasks.invoke(
        split_into_subtasks.validate({"request": "1. explain SQS 2. explain SNS then compare them"})
    ) == ["explain SQS", "explain SNS", "compare them"]


def test_a_split_keeps_at_most_eight_subtasks_and_never_returns_none():
    many = "; ".join(f"research topic {i}" for i in range(12))

    assert len(split_into_subtasks.invoke(split_into_subtasks.validate({"request": many}))) == MAX_SUBTASKS
    assert split_into_subtasks.invoke(split_into_subtasks.validate({"request": "ok"})) == ["ok"]


def test_findings_are_combined_line_by_line():
    assert summarize_findings.invoke(summarize_findings.validate({"findings": "1. a: x\n\n2. b: y"})) == (
        "Combined answer from 2 findings:\n1. a: x\n2. b: y"
    )


@pytest.mark.parametrize(
    ("status", "answer", "weak"),
    [
        (AgentStatus.COMPLETED, 'research_topic returned {"notes": ["..."]}.', False),
        (AgentStatus.COMPLETED, "research_topic was not completed: the source did not answer", True),
        (AgentStatus.COMPLETED, "I could not match your request to a tool.", True),
        (AgentStatus.COMPLETED, "ok", True),
        (AgentStatus.COMPLETED, None, True),
        (AgentStatus.TOKEN_BUDGET_EXCEEDED, 'research_topic returned {"notes": ["..."]}.', True),
    ],
)
def test_a_result_is_weak_when_the_run_did_not_finish_gave_nothing_or_a_tool_failed(status, answer, weak):
    assert is_weak(status, answer) is weak


# -- the demo team's tools ------------------------------------------------------------------------


def test_the_demo_team_tools_answer_from_their_fixed_data():
    assert lookup_invoice.invoke(lookup_invoice.validate({"invoice_id": "INV-1001"}))["charges"] == 2
    assert check_service_status.invoke(check_service_status.validate({"service": "api"}))["status"].startswith("degraded")
    assert update_contact_email.invoke(update_contact_email.validate({"email": "a@b.co"})) == {
        "status": "confirmation sent",
        "email": "a@b.co",
    }
    with pytest.raises(ToolError, match="no invoice with this id"):
        lookup_invoice.invoke(lookup_invoice.validate({"invoice_id": "INV-9999"}))
    with pytest.raises(ValidationError):
        update_contact_email.validate({"email": "not-an-address"})
    assert [t.name for t in technical.tools] == ["check_service_status"]


def test_the_research_worker_fails_a_flaky_topic_on_its_first_attempt_only():
    arguments = research_topic.validate({"topic": "flaky Step Functions"})

    with pytest.raises(ToolError, match="the source did not answer"):
        research_topic.invoke(arguments, ToolContext(state={"attempt": 1}))
    retried = research_topic.invoke(arguments, ToolContext(state={"attempt": 2}))

    assert retried["notes"] == ["Step Functions coordinates services as state machines; Standard workflows can run for a year."]
