"""The local WebSocket gateway's decisions: route selection, the events API Gateway sends to Lambda, what a REQUEST
authorizer's answer allows, and what a two-way route sends back."""

from __future__ import annotations

import base64
import json

import pytest

from agentrail_local.apigateway.model import Integration
from agentrail_local.apigateway.websocket import (
    ConnectionInfo,
    WebSocketApi,
    WebSocketAuthorizer,
    WebSocketRoute,
    WebSocketStage,
    authorizer_context,
    authorizer_event,
    connect_event,
    disconnect_event,
    error_frame,
    identity_values,
    integration_reply,
    message_event,
    new_connection_id,
    selected_route_key,
)

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:chat"
URI = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{FUNCTION}/invocations"


def _api(*keys: str, expression: str = "$request.body.action") -> WebSocketApi:
    integration = Integration(type="AWS_PROXY", uri=URI, timeout_ms=29_000)
    return WebSocketApi(
        stack_name="S",
        logical_id="Chat",
        api_id="abc123",
        name="Chat",
        route_selection_expression=expression,
        routes={key: WebSocketRoute(key=key, integration=integration) for key in keys},
        stages={"dev": WebSocketStage(name="dev", variables={"mode": "test"})},
    )


def _info(api: WebSocketApi, **extra: object) -> ConnectionInfo:
    options: dict[str, object] = {
        "api": api,
        "stage": "dev",
        "connection_id": "L0SM9cOFvHcCIhw=",
        "connected_at_ms": 1_700_000_000_000,
        "domain_name": "127.0.0.1:3050",
        "source_ip": "127.0.0.1",
        "user_agent": "tests",
        **extra,
    }
    return ConnectionInfo(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('{"action": "sendMessage", "text": "hi"}', "sendMessage"),
        ('{"action": "nothing"}', "$default"),
        ('{"text": "no action"}', "$default"),
        ("not json at all", "$default"),
        ('["a", "list"]', "$default"),
        (b"\x00binary", "$default"),
        ('{"action": "$connect"}', "$default"),
        ('{"action": "$disconnect"}', "$default"),
    ],
)
def test_a_message_goes_to_the_route_its_action_names_else_to_default(message: str | bytes, expected: str) -> None:
    api = _api("$connect", "$disconnect", "$default", "sendMessage")

    assert api.select_route(message) == expected


def test_a_message_that_selects_no_route_on_an_api_without_default_selects_none() -> None:
    api = _api("$connect", "ping")

    assert api.select_route('{"action": "ping"}') == "ping"
    assert api.select_route('{"action": "pong"}') is None
    assert api.select_route("not json") is None


def test_a_selection_expression_may_be_braced_and_nested_and_numbers_select_by_their_text() -> None:
    assert selected_route_key("${request.body.meta.kind}", '{"meta": {"kind": "sendMessage"}}') == "sendMessage"
    assert selected_route_key("$request.body.version", '{"version": 2}') == "2"
    assert selected_route_key("$request.body.meta.kind", '{"meta": "flat"}') is None
    assert selected_route_key("$request.header.action", '{"action": "x"}') is None


def test_the_connect_event_carries_the_handshakes_headers_and_query_and_no_body() -> None:
    api = _api("$connect")
    info = _info(api, headers={"Host": "h"}, multi_headers={"Host": ["h"]}, query={"ticket": "t"}, multi_query={"ticket": ["t"]})

    event = connect_event(info, now_ms=1_700_000_000_500, request_id="req")

    assert event["queryStringParameters"] == {"ticket": "t"} and event["multiValueQueryStringParameters"] == {"ticket": ["t"]}
    assert event["headers"] == {"Host": "h"} and event["isBase64Encoded"] is False and "body" not in event
    context = event["requestContext"]
    assert (context["routeKey"], context["eventType"], context["messageDirection"]) == ("$connect", "CONNECT", "IN")
    assert (context["connectionId"], context["apiId"], context["stage"]) == ("L0SM9cOFvHcCIhw=", "abc123", "dev")
    assert (context["connectedAt"], context["requestTimeEpoch"], context["requestId"]) == (
        1_700_000_000_000,
        1_700_000_000_500,
        "req",
    )
    assert context["requestTime"] == "14/Nov/2023:22:13:20 +0000"
    assert context["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "tests"}
    assert "authorizer" not in context


def test_a_message_event_has_its_body_and_the_connections_authorizer_and_binary_is_base64() -> None:
    api = _api("$default")
    info = _info(api, authorizer={"principalId": "u1", "tier": 3})

    text = message_event(info, "$default", '{"a": 1}', now_ms=1, request_id="r1")
    binary = message_event(info, "$default", b"\x00\x01", now_ms=2, request_id="r2")

    assert (text["body"], text["isBase64Encoded"]) == ('{"a": 1}', False)
    assert (text["requestContext"]["eventType"], text["requestContext"]["authorizer"]) == (
        "MESSAGE",
        {"principalId": "u1", "tier": 3},
    )
    assert text["requestContext"]["messageId"]
    assert (base64.b64decode(binary["body"]), binary["isBase64Encoded"]) == (b"\x00\x01", True)


def test_the_disconnect_event_says_who_closed_with_which_code() -> None:
    event = disconnect_event(
        _info(_api("$disconnect")), status_code=1001, reason="Server-side close frame status code '1001'", now_ms=5
    )

    context = event["requestContext"]
    assert (context["routeKey"], context["eventType"], context["disconnectStatusCode"]) == ("$disconnect", "DISCONNECT", 1001)
    assert context["disconnectReason"].startswith("Server-side")
    assert event["headers"]["Host"] == "127.0.0.1:3050"


def test_the_authorizer_event_names_connect_in_its_method_arn_and_has_the_stage_variables() -> None:
    info = _info(_api("$connect"), query={"ticket": "t"})

    event = authorizer_event(info, now_ms=1, request_id="r")

    assert event["type"] == "REQUEST"
    assert event["methodArn"] == "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/$connect"
    assert (event["queryStringParameters"], event["stageVariables"]) == ({"ticket": "t"}, {"mode": "test"})


def _policy(effect: str, action: str = "execute-api:Invoke", **answer: object) -> dict[str, object]:
    statement = {"Action": action, "Effect": effect, "Resource": "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/$connect"}
    return {"principalId": "u1", "policyDocument": {"Version": "2012-10-17", "Statement": [statement]}, **answer}


def test_an_allow_policy_admits_and_its_context_reaches_the_events_beside_the_principal() -> None:
    allowed, context = authorizer_context(_policy("Allow", context={"user_id": "u1", "tier": 3, "admin": False}))

    assert allowed is True
    assert context == {"principalId": "u1", "user_id": "u1", "tier": 3, "admin": False}


def test_a_deny_or_a_policy_for_another_action_refuses() -> None:
    assert authorizer_context(_policy("Deny"))[0] is False
    assert authorizer_context(_policy("Allow", action="s3:GetObject"))[0] is False


@pytest.mark.parametrize(
    "answer",
    [None, {"principalId": "u1"}, _policy("Allow", context={"nested": {"no": "objects"}}), _policy("Allow", context=["x"])],
)
def test_an_authorizer_answer_api_gateway_cannot_read_is_an_error(answer: object) -> None:
    with pytest.raises(ValueError, match="the authorizer's"):
        authorizer_context(answer)


def test_identity_sources_read_the_handshakes_header_case_insensitively_and_its_query_string() -> None:
    headers = {"Authorization": "Bearer x"}

    assert identity_values("route.request.header.authorization", headers, None) == "Bearer x"
    assert identity_values("route.request.querystring.ticket", headers, {"ticket": "t"}) == "t"
    assert identity_values("route.request.querystring.ticket", headers, None) is None


def test_a_two_way_route_sends_back_the_proxy_answers_body_decoded_when_base64() -> None:
    assert integration_reply({"statusCode": 200, "body": "hello"}) == "hello"
    assert integration_reply({"statusCode": 200, "body": base64.b64encode(b"\x00").decode(), "isBase64Encoded": True}) == b"\x00"
    assert integration_reply({"statusCode": 200}) is None
    assert integration_reply({"answer": 42}) == json.dumps({"answer": 42})
    assert integration_reply(None) is None


def test_api_gateways_error_frame_names_the_connection_and_request() -> None:
    frame = json.loads(error_frame("Forbidden", _info(_api("$default")), "req-1"))

    assert frame == {"message": "Forbidden", "connectionId": "L0SM9cOFvHcCIhw=", "requestId": "req-1"}


def test_connection_ids_are_shaped_like_api_gateways_and_safe_in_a_url_path() -> None:
    ids = {new_connection_id() for _ in range(200)}

    assert len(ids) == 200
    assert all(len(i) == 16 and i.endswith("=") and "/" not in i and "+" not in i for i in ids)


def test_an_authorizers_function_is_the_arn_inside_its_uri() -> None:
    authorizer = WebSocketAuthorizer(
        id="a", name="Tickets", type="REQUEST", uri=URI, identity_source=("route.request.querystring.ticket",)
    )

    assert authorizer.function_target == FUNCTION
