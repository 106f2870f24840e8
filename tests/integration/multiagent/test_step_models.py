"""A model per kind of step in the hierarchical pattern: the supervisor plans on one Bedrock model and reviews the
workers' findings into the answer on another, while the workers run on the default; the task's spend is reported per
model. Bedrock is a real ``bedrock-runtime`` client with botocore's Stubber (moto has no Converse)."""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY

from agentrail_runtime.metering.pricing import PriceTable
from agentrail_runtime.models.registry import ProviderFactory
from tests.integration.multiagent.test_hierarchy import run_research

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

PLANNING, REVIEW = "bedrock:amazon.nova-micro-v1:0", "bedrock:amazon.nova-lite-v1:0"
SUBTASKS = ["Research Lambda", "compare DynamoDB and SQS"]


def converse(content: list[dict], stop_reason: str, input_tokens: int, output_tokens: int) -> dict:
    usage = {"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens}
    message = {"role": "assistant", "content": content}
    return {"output": {"message": message}, "stopReason": stop_reason, "usage": usage, "metrics": {"latencyMs": 400}}


def expect(stub, model: str, response: dict) -> None:
    params = {
        "modelId": model.removeprefix("bedrock:"),
        "messages": ANY,
        "system": ANY,
        "inferenceConfig": ANY,
        "toolConfig": ANY,
    }
    stub.add_response("converse", response, expected_params=params)


def test_the_supervisor_plans_and_reviews_on_their_own_models_and_the_task_reports_spend_per_model(
    supervisor, research_task, aws, load_event, lambda_context, client, stub
):
    # given: planning on Nova Micro, review on Nova Lite; the workers on the default (local) model
    module = supervisor(extra={"AGENT_STEP_MODELS": json.dumps({"planning": PLANNING, "review": REVIEW})})
    module.steps.supervisor.providers = ProviderFactory(bedrock_client=client)
    plan = {"toolUseId": "tooluse_plan", "name": "split_into_subtasks", "input": {"request": "research", "subtasks": SUBTASKS}}
    expect(stub, PLANNING, converse([{"toolUse": plan}], "tool_use", 900, 40))
    expect(stub, PLANNING, converse([{"text": "Planned."}], "end_turn", 980, 5))
    findings = {"toolUseId": "tooluse_review", "name": "summarize_findings", "input": {"findings": "1. Lambda\n2. DynamoDB"}}
    expect(stub, REVIEW, converse([{"toolUse": findings}], "tool_use", 1200, 60))
    expect(stub, REVIEW, converse([{"text": "Done."}], "end_turn", 1300, 4))

    # when: the workflow runs the task
    run_research(module.handler, load_event, lambda_context)

    # then: two subtasks, the answer the review model's tool wrote, and the spend split by model at each one's price
    task = aws.task(research_task)
    assert task.status == "succeeded"
    assert [s["text"] for s in aws.store.subtasks(research_task)] == SUBTASKS
    assert task.result.answer.startswith("Combined answer from 2 findings:")
    assert set(task.spend_by_model) == {PLANNING, REVIEW, "local"}
    prices = PriceTable()
    planning, review = task.spend_by_model[PLANNING], task.spend_by_model[REVIEW]
    assert (planning.usage.input_tokens, planning.usage.output_tokens, planning.calls) == (1880, 45, 1)
    assert (review.usage.input_tokens, review.usage.output_tokens, review.calls) == (2500, 64, 1)
    assert planning.cost_usd == prices.cost(PLANNING, planning.usage) and review.cost_usd == prices.cost(REVIEW, review.usage)
    assert task.spend_by_model["local"].calls == 2  # the two workers
    assert task.spend_by_model["local"].usage == task.spend["worker"].usage
