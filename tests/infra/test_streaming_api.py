"""StreamingApi: a StatefulAgentStack with ``streaming_options`` gets a WebSocket API (tickets or IAM at ``$connect``),
its stage, functions, tables and queue, least-privilege grants, a ``stream-ticket`` REST route and a ``StreamUrl``
output; cdk-nag, cfn-lint and checkov pass on it, its options are validated, and the hardened profile refuses it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk.assertions import Match
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import lint

from agentrail_constructs import SessionOptions
from agentrail_constructs.sessions import StatefulAgent
from agentrail_constructs.stacks.stateful import StatefulAgentStack
from agentrail_constructs.streaming import StreamingApi, StreamingOptions
from tests.infra.conftest import HARDENED_LOOKUPS, TEST_ENV, SynthesizedStack, listed, refers_to, token_text
from tests.infra.test_cdk_nag import MIN_REASON_CHARS, findings, violations
from tests.infra.test_cfn_lint import REGIONS
from tests.infra.test_checkov import SKIPPABLE, _describe, run_checkov

TWO_WAY_ROUTES = ("$default", "sendMessage", "resume")
ROUTES = {"$connect", "$disconnect", *TWO_WAY_ROUTES}
STREAM_TICKET_ROUTE = ("POST", "/sessions/{session_id}/stream-ticket")


@dataclass(frozen=True)
class StreamingAssembly:
    """The ticket/reject and IAM/enqueue streaming stacks, and the cdk-nag synth of the same two stacks."""

    ticket: SynthesizedStack
    iam: SynthesizedStack
    outdir: Path
    """The cloud assembly of the app synthesized with cdk-nag: its report and templates."""
    synth_error: str | None

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.outdir / "validation-report.json").read_text())

    def template_path(self, stack: SynthesizedStack) -> Path:
        assert self.synth_error is None, self.synth_error
        return self.outdir / stack.stack.template_file


def streaming_stacks(app: cdk.App) -> tuple[StatefulAgentStack, StatefulAgentStack]:
    """``Streaming`` (StreamingOptions(), reject) and ``StreamingEnqueue`` (enqueue, IAM at $connect) in ``app``."""
    ticket = StatefulAgentStack(app, "Streaming", env=TEST_ENV, streaming_options=StreamingOptions())
    iam = StatefulAgentStack(
        app,
        "StreamingEnqueue",
        env=TEST_ENV,
        session_options=SessionOptions(concurrency="enqueue"),
        streaming_options=StreamingOptions(auth="iam"),
    )
    return ticket, iam


@pytest.fixture(scope="module")
def streaming(app_factory: Callable[..., cdk.App]) -> StreamingAssembly:
    """Both streaming stacks synthesized once for the fine-grained tests, and once more in an app that registered the
    AwsSolutions pack before its first synth, as ``cdk synth`` runs it (an app synthesizes once: a plugin added after
    ``Template.from_stack`` would never run)."""
    ticket, iam = streaming_stacks(app_factory())
    nagged = app_factory()
    cdk.Validations.of(nagged).add_plugins(AwsSolutionsChecks(nagged))
    streaming_stacks(nagged)
    error = None
    try:
        nagged.synth()
    except RuntimeError as failure:  # cdk-nag findings fail the synth; the report still names them
        error = str(failure)
    return StreamingAssembly(SynthesizedStack(ticket), SynthesizedStack(iam), outdir=Path(nagged.outdir), synth_error=error)


@pytest.fixture(scope="module")
def ticket(streaming: StreamingAssembly) -> SynthesizedStack:
    return streaming.ticket


@pytest.fixture(scope="module")
def iam(streaming: StreamingAssembly) -> SynthesizedStack:
    return streaming.iam


def api_of(stack: SynthesizedStack) -> StreamingApi:
    agent: StatefulAgent = stack.stack.agent  # type: ignore[attr-defined]
    assert agent.streaming is not None
    return agent.streaming


def routes_by_key(stack: SynthesizedStack) -> dict[str, tuple[str, dict[str, Any]]]:
    return {props["RouteKey"]: (lid, props) for lid, props in stack.of_type("AWS::ApiGatewayV2::Route").items()}


def streaming_functions(stack: SynthesizedStack) -> dict[str, dict[str, Any]]:
    """Path -> properties of every Lambda function under the StreamingApi construct."""
    prefix = f"{api_of(stack).node.path}/"
    return {
        resource["Metadata"]["aws:cdk:path"]: resource["Properties"]
        for resource in stack.resources.values()
        if resource["Type"] == "AWS::Lambda::Function" and resource["Metadata"]["aws:cdk:path"].startswith(prefix)
    }


# -- the WebSocket API and its routes -------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["ticket", "iam"])
def test_the_api_is_a_websocket_api_routing_on_the_body_action(request: pytest.FixtureRequest, variant: str) -> None:
    stack: SynthesizedStack = request.getfixturevalue(variant)

    stack.template.resource_count_is("AWS::ApiGatewayV2::Api", 1)
    stack.template.has_resource_properties(
        "AWS::ApiGatewayV2::Api", {"ProtocolType": "WEBSOCKET", "RouteSelectionExpression": "$request.body.action"}
    )


@pytest.mark.parametrize("variant", ["ticket", "iam"])
def test_the_routes_are_exactly_connect_disconnect_default_send_message_and_resume(
    request: pytest.FixtureRequest, variant: str
) -> None:
    stack: SynthesizedStack = request.getfixturevalue(variant)

    assert set(routes_by_key(stack)) == ROUTES
    assert len(stack.of_type("AWS::ApiGatewayV2::Route")) == len(ROUTES)


def test_in_ticket_mode_connect_is_authorized_by_a_request_authorizer_reading_the_ticket_query_parameter(
    ticket: SynthesizedStack,
) -> None:
    _, connect = routes_by_key(ticket)["$connect"]

    assert connect["AuthorizationType"] == "CUSTOM"
    authorizers = ticket.of_type("AWS::ApiGatewayV2::Authorizer")
    assert list(authorizers) == [connect["AuthorizerId"]["Ref"]]
    (authorizer,) = authorizers.values()
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert authorizer["IdentitySource"] == ["route.request.querystring.ticket"]
    authorizer_function = api_of(ticket).authorizer_function
    assert authorizer_function is not None
    assert refers_to(authorizer["AuthorizerUri"], ticket.logical_id(authorizer_function.alias))


def test_in_iam_mode_connect_requires_a_sigv4_signature_and_there_is_no_authorizer_function(iam: SynthesizedStack) -> None:
    _, connect = routes_by_key(iam)["$connect"]

    assert connect["AuthorizationType"] == "AWS_IAM"
    assert iam.of_type("AWS::ApiGatewayV2::Authorizer") == {}
    assert api_of(iam).authorizer_function is None


@pytest.mark.parametrize("variant", ["ticket", "iam"])
def test_each_two_way_route_has_a_route_response_and_connect_and_disconnect_have_none(
    request: pytest.FixtureRequest, variant: str
) -> None:
    stack: SynthesizedStack = request.getfixturevalue(variant)
    routes = routes_by_key(stack)

    answered = {
        key
        for key, (lid, _) in routes.items()
        for response in stack.of_type("AWS::ApiGatewayV2::RouteResponse").values()
        if response["RouteId"] == {"Ref": lid}
    }

    assert answered == set(TWO_WAY_ROUTES)
    for key in TWO_WAY_ROUTES:
        assert routes[key][1]["RouteResponseSelectionExpression"] == "$default"


@pytest.mark.parametrize("variant", ["ticket", "iam"])
def test_every_route_is_a_lambda_proxy_integration_to_the_socket_functions_live_alias(
    request: pytest.FixtureRequest, variant: str
) -> None:
    stack: SynthesizedStack = request.getfixturevalue(variant)
    alias = stack.logical_id(api_of(stack).socket_function.alias)
    integrations = stack.of_type("AWS::ApiGatewayV2::Integration")

    assert len(integrations) == len(ROUTES)
    for integration in integrations.values():
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert refers_to(integration["IntegrationUri"], alias), integration["IntegrationUri"]
    for _, route in routes_by_key(stack).values():
        (integration_id,) = [lid for lid in integrations if refers_to(route["Target"], lid)]
        assert integration_id in integrations


@pytest.mark.parametrize("variant", ["ticket", "iam"])
def test_api_gateway_may_invoke_the_socket_alias_and_in_ticket_mode_the_authorizer_alias(
    request: pytest.FixtureRequest, variant: str
) -> None:
    stack: SynthesizedStack = request.getfixturevalue(variant)
    streaming_api = api_of(stack)
    api_id = stack.logical_id(streaming_api.web_socket_api)
    invokers = {
        token_text(p["FunctionName"])
        for p in stack.of_type("AWS::Lambda::Permission").values()
        if p["Principal"] == "apigateway.amazonaws.com" and refers_to(p.get("SourceArn"), api_id)
    }

    expected = [streaming_api.socket_function.alias]
    if streaming_api.authorizer_function is not None:
        expected.append(streaming_api.authorizer_function.alias)
    assert {token_text({"Ref": stack.logical_id(alias)}) for alias in expected} == invokers


# -- the stage ------------------------------------------------------------------------------------------------


def test_the_stage_deploys_automatically_and_throttles_every_route(ticket: SynthesizedStack) -> None:
    ticket.template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "live",
            "AutoDeploy": True,
            "DefaultRouteSettings": Match.object_like(
                {"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100, "DataTraceEnabled": False}
            ),
        },
    )


def test_the_stage_logs_access_to_a_log_group_with_retention(ticket: SynthesizedStack) -> None:
    (stage,) = ticket.of_type("AWS::ApiGatewayV2::Stage").values()

    destination = stage["AccessLogSettings"]["DestinationArn"]

    log_group_id, attribute = destination["Fn::GetAtt"]
    assert attribute == "Arn"
    assert log_group_id == ticket.logical_id(api_of(ticket).access_log_group)
    assert ticket.resources[log_group_id]["Properties"]["RetentionInDays"] == 30


def test_the_access_log_format_never_holds_the_query_string_where_the_ticket_travels_nor_the_message_body(
    ticket: SynthesizedStack,
) -> None:
    (stage,) = ticket.of_type("AWS::ApiGatewayV2::Stage").values()

    fields = json.loads(stage["AccessLogSettings"]["Format"])

    assert fields["routeKey"] == "$context.routeKey" and fields["connectionId"] == "$context.connectionId"
    for value in fields.values():
        lowered = value.lower()
        assert not any(leak in lowered for leak in ("querystring", "body", "ticket", "$input", "$request.")), value


# -- the functions --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["ticket", "iam"])
def test_every_streaming_function_is_traced_with_explicit_memory_and_timeout(
    request: pytest.FixtureRequest, variant: str
) -> None:
    stack: SynthesizedStack = request.getfixturevalue(variant)

    functions = streaming_functions(stack)

    assert functions, "no function found under the StreamingApi"
    for path, properties in functions.items():
        assert properties.get("TracingConfig") == {"Mode": "Active"}, path
        assert isinstance(properties.get("MemorySize"), int), path
        assert isinstance(properties.get("Timeout"), int), path


def test_under_reject_the_stream_worker_may_run_a_turn_for_five_minutes_fed_by_its_own_queue(ticket: SynthesizedStack) -> None:
    streaming_api = api_of(ticket)

    assert ticket.properties(streaming_api.worker.function)["Timeout"] == 300
    assert streaming_api.queue is not None
    ticket.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [ticket.logical_id(streaming_api.queue), "Arn"]},
            "BatchSize": 1,
            "ScalingConfig": {"MaximumConcurrency": 10},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_under_enqueue_there_is_no_stream_worker_or_queue_and_the_session_worker_streams(iam: SynthesizedStack) -> None:
    agent: StatefulAgent = iam.stack.agent  # type: ignore[attr-defined]
    streaming_api = api_of(iam)

    assert streaming_api.queue is None and streaming_api.dead_letter_queue is None
    assert agent.worker is not None and streaming_api.worker is agent.worker
    paths = {path.removeprefix(f"{streaming_api.node.path}/") for path in streaming_functions(iam)}
    assert not any(path.startswith(("Worker/", "Turns/")) for path in paths), paths
    streaming_queues = [
        r for r in iam.resources.values() if r["Type"] == "AWS::SQS::Queue" and "/Streaming/" in r["Metadata"]["aws:cdk:path"]
    ]
    assert streaming_queues == []
    environment = iam.environment(agent.worker)
    assert {"AGENT_STREAM_EVENT_TABLE", "AGENT_STREAM_CONNECTIONS_URL"} <= set(environment)


# -- the tables -----------------------------------------------------------------------------------------------


def _table(stack: SynthesizedStack, name: str) -> dict[str, Any]:
    return stack.properties(getattr(api_of(stack), f"{name}_table"))


@pytest.mark.parametrize("name", ["ticket", "connection", "event"])
def test_each_stream_table_expires_items_on_expires_at_with_pitr_and_encryption(ticket: SynthesizedStack, name: str) -> None:
    table = _table(ticket, name)

    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True


@pytest.mark.parametrize("name", ["ticket", "connection", "event"])
def test_each_stream_table_has_a_keys_only_by_owner_index_for_erasure(ticket: SynthesizedStack, name: str) -> None:
    indexes = {index["IndexName"]: index for index in _table(ticket, name)["GlobalSecondaryIndexes"]}

    assert indexes["by_owner"]["KeySchema"] == [{"AttributeName": "owner", "KeyType": "HASH"}]
    assert indexes["by_owner"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_the_connection_table_finds_a_sessions_connections_through_by_session(ticket: SynthesizedStack) -> None:
    indexes = {index["IndexName"]: index for index in _table(ticket, "connection")["GlobalSecondaryIndexes"]}

    assert set(indexes) == {"by_session", "by_owner"}
    assert indexes["by_session"]["KeySchema"] == [{"AttributeName": "session_id", "KeyType": "HASH"}]


def test_the_event_table_sorts_events_by_a_numeric_first_id(ticket: SynthesizedStack) -> None:
    table = _table(ticket, "event")

    (sort_key,) = [key["AttributeName"] for key in table["KeySchema"] if key["KeyType"] == "RANGE"]
    assert sort_key == "first_id"
    assert {"AttributeName": "first_id", "AttributeType": "N"} in table["AttributeDefinitions"]


# -- the reject policy's queue --------------------------------------------------------------------------------


def test_the_turn_queue_redrives_to_its_dead_letter_queue_and_both_are_encrypted(ticket: SynthesizedStack) -> None:
    streaming_api = api_of(ticket)
    assert streaming_api.queue is not None and streaming_api.dead_letter_queue is not None

    queue = ticket.properties(streaming_api.queue)
    dead_letters = ticket.properties(streaming_api.dead_letter_queue)

    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": [ticket.logical_id(streaming_api.dead_letter_queue), "Arn"]
    }
    assert queue["SqsManagedSseEnabled"] is True and dead_letters["SqsManagedSseEnabled"] is True


# -- IAM ------------------------------------------------------------------------------------------------------


def _manage_connections(stack: SynthesizedStack, function: Any) -> list[str]:
    return [resource for action, resource in stack.grants(function) if action == "execute-api:ManageConnections"]


@pytest.mark.parametrize("variant", ["ticket", "iam"])
def test_the_socket_and_worker_may_manage_connections_of_this_apis_connections_only(
    request: pytest.FixtureRequest, variant: str
) -> None:
    stack: SynthesizedStack = request.getfixturevalue(variant)
    streaming_api = api_of(stack)
    api_id = stack.logical_id(streaming_api.web_socket_api)

    for function in (streaming_api.socket_function, streaming_api.worker):
        resources = _manage_connections(stack, function)
        assert resources, function.node.path
        for resource in resources:
            assert api_id in resource and resource.endswith('/*/*/@connections/*"]]}'), resource
    # and no other role of the stack may post to connections
    allowed = {
        stack.logical_id(f.role)  # type: ignore[union-attr]
        for f in (streaming_api.socket_function.function, streaming_api.worker.function)
    }
    for lid, policy in stack.of_type("AWS::IAM::Policy").items():
        actions = {a for s in policy["PolicyDocument"]["Statement"] for a in listed(s["Action"])}
        if "execute-api:ManageConnections" in actions:
            assert {r["Ref"] for r in policy["Roles"]} <= allowed, lid


def test_the_authorizer_may_only_delete_items_of_the_ticket_table(ticket: SynthesizedStack) -> None:
    streaming_api = api_of(ticket)
    assert streaming_api.authorizer_function is not None

    dynamodb = {(a, r) for a, r in ticket.grants(streaming_api.authorizer_function) if a.startswith("dynamodb:")}

    table_arn = token_text({"Fn::GetAtt": [ticket.logical_id(streaming_api.ticket_table), "Arn"]})
    assert dynamodb == {("dynamodb:DeleteItem", table_arn)}


def test_the_rest_sessions_function_may_put_connect_tickets(ticket: SynthesizedStack) -> None:
    agent: StatefulAgent = ticket.stack.agent  # type: ignore[attr-defined]
    table_arn = token_text({"Fn::GetAtt": [ticket.logical_id(api_of(ticket).ticket_table), "Arn"]})

    assert ("dynamodb:PutItem", table_arn) in ticket.grants(agent.agent_function)


# -- the REST API and the outputs -----------------------------------------------------------------------------


def test_the_rest_api_issues_stream_tickets_when_streaming_is_on(ticket: SynthesizedStack) -> None:
    assert STREAM_TICKET_ROUTE in ticket.routes()


def test_with_iam_connections_there_is_no_ticket_table_nor_stream_ticket_route(iam: SynthesizedStack) -> None:
    # IAM-signed $connect redeems no ticket: issuing tickets would hand out credentials nothing accepts
    agent = api_of(iam)

    assert agent.ticket_table is None and agent.tables == [agent.connection_table, agent.event_table]
    assert STREAM_TICKET_ROUTE not in iam.routes()
    tables = iam.template.find_resources("AWS::DynamoDB::Table")
    assert not [t for t in tables.values() if t["Properties"]["KeySchema"][0]["AttributeName"] == "ticket_hash"]


def test_the_rest_api_has_no_stream_ticket_route_without_streaming(pattern_stacks: dict[str, SynthesizedStack]) -> None:
    assert STREAM_TICKET_ROUTE not in pattern_stacks["stateful"].routes()


def test_the_stack_outputs_the_stream_url_with_streaming(ticket: SynthesizedStack) -> None:
    outputs = ticket.template.find_outputs("StreamUrl")

    assert list(outputs) == ["StreamUrl"]
    assert "wss://" in json.dumps(outputs["StreamUrl"]["Value"])


def test_the_stack_has_no_stream_url_output_without_streaming(pattern_stacks: dict[str, SynthesizedStack]) -> None:
    assert pattern_stacks["stateful"].template.find_outputs("StreamUrl") == {}


# -- cdk-nag, cfn-lint, checkov -------------------------------------------------------------------------------


@pytest.mark.parametrize("stack_name", ["Streaming", "StreamingEnqueue"])
def test_the_streaming_stack_has_no_unacknowledged_cdk_nag_finding(streaming: StreamingAssembly, stack_name: str) -> None:
    found = violations(streaming.report, stack_name)

    assert found == [], "fix each finding, or acknowledge it on its resource with nag.acknowledge and a reason"
    assert streaming.synth_error is None, streaming.synth_error


@pytest.mark.parametrize("stack_name", ["Streaming", "StreamingEnqueue"])
def test_each_streaming_acknowledgement_sits_on_the_violating_resource_with_a_reason(
    streaming: StreamingAssembly, stack_name: str
) -> None:
    suppressed = findings(streaming.report, "suppressedViolations", stack_name)

    assert suppressed, "the report holds no finding of this stack: did cdk-nag run on it?"
    for finding in suppressed:
        assert [c["constructPath"] for c in finding["violatingConstructs"]] == [finding["acknowledgedAt"]]
        assert len(finding["reason"].strip()) >= MIN_REASON_CHARS, finding["reason"]
    # the routes after $connect run no authorizer (a WebSocket API authorizes once): acknowledged on each of them
    unauthorized_routes = {
        finding["acknowledgedAt"].removeprefix(f"{stack_name}/StatefulAgent/Streaming/Api/")
        for finding in suppressed
        if finding["ruleName"] == "AwsSolutions-APIG4"
    }
    assert unauthorized_routes == {"$disconnect-Route/Resource", *(f"{r}-Route/Resource" for r in TWO_WAY_ROUTES)}


@pytest.mark.parametrize("variant", ["ticket", "iam"])
def test_the_streaming_template_passes_cfn_lint(streaming: StreamingAssembly, variant: str) -> None:
    template = streaming.template_path(getattr(streaming, variant)).read_text()

    matches = lint(template, regions=REGIONS)

    assert [f"{m.rule.id} {'/'.join(map(str, m.path))}: {m.message}" for m in matches] == []


@pytest.fixture(scope="module")
def streaming_checkov(streaming: StreamingAssembly) -> dict[str, dict[str, list[dict[str, Any]]]]:
    paths = {variant: streaming.template_path(getattr(streaming, variant)) for variant in ("ticket", "iam")}
    results = run_checkov(list(paths.values()))
    return {variant: results[path.name] for variant, path in paths.items()}


@pytest.mark.parametrize("variant", ["ticket", "iam"])
def test_the_streaming_template_has_no_failed_checkov_check(streaming_checkov: dict[str, Any], variant: str) -> None:
    failed = streaming_checkov[variant]["failed"]

    assert not failed, f"{len(failed)} failed checkov checks:\n{_describe(failed)}"
    assert streaming_checkov[variant]["passed"]


@pytest.mark.parametrize("variant", ["ticket", "iam"])
def test_every_checkov_skip_on_the_streaming_template_is_listed_with_a_reason(
    streaming_checkov: dict[str, Any], variant: str
) -> None:
    skipped = streaming_checkov[variant]["skipped"]

    unlisted = [c for c in skipped if c["check_id"] not in SKIPPABLE]
    unreasoned = [c for c in skipped if len((c["check_result"].get("suppress_comment") or "").strip()) < MIN_REASON_CHARS]
    assert not unlisted, _describe(unlisted)
    assert not unreasoned, _describe(unreasoned)


# -- options --------------------------------------------------------------------------------------------------


def test_the_default_options_are_valid() -> None:
    StreamingOptions().validate()


def test_an_unknown_auth_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="auth must be 'ticket' or 'iam', got 'cookie'"):
        StreamingOptions(auth="cookie").validate()  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", [Duration.seconds(4), Duration.minutes(16)])
def test_a_ticket_ttl_outside_5_seconds_to_15_minutes_is_rejected(ttl: Duration) -> None:
    with pytest.raises(ValueError, match="ticket_ttl must be between 5 seconds and 15 minutes"):
        StreamingOptions(ticket_ttl=ttl).validate()


@pytest.mark.parametrize("ttl", [Duration.seconds(59), Duration.days(8)])
def test_an_event_ttl_outside_1_minute_to_7_days_is_rejected(ttl: Duration) -> None:
    with pytest.raises(ValueError, match="event_ttl must be between 1 minute and 7 days"):
        StreamingOptions(event_ttl=ttl).validate()


@pytest.mark.parametrize("timeout", [Duration.seconds(29), Duration.minutes(16)])
def test_a_worker_timeout_outside_30_seconds_to_lambdas_15_minutes_is_rejected(timeout: Duration) -> None:
    with pytest.raises(ValueError, match=r"worker_timeout must be between 30 seconds and 15 minutes \(Lambda's limit\)"):
        StreamingOptions(worker_timeout=timeout).validate()


@pytest.mark.parametrize("concurrency", [1, 1001])
def test_a_worker_max_concurrency_outside_the_event_source_mappings_2_to_1000_is_rejected(concurrency: int) -> None:
    with pytest.raises(ValueError, match=r"worker_max_concurrency must be between 2 and 1000"):
        StreamingOptions(worker_max_concurrency=concurrency).validate()


@pytest.mark.parametrize("limits", [{"throttling_rate_limit": 0}, {"throttling_burst_limit": 0}])
def test_a_throttling_limit_below_one_is_rejected(limits: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="throttling_rate_limit and throttling_burst_limit must be at least 1"):
        StreamingOptions(**limits).validate()


def test_invalid_options_fail_the_stack_at_synth(app_factory: Callable[..., cdk.App]) -> None:
    with pytest.raises(ValueError, match="worker_max_concurrency must be between 2 and 1000"):
        StatefulAgentStack(app_factory(), "Invalid", env=TEST_ENV, streaming_options=StreamingOptions(worker_max_concurrency=1))


# -- the hardened profile -------------------------------------------------------------------------------------


def test_streaming_in_a_hardened_stack_without_egress_fails_the_synth_naming_both_fixes(
    app_factory: Callable[..., cdk.App],
) -> None:
    app = app_factory(context=HARDENED_LOOKUPS)

    with pytest.raises(ValueError, match=r"posts to WebSocket connections.*turn streaming off.*egress='nat'"):
        StatefulAgentStack(app, "HardenedStreaming", env=TEST_ENV, security="hardened", streaming_options=StreamingOptions())
