"""Shadow deployment against moto: the live path copies a sample to the shadow queue without ever changing the
user's answer, and the worker replays it on the candidate (through moto's Lambda, in process) with tools that have
side effects in dry-run, storing one comparison per request id."""

from __future__ import annotations

import json

import boto3
import pytest

from agentrail_runtime import contract, demo
from agentrail_runtime.agent.loop import Agent, AgentResult
from agentrail_runtime.api.stateless import create_stateless_app
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.erasure import ErasureSettings, PrincipalEraser
from agentrail_runtime.observability import metrics
from agentrail_runtime.service import AgentService
from agentrail_runtime.shadow import RunSummary, ShadowRequest, ShadowSampler, ShadowSettings, erasable_comparisons
from agentrail_runtime.shadow.candidate import ShadowCandidate
from agentrail_runtime.shadow.comparisons import ComparisonStore
from agentrail_runtime.shadow.sampler import SHADOW_SEND_FAILED
from agentrail_runtime.shadow.worker import ShadowWorker

from .conftest import CANDIDATE_ALIAS, EMAIL_DRY_RUN, TABLE

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def live_summary(answer: str = "sent the report", version: str = "live-v1") -> RunSummary:
    return RunSummary(answer=answer, status="completed", model="local", agent_version=version, input_tokens=10, output_tokens=5)


def test_a_tool_with_side_effects_never_runs_in_a_shadow_run_and_its_declared_dry_run_result_is_recorded(
    shadow_aws, mailer, outbox, candidate_function, comparisons
):
    # given a candidate whose agent emails on request, and a worker that replays on it through the shadow alias
    function = candidate_function(mailer)
    worker = ShadowWorker(function=CANDIDATE_ALIAS, store=comparisons, lambda_client=boto3.client("lambda"))
    request = ShadowRequest(request_id="req-email-1", message="please email ops@example.com", live=live_summary())

    # when the worker processes the sampled request
    outcome = worker.process(request)

    # then the real tool never ran, and the comparison records the declared dry-run result as the stub
    assert outbox.sent == []
    assert outcome.written is True
    assert len(function.events) == 1
    [stored] = list(comparisons.scan())
    assert stored.candidate.dry_run_calls == [
        {"tool": "send_email", "arguments": {"to": "ops@example.com"}, "result": EMAIL_DRY_RUN}
    ]
    assert stored.candidate.tools == ["send_email"]
    assert stored.live.answer == "sent the report"
    assert stored.candidate.agent_version == mailer.version


def test_the_same_tool_runs_for_real_outside_a_shadow_run(mailer, outbox):
    # given the agent the candidate runs, when it runs live, then the tool really runs (the test above is no accident)
    result = mailer.agent().run("please email ops@example.com")

    assert outbox.sent == ["ops@example.com"]
    assert result.tool_calls[0].outcome == "success"


def test_a_redelivered_shadow_message_writes_one_comparison_through_the_conditional_put_alone(
    shadow_aws, mailer, candidate_function, handler_module, sqs_event, lambda_context, clock
):
    # given the shadow worker's handler, and one sampled request delivered twice (SQS is at least once)
    function = candidate_function(mailer)
    worker = handler_module(
        "shadow_worker", {contract.SHADOW_FUNCTION_ENV: CANDIDATE_ALIAS, contract.SHADOW_TABLE_ENV: shadow_aws.table}
    )
    body = ShadowRequest(request_id="req-twice", message="what is 2+2", live=live_summary()).model_dump_json()
    shadow_aws.sqs.send_message(QueueUrl=shadow_aws.queue_url, MessageBody=body)
    shadow_aws.sqs.send_message(QueueUrl=shadow_aws.queue_url, MessageBody=body)
    messages = shadow_aws.sqs.receive_message(QueueUrl=shadow_aws.queue_url, MaxNumberOfMessages=10)["Messages"]
    arn = f"arn:aws:sqs:us-east-1:123456789012:{shadow_aws.queue_url.rsplit('/', 1)[1]}"

    # when both deliveries are processed, in one batch and then again in another
    first = worker.handler(sqs_event(messages, arn), lambda_context)
    again = worker.handler(sqs_event(messages[:1], arn), lambda_context)

    # then no delivery failed and one comparison exists: each delivery ran the candidate (no read before the write),
    # and the put conditional on the request id kept the first
    assert first == {"batchItemFailures": []} and again == {"batchItemFailures": []}
    assert [item["request_id"]["S"] for item in shadow_aws.comparisons()] == ["req-twice"]
    assert len(function.events) == 3


def test_a_conditional_write_keeps_the_first_comparison_when_two_deliveries_race(shadow_aws, comparisons):
    # given a comparison already stored for a request id (a racing delivery wrote it between check and write)
    request = ShadowRequest(request_id="req-race", message="hi", live=live_summary())
    assert comparisons.put_once(request, live_summary(answer="first", version="cand")) is True

    # when the second delivery writes its own
    written = comparisons.put_once(request, live_summary(answer="second", version="cand"))

    # then it writes nothing, and the first stays
    assert written is False
    [stored] = list(comparisons.scan())
    assert stored.candidate.answer == "first"


def test_a_comparison_expires_with_its_ttl(shadow_aws, comparisons, clock):
    # given a stored comparison, kept 14 days by default
    comparisons.put_once(ShadowRequest(request_id="req-ttl", message="hi", live=live_summary()), live_summary())
    [item] = shadow_aws.comparisons()
    assert int(item["expires_at"]["N"]) == int(clock()) + 14 * 86_400

    # when its TTL passes (moto never deletes expired items, DynamoDB takes up to days), then reads hide it
    clock.advance(14 * 86_400)
    assert list(comparisons.scan()) == []


@pytest.fixture
def stateless(agent_env, load_event, call):
    """``answer(shadow)``: ``POST /invoke`` of events/stateless/invoke.json through a stateless app with ``shadow``."""

    def answer(shadow: ShadowSampler):
        app = create_stateless_app(settings=RuntimeSettings(), shadow=shadow)
        return call(app, load_event("stateless/invoke.json"))

    return answer


def test_a_failing_shadow_send_never_changes_the_live_answer(shadow_aws, stateless, stdout_records):
    # given the same request answered without a shadow, and with a shadow whose queue does not exist
    without = stateless(ShadowSampler(queue_url=None, percent=0))
    missing = shadow_aws.queue_url.replace("agentrail-shadow", "no-such-queue")

    # when the sampled request's copy fails
    with_failing = stateless(ShadowSampler(queue_url=missing, percent=100, sqs=shadow_aws.sqs))

    # then the user gets the same answer, and the failure is logged and counted
    assert with_failing.status == without.status == 200

    def same(body: dict) -> dict:  # everything but the measured latencies and the request id
        return {**body, "request_id": None, "tool_calls": [(c["tool"], c["outcome"]) for c in body["tool_calls"]]}

    assert same(with_failing.body) == same(without.body)
    assert any(r.get("event") == "shadow_send_failed" for r in stdout_records())
    assert SHADOW_SEND_FAILED in metrics.metric_set


def test_a_sampled_request_reaches_the_shadow_queue_with_the_live_answer(shadow_aws, stateless):
    # given a shadow at 100%, when a request is answered
    reply = stateless(ShadowSampler(queue_url=shadow_aws.queue_url, percent=100, sqs=shadow_aws.sqs))

    # then the queue holds the request's input and the live answer, tokens, steps and version
    [message] = shadow_aws.sqs.receive_message(QueueUrl=shadow_aws.queue_url)["Messages"]
    copied = ShadowRequest.model_validate(json.loads(message["Body"]))
    assert copied.request_id == reply.body["request_id"]
    assert copied.live.answer == reply.body["answer"]
    assert copied.live.steps == reply.body["steps"]
    usage = reply.body["usage"]
    assert copied.live.input_tokens == usage["input_tokens"] + usage["cache_read_tokens"] + usage["cache_write_tokens"]
    assert copied.live.latency_ms > 0
    assert copied.live.agent_version == {k.lower(): v for k, v in reply.headers.items()}["x-agent-version"]


def test_a_demo_refund_in_a_shadow_run_is_never_issued_and_one_that_needs_approval_stops_without_asking_anyone(agent_env):
    # given the demo agent's candidate (its refund tool has side effects and declares its dry-run result)
    candidate = ShadowCandidate(AgentService(definition=demo.definition, settings=RuntimeSettings()))
    refunds_before = dict(demo._REFUNDS)

    # when it replays a small refund, and one above the approval limit
    small = candidate.run(ShadowRequest(request_id="req-r1", message="refund 20 usd for order A-1002", live=live_summary()))
    large = candidate.run(ShadowRequest(request_id="req-r2", message="refund 150 usd for order A-1002", live=live_summary()))

    # then no refund was issued: the small one got the declared stub, the large one paused with no approval asked
    assert refunds_before == demo._REFUNDS
    assert small.dry_run_calls == [
        {"tool": "issue_refund", "arguments": {"order_id": "A-1002", "amount_usd": 20.0}, "result": demo.issue_refund.dry_run}
    ]
    assert large.status == "awaiting_approval" and large.dry_run_calls == []


def model_and_tool_time(result: AgentResult) -> float:
    return sum(result.step_latencies_ms) + sum(call.latency_ms for call in result.tool_calls)


def test_both_sides_of_a_comparison_report_the_same_span_their_runs_own_model_and_tool_time(shadow_aws, stateless, monkeypatch):
    # given every run's result kept, and the stateless demo agent with every request sampled
    results: list[AgentResult] = []
    advance = Agent.advance

    def recorded(agent: Agent, *args, **kwargs) -> AgentResult:
        results.append(advance(agent, *args, **kwargs))
        return results[-1]

    monkeypatch.setattr(Agent, "advance", recorded)
    stateless(ShadowSampler(queue_url=shadow_aws.queue_url, percent=100, sqs=shadow_aws.sqs))
    [message] = shadow_aws.sqs.receive_message(QueueUrl=shadow_aws.queue_url)["Messages"]
    copied = ShadowRequest.model_validate_json(message["Body"])

    # when the candidate replays the copy
    candidate = ShadowCandidate(AgentService(definition=demo.definition, settings=RuntimeSettings())).run(copied)

    # then each side's latency is its run's model and tool time (not the route's budget and metering calls around it)
    live_result, candidate_result = results
    assert live_result.tool_calls and candidate_result.tool_calls
    assert copied.live.latency_ms == pytest.approx(model_and_tool_time(live_result), abs=0.001)
    assert candidate.latency_ms == pytest.approx(model_and_tool_time(candidate_result), abs=0.001)


#: The caller of events/stateless/*.json: a role's session, named as its role.
CALLER = "iam:arn:aws:iam::123456789012:role/agentrail-caller"
OTHER = "iam:arn:aws:iam::123456789012:user/other"


def test_a_sampled_request_carries_its_caller_and_the_comparison_keeps_it_where_erasure_finds_it(
    shadow_aws, stateless, comparisons
):
    # given a shadow at 100%, when a request is answered and its copy compared
    stateless(ShadowSampler(queue_url=shadow_aws.queue_url, percent=100, sqs=shadow_aws.sqs))
    [message] = shadow_aws.sqs.receive_message(QueueUrl=shadow_aws.queue_url)["Messages"]
    copied = ShadowRequest.model_validate(json.loads(message["Body"]))
    comparisons.put_once(copied, live_summary())

    # then the copy names the caller as the API names it, and the comparison is listed under that owner
    assert copied.owner == CALLER
    [stored] = list(comparisons.scan())
    assert stored.owner == CALLER
    assert list(comparisons.owned(CALLER)) == [copied.request_id]


def test_post_erase_on_the_stateless_api_deletes_the_callers_comparisons_and_no_one_elses(
    shadow_aws, comparisons, agent_env, load_event, call
):
    # given two comparisons of the caller's requests, one of another principal's, and one stored without an owner
    for request_id, owner in (("req-1", CALLER), ("req-2", CALLER), ("req-3", OTHER), ("req-4", None)):
        comparisons.put_once(ShadowRequest(request_id=request_id, message="hi", owner=owner, live=live_summary()), live_summary())
    app = create_stateless_app(
        settings=RuntimeSettings(),
        shadow=ShadowSampler(queue_url=None, percent=0),
        eraser=PrincipalEraser(shadow=comparisons, settings=ErasureSettings()),
    )

    # when the caller erases its own data, twice
    first = call(app, load_event("stateless/erase.json"))
    second = call(app, load_event("stateless/erase.json"))

    # then the first deletes the caller's two comparisons, the second finds nothing, and the others stay
    assert (first.status, first.body["counts"]["shadow_comparisons"]) == (200, 2), first.body
    assert (second.status, second.body["counts"]["shadow_comparisons"]) == (200, 0)
    assert sorted(c.request_id for c in comparisons.scan()) == ["req-3", "req-4"]


def test_a_comparison_listed_by_a_stale_index_entry_is_never_deleted_for_another_owner(shadow_aws, comparisons, monkeypatch):
    # given the other principal's comparison, and an index that (lagging the table) still lists it under the caller
    comparisons.put_once(ShadowRequest(request_id="req-9", message="hi", owner=OTHER, live=live_summary()), live_summary())
    monkeypatch.setattr(comparisons, "owned", lambda owner: iter(["req-9"]))

    # when the caller's comparisons are erased, then none is deleted, and the other's stays
    assert comparisons.erase_owner(CALLER) == 0
    assert [c.request_id for c in comparisons.scan()] == ["req-9"]


def test_the_live_function_erases_comparisons_only_where_the_construct_names_the_table():
    # given / when / then: without AGENT_SHADOW_TABLE there is nothing to erase; with it, that table
    assert erasable_comparisons(ShadowSettings()) is None
    store = erasable_comparisons(ShadowSettings(table="comparisons"))
    assert store is not None and store.table_name == "comparisons"


def test_with_store_redacted_a_comparison_keeps_the_message_and_both_answers_redacted(shadow_aws, clock):
    # given the comparison table of an agent that stores redacted, and a request whose message and answers hold PII
    store = ComparisonStore(TABLE, store_redacted=True, clock=clock, dynamodb=shadow_aws.dynamodb)
    request = ShadowRequest(
        request_id="req-pii",
        message="mail ana.lopez@example.com",
        owner=CALLER,
        live=live_summary(answer="card 4111 1111 1111 1111"),
    )

    # when its comparison is stored
    store.put_once(request, live_summary(answer="wrote to ana.lopez@example.com"))

    # then no planted value is kept, the markers are, and the owner (what erasure finds it by) stays as it was
    [item] = shadow_aws.comparisons()
    assert "ana.lopez@example.com" not in str(item) and "4111 1111 1111 1111" not in str(item)
    assert "[REDACTED:email]" in item["message"]["S"] and "[REDACTED:email]" in item["candidate"]["S"]
    assert "[REDACTED:" in item["live"]["S"]
    assert item["owner"]["S"] == CALLER


@pytest.mark.parametrize(("value", "redacted"), [("true", True), (None, False)])
def test_the_worker_stores_redacted_as_the_agents_store_redacted_says(monkeypatch, value, redacted):
    # given the worker's environment as the construct writes it, with or without the agent's AGENT_STORE_REDACTED
    monkeypatch.setenv(contract.SHADOW_FUNCTION_ENV, CANDIDATE_ALIAS)
    monkeypatch.setenv(contract.SHADOW_TABLE_ENV, "comparisons")
    if value is None:
        monkeypatch.delenv("AGENT_STORE_REDACTED", raising=False)
    else:
        monkeypatch.setenv("AGENT_STORE_REDACTED", value)

    # when / then: the worker's store follows it
    assert ShadowWorker.from_settings().store.store_redacted is redacted
