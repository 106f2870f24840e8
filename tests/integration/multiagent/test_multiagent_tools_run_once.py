"""A specialist's tool with side effects runs once, however often its hand-off is redelivered.

The crash is an exception deriving from BaseException raised by the model after the tool ran: nothing in the
process catches it, as when the execution environment dies (timeout, out of memory).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from pydantic import Field

from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.models.base import ModelResponse
from agentrail_runtime.models.local import LocalModel

from .conftest import IDEMPOTENCY_TABLE

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


class ProcessDied(BaseException):
    """The execution environment dying: nothing catches it."""


class DiesAfterTheTool(LocalModel):
    """The local model, dying on its first call that follows a tool result."""

    def __init__(self) -> None:
        self.died = False

    def converse(self, **request: Any) -> ModelResponse:
        if request["messages"][-1].tool_results and not self.died:
            self.died = True
            raise ProcessDied
        return super().converse(**request)


def crediting_billing(credits: list[str | None]) -> AgentDefinition:
    @tool(side_effects=True, local_patterns=[r"\binvoice\s+#?(?P<invoice_id>INV-\d{4})\b"])
    def credit_duplicate_charge(invoice_id: Annotated[str, Field(pattern=r"^INV-\d{4}$")], context: ToolContext) -> str:
        """Credit the customer for a duplicate charge on an invoice."""
        credits.append(context.idempotency_key)
        return f"credited the duplicate charge on {invoice_id}"

    return AgentDefinition(name="billing", system_prompt="You fix billing problems.", tools=(credit_duplicate_charge,))


def in_progress_records_expire(aws) -> None:
    """What time does to the crashed invocation's Powertools in-progress record: it expires with the invocation."""
    for item in aws.dynamodb.scan(TableName=IDEMPOTENCY_TABLE)["Items"]:
        aws.dynamodb.delete_item(TableName=IDEMPOTENCY_TABLE, Key={"id": item["id"]})


def test_a_hand_off_redelivered_after_a_crash_that_followed_the_credit_credits_once_and_answers(
    team, aws, load_event, stored_task, lambda_context, agents_with, monkeypatch
):
    handlers = team()
    event = load_event("multiagent/routed-batch.json")
    routed = json.loads(event["Records"][0]["body"])
    stored_task(routed["message"], task_id=routed["task_id"], correlation_id=routed["correlation_id"])
    aws.store.mark_running(routed["task_id"])
    billing = handlers.specialists["billing"]
    credits: list[str | None] = []
    monkeypatch.setattr(billing.specialist, "agents", agents_with(DiesAfterTheTool(), definition=crediting_billing(credits)))

    with pytest.raises(ProcessDied):
        billing.handler(event, lambda_context)
    assert len(credits) == 1  # the tool ran before the crash
    in_progress_records_expire(aws)
    redelivered = billing.handler(event, lambda_context)  # SQS delivers the hand-off again

    assert redelivered == {"batchItemFailures": []}
    assert len(credits) == 1
    assert str(credits[0]).startswith(f"{routed['task_id']}#")  # the key a payment provider dedupes on
    [outcome] = [json.loads(m["Body"]) for m in aws.receive(aws.outcomes)]
    assert (outcome["kind"], outcome["agent"]) == ("answer", "billing")
    assert "credited the duplicate charge on INV-1001" in outcome["answer"]


def test_a_hand_off_sqs_redelivers_after_a_crash_continues_from_the_checkpoint_its_first_write_finds(
    team, aws, agents_with, monkeypatch
):
    # given: a routed billing question whose specialist credits the charge (side effects), then dies
    handlers = team()
    billing = handlers.specialists["billing"]
    credits: list[str | None] = []
    monkeypatch.setattr(billing.specialist, "agents", agents_with(DiesAfterTheTool(), definition=crediting_billing(credits)))
    task_id = handlers.submit("Why was I charged twice on invoice INV-1001?")
    handlers.deliver("router")
    with pytest.raises(ProcessDied):
        handlers.deliver("billing")
    in_progress_records_expire(aws)

    # when: SQS delivers the hand-off again (its second receive) and the team goes on
    handlers.pump()

    # then: the run read no checkpoint up front, yet its first write found the crashed attempt's and went on from it
    assert len(credits) == 1
    task = aws.task(task_id)
    assert task.status == "succeeded"
    assert "credited the duplicate charge on INV-1001" in task.result.answer
    assert task.spend["billing"].calls == 1
    [_, redelivered] = [event for name, event in handlers.deliveries if name == "billing"]
    assert redelivered["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"


def test_a_runs_first_checkpoint_write_leaves_an_earlier_attempts_checkpoint_as_it_was(aws):
    task_id = "c" * 32

    first = aws.store.save_run_checkpoint(task_id, "hop1-billing", '{"attempt": 1}', first=True)
    second = aws.store.save_run_checkpoint(task_id, "hop1-billing", '{"attempt": 2}', first=True)

    assert (first, second) == (True, False)
    assert aws.store.run_checkpoint(task_id, "hop1-billing") == '{"attempt": 1}'


def test_a_large_first_checkpoint_write_checks_for_an_earlier_one_before_it_uploads_anything(aws):
    # given: an earlier attempt's checkpoint, and a first write too large for an item (the team has no bucket:
    # an upload would raise)
    task_id = "d" * 32
    aws.store.save_run_checkpoint(task_id, "hop1-billing", '{"attempt": 1}')
    large = json.dumps({"attempt": 2, "text": "x" * 400_000})

    # when / then: nothing is uploaded or written
    assert aws.store.save_run_checkpoint(task_id, "hop1-billing", large, first=True) is False
    assert aws.store.run_checkpoint(task_id, "hop1-billing") == '{"attempt": 1}'
