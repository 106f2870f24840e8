"""Operating a running app: dead-lettered tasks, approvals, signed calls. Local mode or a deployed stack.

A :class:`Target` says where: the ready file of ``agentrail local`` (its moto endpoint, local principals
and API URLs), or a deployed CloudFormation stack (its outputs, your AWS credentials).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx

from agentrail_cli.client import AgentApiClient, IamAuth, LocalReadyFile
from agentrail_cli.errors import TargetError


@dataclass
class Target:
    """Where a command acts: one stack's outputs, AWS clients that reach it, and a way to call its API."""

    stack: str
    outputs: dict[str, str]
    session: boto3.session.Session
    endpoint_url: str | None
    api_url: str | None
    auth: httpx.Auth | None

    def client(self, service: str) -> Any:
        # boto3-stubs types one overload per literal service name; any name is taken here.
        return self.session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def output(self, key: str) -> str:
        value = self.outputs.get(key)
        if not value:
            raise TargetError(f"stack {self.stack} has no output {key!r}; is it the right stack?")
        return value

    def api(self) -> AgentApiClient:
        if not self.api_url:
            raise TargetError(f"stack {self.stack} has no ApiUrl output")
        return AgentApiClient(self.api_url, auth=self.auth)

    @classmethod
    def local(cls, ready_file: Path, *, stack: str | None, pattern: str | None, principal: str | None) -> Target:
        """A stack served by ``agentrail local``; ``principal`` names the local IAM user to act as."""
        if not ready_file.is_file():
            raise TargetError(f"{ready_file} not found: start `agentrail local` first, or pass --stack for a deployed stack")
        ready = LocalReadyFile.read(ready_file)
        stacks = ready.document.get("stacks", {})
        if stack is None:
            matching = ready.apis(pattern)
            if len(matching) != 1:
                raise TargetError(f"{len(matching)} local stacks match; pass --stack (one of: {', '.join(sorted(stacks))})")
            stack = matching[0]["stack"]
        if stack not in stacks:
            raise TargetError(f"local mode serves no stack {stack!r} (it serves: {', '.join(sorted(stacks))})")
        api = next((a for a in ready.apis() if a["stack"] == stack), None)
        try:
            user = ready.principal(principal)
            auth = ready.auth(api, principal) if api else None
        except LookupError as error:
            raise TargetError(str(error)) from None
        session = boto3.session.Session(
            aws_access_key_id=user["access_key_id"], aws_secret_access_key=user["secret_access_key"], region_name=ready.region
        )
        return cls(stack, stacks[stack], session, ready.document["moto_endpoint"], api["url"] if api else None, auth)

    @classmethod
    def account(cls, *, region: str | None = None, profile: str | None = None) -> Target:
        """Your AWS account, reached with your credentials, and no stack: for a command given its resources by name
        (``agentrail shadow report --table``). It has no outputs and no API."""
        session = boto3.session.Session(profile_name=profile, region_name=region)
        return cls("(no stack)", {}, session, None, None, None)

    @classmethod
    def deployed(cls, stack: str, *, region: str | None = None, profile: str | None = None) -> Target:
        """A deployed stack, reached with your AWS credentials (SigV4 for its API)."""
        session = boto3.session.Session(profile_name=profile, region_name=region)
        try:
            described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        except Exception as error:
            raise TargetError(f"cannot describe stack {stack}: {error}") from None
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        credentials = session.get_credentials()
        auth = IamAuth(credentials, region=session.region_name) if credentials else None
        return cls(stack, outputs, session, None, outputs.get("ApiUrl"), auth)


# -- dead-letter queues ---------------------------------------------------------------------------


@dataclass
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    task_id: str | None
    receives: int
    cause: str


def peek_dead_letters(target: Target, *, limit: int = 100) -> list[DeadLetter]:
    """The messages in the task DLQ (received with no visibility timeout: nothing is hidden or consumed)."""
    from agentrail_runtime.tasks.store import TaskStore

    sqs = target.client("sqs")
    dlq = target.output("DeadLetterQueueUrl")
    store = TaskStore(target.output("TaskTableName"), client=target.client("dynamodb"))
    seen: dict[str, DeadLetter] = {}
    for _ in range(10):
        response = sqs.receive_message(
            QueueUrl=dlq,
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            AttributeNames=["ApproximateReceiveCount"],
            WaitTimeSeconds=0,
        )
        messages = response.get("Messages", [])
        for message in messages:
            if message["MessageId"] in seen:  # deleting needs the most recent receipt handle
                seen[message["MessageId"]].receipt_handle = message["ReceiptHandle"]
        fresh = [m for m in messages if m["MessageId"] not in seen]
        for message in fresh:
            try:
                task_id = json.loads(message["Body"]).get("task_id")
            except (ValueError, AttributeError):
                task_id = None
            error = store.last_error(task_id) if task_id else None
            seen[message["MessageId"]] = DeadLetter(
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                body=message["Body"],
                task_id=task_id,
                receives=int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                cause=f"{error.code}: {error.message}" if error else "(no cause recorded)",
            )
        if not fresh or len(seen) >= limit:
            break
    return list(seen.values())[:limit]


def redrive(target: Target, *, task_id: str | None) -> list[str]:
    """Send dead-lettered tasks (one, or all when ``task_id`` is None) back to the task queue.

    Each task goes back to ``queued`` first, then its message is re-sent and deleted from the DLQ, so a
    crash in between leaves a duplicate (which the worker's idempotency absorbs), never a loss.
    """
    from agentrail_runtime.tasks.store import TaskStore

    sqs = target.client("sqs")
    dlq = target.output("DeadLetterQueueUrl")
    source = target.output("TaskQueueUrl")
    store = TaskStore(target.output("TaskTableName"), client=target.client("dynamodb"))
    moved = []
    for letter in peek_dead_letters(target):
        if task_id is not None and letter.task_id != task_id:
            continue
        if letter.task_id:
            store.requeue(letter.task_id)
        sqs.send_message(QueueUrl=source, MessageBody=letter.body)
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=letter.receipt_handle)
        moved.append(letter.task_id or letter.message_id)
    if task_id is not None and not moved:
        raise TargetError(f"task {task_id} is not in the dead-letter queue")
    return moved


# -- daily budgets ------------------------------------------------------------------------------


def budget_spend(target: Target) -> list[dict[str, Any]]:
    """Today's (UTC) counters of the stack's daily budgets, one row per counter and limit, most used first.

    Reads the ``BudgetTableName`` and ``Budgets`` outputs, then scans the counters table for today's items (a
    command for operators: the runtime itself never scans).
    """
    from agentrail_runtime.budgets import utc_day
    from agentrail_runtime.clock import now
    from agentrail_runtime.contract import budgets_from_env

    limits = budgets_from_env(target.output("Budgets"))
    table = target.output("BudgetTableName")
    day = utc_day(now())
    dynamodb = target.client("dynamodb")
    rows = []
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="#day = :day",
        ExpressionAttributeNames={"#day": "day"},
        ExpressionAttributeValues={":day": {"S": day}},
    ):
        for item in page.get("Items", []):
            per, name = item["per"]["S"], item["name"]["S"]
            for limit in limits:
                if limit.per != per:
                    continue
                spent = float(item.get(limit.unit, {}).get("N", "0"))
                rows.append(
                    {
                        "stack": target.stack,
                        "day": day,
                        "per": per,
                        "name": name,
                        "unit": limit.unit,
                        "spent": spent,
                        "limit": limit.limit,
                        "used_percent": round(100 * spent / limit.limit, 2),
                    }
                )
    return sorted(rows, key=lambda row: (-row["used_percent"], row["per"], row["name"], row["unit"]))
