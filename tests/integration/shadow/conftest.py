"""Fixtures of the shadow tests: the comparison table and the shadow queue on moto, and a candidate function whose
invocations moto's Lambda runs in this process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend

from agentrail_runtime.agent import AgentDefinition, ToolError, tool
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.service import AgentService
from agentrail_runtime.shadow.candidate import ShadowCandidate
from agentrail_runtime.shadow.comparisons import ComparisonStore
from tests.integration.conftest import create_comparison_table

TABLE = "agentrail-shadow-comparisons"
QUEUE = "agentrail-shadow"
CANDIDATE = "agentrail-agent"
CANDIDATE_ALIAS = f"arn:aws:lambda:us-east-1:123456789012:function:{CANDIDATE}:shadow"
#: What ``send_email`` declares it returns in a shadow run.
EMAIL_DRY_RUN = {"sent": False, "dry_run": True}


@dataclass
class Outbox:
    """What the real ``send_email`` sent: a shadow run must leave it empty."""

    sent: list[str] = field(default_factory=list)


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def mailer_definition(outbox: Outbox) -> AgentDefinition:
    """An agent with one tool with side effects (``send_email``, which really appends to ``outbox``)."""

    @tool(side_effects=True, dry_run=EMAIL_DRY_RUN, local_patterns=[r"\bemail (?P<to>\S+@\S+)"])
    def send_email(to: str) -> dict[str, object]:
        """Send the weekly report by email."""
        if "@" not in to:
            raise ToolError("not an address")
        outbox.sent.append(to)
        return {"sent": True, "to": to}

    return AgentDefinition(name="mailer", description="Sends reports.", system_prompt="Send reports.", tools=(send_email,))


@pytest.fixture
def mailer(agent_env, mailer_definition: AgentDefinition) -> AgentService:
    return AgentService(definition=mailer_definition, settings=RuntimeSettings())


@dataclass
class ShadowAws:
    dynamodb: Any
    sqs: Any
    queue_url: str
    table: str = TABLE

    def comparisons(self) -> list[dict[str, Any]]:
        return self.dynamodb.scan(TableName=self.table)["Items"]


@pytest.fixture
def shadow_aws() -> Iterator[ShadowAws]:
    """The comparison table with the construct's key schema (``request_id``; TTL ``expires_at``) and the queue."""
    with mock_aws(config={"lambda": {"use_docker": False}}):
        dynamodb = boto3.client("dynamodb")
        create_comparison_table(dynamodb, TABLE)
        sqs = boto3.client("sqs")
        yield ShadowAws(dynamodb=dynamodb, sqs=sqs, queue_url=sqs.create_queue(QueueName=QUEUE)["QueueUrl"])


@dataclass
class CandidateFunction:
    """The agent function's ``shadow`` alias as moto's Lambda runs it: the candidate, in this process."""

    candidate: ShadowCandidate
    events: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, body: Any, response_headers: dict[str, Any]) -> bytes:
        event = json.loads(body or b"{}")
        self.events.append(event)
        return json.dumps(self.candidate(event)).encode()


@pytest.fixture
def candidate_function(monkeypatch: pytest.MonkeyPatch) -> Callable[[AgentService], CandidateFunction]:
    """``candidate_function(service)``: moto's invocations of :data:`CANDIDATE` run that service's candidate."""

    def install(service: AgentService) -> CandidateFunction:
        function = CandidateFunction(ShadowCandidate(service))
        original = LambdaSimpleBackend.invoke

        def invoke(
            backend: LambdaSimpleBackend, name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> Any:
            if CANDIDATE not in name:
                return original(backend, name, qualifier, body, headers, response_headers)
            return function.invoke(body, response_headers)

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
        return function

    return install


@pytest.fixture
def comparisons(shadow_aws: ShadowAws, clock: Any) -> ComparisonStore:
    return ComparisonStore(TABLE, clock=clock, dynamodb=shadow_aws.dynamodb)
