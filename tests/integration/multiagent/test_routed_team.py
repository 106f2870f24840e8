"""The demo support team (router, billing, technical, account, orchestrator) through its Lambda handlers and SQS queues."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from botocore.stub import ANY

from agentrail_runtime.agent.loop import AgentCheckpoint
from agentrail_runtime.metering.pricing import ModelPrice, PriceTable
from agentrail_runtime.models.registry import ProviderFactory
from agentrail_runtime.tasks.store import TaskStore
from agentrail_runtime.tasks.timeline import task_events
from tests.integration.multiagent.conftest import IDEMPOTENCY_TABLE, TASK_TABLE

# Batches that reach no agent flush only ColdStart, and Powertools warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

MISCONFIGURED_MODEL = {"AGENT_MODEL": "openai:gpt-4o-mini", "AGENT_OPENAI_API_KEY_SECRET": "agentrail/missing-openai-key"}


@pytest.mark.parametrize(
    ("request_text", "specialist", "tool_output"),
    [
        ("Why was I charged twice on invoice INV-1001?", "billing", '"note": "duplicate charge refunded on 2026-11-21"'),
        ("The dashboard is down", "technical", '"service": "dashboard", "status": "operational"'),
        ("Change my email to a@b.co", "account", '"email": "a@b.co", "status": "confirmation sent"'),
    ],
)
def test_a_routed_request_reaches_the_right_specialist_and_completes(team, aws, request_text, specialist, tool_output):
    handlers = team()
    task_id = handlers.submit(request_text)

    handlers.pump()

    task = aws.task(task_id)
    assert task.status == "succeeded"
    assert task.error is None
    assert tool_output in task.result.answer
    assert task.result.data == {"answered_by": specialist, "trail": ["router", specialist], "hops": 1}
    assert [name for name, _ in handlers.deliveries] == ["router", specialist, "orchestrator"]
    [finished] = aws.task_events()
    assert (finished["detail-type"], finished["detail"]["status"]) == ("Task Finished", "succeeded")


@pytest.mark.parametrize(
    ("max_hops", "trail"),
    [
        (4, ["router", "account", "billing", "account", "billing"]),
        (2, ["router", "account", "billing"]),
    ],
)
def test_a_routing_loop_is_stopped_by_the_hop_limit_and_fails_the_task_with_its_trail(team, aws, max_hops, trail):
    # billing and account each hand "account owner ... invoices" to the other.
    handlers = team(max_hops=max_hops)
    task_id = handlers.submit("Who is the account owner paying the invoices?")

    handlers.pump()

    task = aws.task(task_id)
    assert task.status == "failed"
    assert task.error.code == "routing_loop"
    assert task.error.message == f"stopped after {max_hops} hand-offs: {' > '.join(trail)}"
    assert task.result.data["trail"] == trail
    assert task.result.data["hops"] == max_hops
    assert len([name for name, _ in handlers.deliveries if name in ("billing", "account")]) == max_hops


def test_an_unclassifiable_request_without_a_fallback_gets_a_clarifying_question(team, aws):
    handlers = team()
    task_id = handlers.submit("Hello there")

    handlers.pump()

    task = aws.task(task_id)
    assert task.status == "succeeded"
    assert task.result.answer == (
        "I could not tell which specialist should handle this; please say whether it is about account, billing, technical."
    )
    assert task.result.data == {"answered_by": "router", "trail": ["router"], "hops": 0}
    assert [name for name, _ in handlers.deliveries] == ["router", "orchestrator"]


def test_an_unclassifiable_request_goes_to_the_configured_fallback(team, aws):
    handlers = team(fallback="technical")
    task_id = handlers.submit("Hello there")

    handlers.pump()

    task = aws.task(task_id)
    assert task.result.data["answered_by"] == "technical"
    assert task.result.data["trail"] == ["router", "technical"]
    assert task.status == "succeeded"
    assert task.result.answer.startswith("I could not match your request to a tool. I can use: check_service_status")


def test_a_failing_specialist_dead_letters_its_own_messages_and_fails_only_its_tasks(team, aws):
    # The technical specialist's model is misconfigured: its API key secret does not exist.
    handlers = team(overrides={"technical": MISCONFIGURED_MODEL})
    broken = handlers.submit("The dashboard is down")
    healthy = [handlers.submit("Why was I charged twice on invoice INV-1001?"), handlers.submit("Change my email to a@b.co")]
    handlers.deliver("router")

    first = handlers.deliver("technical")
    handlers.deliver("billing"), handlers.deliver("account"), handlers.deliver("orchestrator")
    statuses_meanwhile = {task_id: aws.task(task_id).status for task_id in [broken, *healthy]}
    last_error_meanwhile = aws.store.last_error(broken)
    handlers.deliver("technical")
    handlers.deliver("technical")  # the third delivery: maxReceiveCount is 3
    after_the_last = handlers.deliver("technical")

    assert len(first["batchItemFailures"]) == 1
    assert statuses_meanwhile == {broken: "running", healthy[0]: "succeeded", healthy[1]: "succeeded"}
    assert last_error_meanwhile.code == "GetParameterError"
    assert after_the_last is None  # moto's redrive moved it on the next receive
    [dead] = aws.dead_letters("technical")
    assert json.loads(dead["Body"])["task_id"] == broken
    assert aws.dead_letters("billing") == [] and aws.dead_letters("account") == []
    task = aws.task(broken)
    assert task.status == "failed"
    assert task.error.code == "GetParameterError"
    assert "Secrets Manager can't find the specified secret" in task.error.message
    assert "Traceback" not in task.error.message


def test_a_tasks_spend_lists_every_agent_that_worked_on_it_and_the_total_is_their_sum(team, aws):
    price = {"input_per_million": 3.0, "output_per_million": 15.0}
    handlers = team(price_table={"local": price})
    task_id = handlers.submit("Why was I charged twice on invoice INV-1001?")

    handlers.pump()

    task = aws.task(task_id)
    assert set(task.spend) == {"router", "billing"}
    prices = PriceTable({"local": ModelPrice(**price)})
    for spend in task.spend.values():
        assert spend.calls == 1
        assert spend.usage.input_tokens > 0 and spend.usage.output_tokens > 0
        assert spend.cost_usd == prices.cost("local", spend.usage) > 0
    assert task.usage.input_tokens == sum(s.usage.input_tokens for s in task.spend.values())
    assert task.usage.output_tokens == sum(s.usage.output_tokens for s in task.spend.values())
    assert task.cost_usd == round(sum(s.cost_usd for s in task.spend.values()), 8)
    item = aws.dynamodb.get_item(TableName="agentrail-team-tasks", Key={"task_id": {"S": task_id}})["Item"]
    # The stored numbers are decimals added by DynamoDB (ADD): the total is the exact sum.
    assert Decimal(item["total_cost_usd"]["N"]) == Decimal(item["spend#router#usd"]["N"]) + Decimal(
        item["spend#billing#usd"]["N"]
    )


def test_every_hand_off_adds_to_the_spend_of_the_agent_that_made_it(team, aws):
    handlers = team(max_hops=4)
    task_id = handlers.submit("Who is the account owner paying the invoices?")

    handlers.pump()

    spend = aws.task(task_id).spend
    assert {agent: s.calls for agent, s in spend.items()} == {"router": 1, "account": 2, "billing": 2}
    assert aws.task(task_id).usage.total_tokens == sum(s.usage.total_tokens for s in spend.values())


@pytest.mark.parametrize(
    ("max_task_tokens", "stopped_at", "trail"),
    [
        (300, "router", ["router"]),  # the router's own run reaches the limit
        (400, "billing", ["router", "billing"]),  # the specialist's run does
    ],
)
def test_a_per_task_spend_limit_ends_the_task_budget_exceeded_never_silently(team, aws, max_task_tokens, stopped_at, trail):
    handlers = team(max_task_tokens=max_task_tokens)
    task_id = handlers.submit("Why was I charged twice on invoice INV-1001?")

    handlers.pump()

    task = aws.task(task_id)
    assert task.status == "budget_exceeded"
    assert task.error.model_dump() == {"code": "budget_exceeded", "message": "the task's spend limit was reached"}
    assert task.result.data == {"answered_by": stopped_at, "trail": trail, "hops": len(trail) - 1}
    assert task.result.answer is None
    assert task.spend_limit_reached  # an agent could not afford its next call under what the task had left
    assert set(task.spend) == set(trail)
    [finished] = aws.task_events()
    assert finished["detail"]["status"] == "budget_exceeded"


def test_every_log_line_and_message_of_a_task_carries_its_correlation_id(team, aws, stdout_records):
    handlers = team()
    tasks = {
        handlers.submit("Why was I charged twice on invoice INV-1001?", correlation_id="req-5b1e8c2a"): "req-5b1e8c2a",
        handlers.submit("The dashboard is down", correlation_id="req-9d4f7a3c"): "req-9d4f7a3c",
    }
    stdout_records()  # what the API side logged

    handlers.pump()

    lines = [r for r in stdout_records() if "message" in r and r.get("function_name")]
    assert {line["function_name"] for line in lines} >= {"router", "billing", "technical", "orchestrator"}
    for line in lines:
        assert line.get("task_id") in tasks, line
        assert line["correlation_id"] == tasks[line["task_id"]], line
    for name, event in handlers.deliveries:
        for record in event["Records"]:
            body = json.loads(record["body"])
            if name == "router":
                assert set(body) == {"task_id"}  # the router reads the correlation id from the task record
            else:
                assert body["correlation_id"] == tasks[body["task_id"]]


def test_a_redelivered_hand_off_is_answered_once(team, aws, load_event, stored_task, lambda_context):
    handlers = team()
    event = load_event("multiagent/routed-batch.json")
    routed = json.loads(event["Records"][0]["body"])
    stored_task(routed["message"], task_id=routed["task_id"], correlation_id=routed["correlation_id"])
    aws.store.mark_running(routed["task_id"])
    billing = handlers.specialists["billing"]

    first = billing.handler(event, lambda_context)
    again = billing.handler(event, lambda_context)

    assert first == again == {"batchItemFailures": []}
    outcomes = aws.receive(aws.outcomes)
    assert len(outcomes) == 1
    assert aws.task(routed["task_id"]).spend["billing"].calls == 1


def test_the_shared_routed_and_outcome_batches_take_a_task_from_specialist_to_finished(
    team, aws, load_event, stored_task, lambda_context
):
    handlers = team()
    routed_batch, outcome_batch = load_event("multiagent/routed-batch.json"), load_event("multiagent/outcome-batch.json")
    routed = json.loads(routed_batch["Records"][0]["body"])
    stored_task(routed["message"], task_id=routed["task_id"], correlation_id=routed["correlation_id"])
    aws.store.mark_running(routed["task_id"])

    answered = handlers.specialists["billing"].handler(routed_batch, lambda_context)
    [sent] = aws.receive(aws.outcomes)
    finished = handlers.orchestrator.handler(outcome_batch, lambda_context)

    assert answered == finished == {"batchItemFailures": []}
    # outcome-batch.json holds what the billing specialist sends for routed-batch.json.
    assert json.loads(sent["Body"]) == json.loads(outcome_batch["Records"][0]["body"])
    task = aws.task(routed["task_id"])
    assert task.status == "succeeded"
    assert task.result.data == {"answered_by": "billing", "trail": ["router", "billing"], "hops": 1}


def test_a_duplicate_outcome_changes_nothing(team, aws, load_event, stored_task, lambda_context):
    handlers = team()
    outcome_batch = load_event("multiagent/outcome-batch.json")
    outcome = json.loads(outcome_batch["Records"][0]["body"])
    stored_task(
        "Why was I charged twice on invoice INV-1001?", task_id=outcome["task_id"], correlation_id=outcome["correlation_id"]
    )
    aws.store.mark_running(outcome["task_id"])
    handlers.orchestrator.handler(outcome_batch, lambda_context)
    first = aws.task(outcome["task_id"])

    duplicate = handlers.orchestrator.handler(outcome_batch, lambda_context)

    assert duplicate == {"batchItemFailures": []}
    assert aws.task(outcome["task_id"]) == first
    assert len(aws.task_events()) == 1


def test_each_run_of_a_routed_request_keeps_its_transcript_on_the_task_for_the_timeline(team, aws):
    handlers = team()
    task_id = handlers.submit("Why was I charged twice on invoice INV-1001?")

    handlers.pump()

    record, _, runs = TaskStore(TASK_TABLE).get_with_runs(task_id)
    assert record is not None and record.status == "succeeded"
    assert list(runs) == ["router", "hop1-billing"]  # in the order they ran
    for run, stored in runs.items():
        checkpoint = AgentCheckpoint.model_validate_json(stored)
        assert checkpoint.steps >= 1 and checkpoint.messages[0].role == "user", run
    events = task_events(record, runs=runs)
    steps = [(e.kind, e.agent, e.tool) for e in events if e.kind in ("model", "tool_call")]
    assert steps[0] == ("model", "router", None)
    billing_calls = [e for e in events if e.kind == "tool_call" and e.agent == "hop1-billing"]
    assert billing_calls and all(e.outcome == "success" and e.result is not None for e in billing_calls)
    assert "duplicate charge refunded" in json.dumps([e.result for e in billing_calls])
    # The spend of each run is where it was: the transcript rode on the same write.
    assert set(record.spend) == {"router", "billing"}


ROUTING_MODEL = "bedrock:amazon.nova-micro-v1:0"


def test_the_router_runs_on_its_routing_model_and_the_task_s_spend_is_reported_per_model(team, aws, client, stub):
    # given: the router's routing steps run on Nova Micro (a Bedrock client stubbed: moto has no Converse); the
    # specialists run on the local model
    handlers = team(
        overrides={"router": {"AGENT_STEP_MODELS": json.dumps({"routing": ROUTING_MODEL})}},
        price_table={"local": {"input_per_million": 3.0, "output_per_million": 15.0}},
    )
    handlers.router.tasks.agents.providers = ProviderFactory(bedrock_client=client)
    use = {"toolUseId": "tooluse_route1", "name": "handoff_to_billing", "input": {"request": "charged twice"}}
    stub.add_response(
        "converse",
        {
            "output": {"message": {"role": "assistant", "content": [{"toolUse": use}]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 420, "outputTokens": 18, "totalTokens": 438},
            "metrics": {"latencyMs": 300},
        },
        expected_params={
            "modelId": "amazon.nova-micro-v1:0",
            "messages": ANY,
            "system": ANY,
            "inferenceConfig": ANY,
            "toolConfig": ANY,
        },
    )
    task_id = handlers.submit("Why was I charged twice on invoice INV-1001?")

    # when: the team works the task
    handlers.pump()

    # then: billing answered, and the task's spend is split by model, each at its own price
    task = aws.task(task_id)
    assert task.status == "succeeded" and task.result.data["answered_by"] == "billing"
    assert set(task.spend_by_model) == {ROUTING_MODEL, "local"}
    routing = task.spend_by_model[ROUTING_MODEL]
    assert (routing.usage.input_tokens, routing.usage.output_tokens, routing.calls) == (420, 18, 1)
    assert routing.cost_usd == PriceTable().cost(ROUTING_MODEL, routing.usage) > 0
    local = task.spend_by_model["local"]
    assert local.usage == task.spend["billing"].usage and local.cost_usd == task.spend["billing"].cost_usd > 0
    assert task.cost_usd == pytest.approx(routing.cost_usd + local.cost_usd)


def test_a_routed_request_makes_eight_aws_calls_besides_its_idempotency_records_and_reads_nothing(team, aws):
    # given: a billing question, and every call of the three handlers' task, event and SQS clients counted
    handlers = team()
    task_id = handlers.submit("Why was I charged twice on invoice INV-1001?")
    calls: dict[str, list[str]] = {"router": [], "billing": [], "orchestrator": []}
    router, billing, orchestrator = handlers.router, handlers.specialists["billing"], handlers.orchestrator
    clients = {
        "router": (router.tasks.store.client, router.tasks.events.client, router.router.team.sqs),
        "billing": (billing.tasks.store.client, billing.tasks.events.client, billing.specialist.team.sqs),
        "orchestrator": (orchestrator.orchestrator.tasks.store.client, orchestrator.orchestrator.tasks.events.client),
    }
    hooks = []
    for name, made in clients.items():
        for client in made:
            hooks.append(
                (client, lambda model, _name=name, **_: calls[_name].append(f"{model.service_model.service_id}.{model.name}"))
            )
            client.meta.events.register("before-call", hooks[-1][1])

    # when: the team works it
    try:
        handlers.pump()
    finally:  # the handler modules (and their clients) live on into later tests, as warm execution environments do
        for client, hook in hooks:
            client.meta.events.unregister("before-call", hook)

    # then: the router marks it running (reading it), adds its spend and hands off; billing adds its spend and reports
    # (the hand-off carried the owner and the spend so far); the orchestrator finishes it, announces it and empties
    # the outbox; the Powertools records of the router and billing are the other 4 calls
    assert aws.task(task_id).status == "succeeded"
    assert calls == {
        "router": ["DynamoDB.UpdateItem", "DynamoDB.UpdateItem", "SQS.SendMessage"],
        "billing": ["DynamoDB.UpdateItem", "SQS.SendMessage"],
        "orchestrator": ["DynamoDB.UpdateItem", "EventBridge.PutEvents", "DynamoDB.UpdateItem"],
    }
    records = aws.dynamodb.scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    assert sorted(r["status"]["S"] for r in records) == ["COMPLETED", "COMPLETED"]
    assert aws.task(task_id).event_pending is None


def test_a_hand_off_carries_the_tasks_owner_and_its_spend_after_the_router(team, aws):
    handlers = team(price_table={"local": {"input_per_million": 3.0, "output_per_million": 15.0}})
    task_id = handlers.submit("Why was I charged twice on invoice INV-1001?")

    handlers.deliver("router")

    [handed] = aws.receive(aws.specialists["billing"])
    body = json.loads(handed["Body"])
    router_spend = aws.task(task_id).spend["router"]
    assert body["owner"] == handlers.owner
    assert body["spent"] == {
        "tokens": router_spend.usage.total_tokens,
        "usd": router_spend.cost_usd,
        "limit_reached": False,
    }


def test_a_task_cancelled_after_it_was_routed_keeps_its_specialists_spend_and_gets_no_outcome(team, aws):
    # given: a routed task, cancelled by its owner before its specialist ran
    handlers = team()
    task_id = handlers.submit("Why was I charged twice on invoice INV-1001?")
    handlers.deliver("router")
    handlers.router.tasks.cancel(task_id, owner=handlers.owner)

    # when: the specialist gets the hand-off (it reads nothing first: the cancel shows in its spend write's answer)
    handlers.pump()

    # then: its run counts, nothing reaches the orchestrator, and the task stays cancelled with one event
    task = aws.task(task_id)
    assert task.status == "cancelled"
    assert set(task.spend) == {"router", "billing"}
    assert [name for name, _ in handlers.deliveries] == ["router", "billing"]
    assert [e["detail"]["status"] for e in aws.task_events()] == ["cancelled"]


def test_a_redelivered_hand_off_reads_the_task_again_and_stops_when_it_was_cancelled_meanwhile(team, aws, monkeypatch):
    # given: billing's first attempt added its spend, then could not send its outcome; the owner cancels meanwhile
    handlers = team()
    task_id = handlers.submit("Why was I charged twice on invoice INV-1001?")
    handlers.deliver("router")
    team_of_billing = handlers.specialists["billing"].specialist.team
    report = team_of_billing.report

    def refused_once(outcome):
        monkeypatch.setattr(team_of_billing, "report", report)
        raise RuntimeError("SendMessage refused")

    monkeypatch.setattr(team_of_billing, "report", refused_once)
    first = handlers.deliver("billing")
    handlers.router.tasks.cancel(task_id, owner=handlers.owner)

    # when: SQS delivers the hand-off again
    handlers.pump()

    # then: the redelivery trusted the task over the hand-off's copy: no second run, no outcome
    assert len(first["batchItemFailures"]) == 1
    task = aws.task(task_id)
    assert task.status == "cancelled"
    assert task.spend["billing"].calls == 1
    assert [name for name, _ in handlers.deliveries] == ["router", "billing", "billing"]
