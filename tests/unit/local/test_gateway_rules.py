"""The local API Gateway's decisions: route matching, gateway responses, validation, throttling and proxy responses."""

from __future__ import annotations

import base64
import json

import pytest

from agentrail_local.apigateway.auth import cognito_claims
from agentrail_local.apigateway.model import (
    ApiResource,
    GatewayResponse,
    Integration,
    Method,
    RestApi,
    Stage,
    TokenBucket,
    match_route,
)
from agentrail_local.apigateway.pipeline import check_body, check_parameters
from agentrail_local.apigateway.proxy import proxy_reply
from agentrail_local.apigateway.responses import GatewayRejection, gateway_response, render_template


def _tree() -> ApiResource:
    root = ApiResource(id="root", path_part="")
    sessions = ApiResource(id="sessions", path_part="sessions", parent=root)
    session = ApiResource(id="session", path_part="{session_id}", parent=sessions)
    latest = ApiResource(id="latest", path_part="latest", parent=sessions)
    messages = ApiResource(id="messages", path_part="messages", parent=session)
    files = ApiResource(id="files", path_part="files", parent=root)
    proxy = ApiResource(id="proxy", path_part="{proxy+}", parent=files)
    root.children = [sessions, files]
    sessions.children = [session, latest]
    session.children = [messages]
    files.children = [proxy]
    return root


@pytest.mark.parametrize(
    ("path", "resource_path", "parameters"),
    [
        ("/", "/", {}),
        ("/sessions", "/sessions", {}),
        ("/sessions/", "/sessions", {}),
        ("/sessions/latest", "/sessions/latest", {}),
        ("/sessions/s-1", "/sessions/{session_id}", {"session_id": "s-1"}),
        ("/sessions/a%20b/messages", "/sessions/{session_id}/messages", {"session_id": "a b"}),
        ("/files/a/b/c.txt", "/files/{proxy+}", {"proxy": "a/b/c.txt"}),
    ],
)
def test_route_matching_prefers_literal_then_parameter_then_greedy(
    path: str, resource_path: str, parameters: dict[str, str]
) -> None:
    matched = match_route(_tree(), path)

    assert matched is not None
    resource, found = matched
    assert (resource.path, found) == (resource_path, parameters)


@pytest.mark.parametrize("path", ["/nope", "/sessions/s-1/other", "/sessions/s-1/messages/m-1"])
def test_paths_without_a_resource_do_not_match(path: str) -> None:
    assert match_route(_tree(), path) is None


def test_any_method_answers_for_every_http_method_but_exact_methods_win() -> None:
    resource = ApiResource(id="r", path_part="x")
    any_method = Method("ANY", "NONE", False, Integration("AWS_PROXY", None, 29000))
    get_method = Method("GET", "AWS_IAM", False, Integration("AWS_PROXY", None, 29000))
    resource.methods = {"ANY": any_method, "GET": get_method}

    assert resource.method_for("GET") is get_method
    assert resource.method_for("DELETE") is any_method


def _api(responses: dict[str, GatewayResponse] | None = None) -> RestApi:
    return RestApi(
        stack_name="S",
        logical_id="Api",
        api_id="abc123",
        name="api",
        root=ApiResource(id="root", path_part=""),
        stages={"v1": Stage("v1", {}, [])},
        gateway_responses=responses or {},
        api_keys={},
        usage_plans=[],
    )


CONTEXT = {"requestId": "req-1", "extendedRequestId": "ext-1", "path": "/v1/x"}


def test_without_customization_gateway_responses_use_api_gateways_defaults() -> None:
    reply = gateway_response(_api(), "MISSING_AUTHENTICATION_TOKEN", CONTEXT)

    assert reply.status == 403
    assert json.loads(reply.body) == {"message": "Missing Authentication Token"}
    assert ("x-amzn-ErrorType", "MissingAuthenticationTokenException") in reply.headers


def test_a_customized_response_sets_status_body_and_headers_with_the_request_id() -> None:
    custom = GatewayResponse(
        type="THROTTLED",
        status=429,
        templates={"application/json": '{"error": "throttled", "request_id": "$context.requestId"}'},
        parameters={"gatewayresponse.header.Retry-After": "'1'"},
    )

    reply = gateway_response(_api({"THROTTLED": custom}), "THROTTLED", CONTEXT)

    assert reply.status == 429
    assert json.loads(reply.body) == {"error": "throttled", "request_id": "req-1"}
    assert ("Retry-After", "1") in reply.headers


def test_a_type_without_its_own_customization_takes_default_4xx_template_but_keeps_its_status() -> None:
    default = GatewayResponse("DEFAULT_4XX", None, {"application/json": '{"error": "$context.error.responseType"}'}, {})

    reply = gateway_response(_api({"DEFAULT_4XX": default}), "UNAUTHORIZED", CONTEXT)

    assert reply.status == 401
    assert json.loads(reply.body) == {"error": "UNAUTHORIZED"}


def test_function_errors_use_default_5xx_with_status_502() -> None:
    reply = gateway_response(_api(), "DEFAULT_5XX", CONTEXT, message="Internal server error", status=502)

    assert reply.status == 502
    assert json.loads(reply.body) == {"message": "Internal server error"}


def test_error_message_string_is_quoted_json_and_unknown_variables_are_empty() -> None:
    rendered = render_template('{"m": $context.error.messageString, "x": "$context.nothing"}', {"error.message": 'say "hi"'})

    assert json.loads(rendered) == {"m": 'say "hi"', "x": ""}


def _validated_method(schema: dict) -> Method:
    return Method(
        "POST",
        "NONE",
        False,
        Integration("AWS_PROXY", None, 29000),
        validate_body=True,
        validate_parameters=True,
        request_models={"application/json": schema},
        request_parameters={"method.request.querystring.lang": True, "method.request.header.X-Trace": False},
    )


SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "properties": {"message": {"type": "string", "maxLength": 5}},
    "required": ["message"],
    "additionalProperties": False,
}


def test_malformed_json_is_bad_request_body() -> None:
    with pytest.raises(GatewayRejection) as rejected:
        check_body(_validated_method(SCHEMA), {"Content-Type": "application/json"}, b'{"message": ')

    assert rejected.value.response_type == "BAD_REQUEST_BODY"


def test_schema_failure_names_the_rule_and_never_the_value() -> None:
    with pytest.raises(GatewayRejection) as rejected:
        check_body(_validated_method(SCHEMA), {}, json.dumps({"message": "secret-value-too-long"}).encode())

    assert rejected.value.response_type == "BAD_REQUEST_BODY"
    assert "maxLength" in rejected.value.validation_error
    assert "secret-value" not in rejected.value.validation_error


def test_a_body_matching_the_model_passes_and_a_content_type_without_model_is_not_validated() -> None:
    method = _validated_method(SCHEMA)

    check_body(method, {"Content-Type": "application/json; charset=utf-8"}, b'{"message": "hi"}')
    check_body(method, {"Content-Type": "text/plain"}, b"anything")


def test_a_missing_required_query_parameter_is_bad_request_parameters() -> None:
    method = _validated_method(SCHEMA)

    with pytest.raises(GatewayRejection) as rejected:
        check_parameters(method, {}, [("other", "1")], {})
    check_parameters(method, {}, [("lang", "en")], {})

    assert rejected.value.response_type == "BAD_REQUEST_PARAMETERS"


def test_token_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=2)

    taken = [bucket.take(now=100.0), bucket.take(now=100.0), bucket.take(now=100.0)]
    after_half_a_second = bucket.take(now=100.5)

    assert taken == [True, True, False]
    assert after_half_a_second is True


def test_stage_method_settings_for_an_exact_method_win_over_the_wildcard() -> None:
    stage = Stage(
        "v1",
        {},
        [
            {"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100},
            {"ResourcePath": "/~1invoke", "HttpMethod": "POST", "ThrottlingRateLimit": 1, "ThrottlingBurstLimit": 1},
        ],
    )

    invoke, health = stage.bucket("/invoke", "POST"), stage.bucket("/health", "GET")

    assert invoke is not None and (invoke.rate, invoke.burst) == (1.0, 1)
    assert health is not None and (health.rate, health.burst) == (50.0, 100)


def test_proxy_response_maps_status_headers_multi_value_headers_and_base64_body() -> None:
    reply = proxy_reply(
        {
            "statusCode": 201,
            "headers": {"X-One": "1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": "aGVsbG8=",
            "isBase64Encoded": True,
        },
        CONTEXT,
    )

    assert reply.status == 201
    assert reply.body == b"hello"
    assert [v for k, v in reply.headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    assert ("X-One", "1") in reply.headers


@pytest.mark.parametrize("result", [None, "text", {"statusCode": "abc"}, {"statusCode": 200, "headers": ["x"]}])
def test_a_malformed_proxy_response_is_a_502(result: object) -> None:
    with pytest.raises(GatewayRejection) as rejected:
        proxy_reply(result, CONTEXT)

    assert (rejected.value.response_type, rejected.value.status) == ("DEFAULT_5XX", 502)


def _token(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.signature"


def _cognito_method(*scopes: str) -> Method:
    return Method(
        http_method="GET",
        authorization_type="COGNITO_USER_POOLS",
        api_key_required=False,
        integration=Integration(type="AWS_PROXY", uri=None, timeout_ms=29_000),
        authorizer={"ProviderARNs": ["arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Example1"]},
        authorization_scopes=scopes,
    )


POOL_ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example1"


def test_a_method_with_scopes_takes_an_access_token_with_one_of_them_and_refuses_id_tokens():
    method = _cognito_method("agents/invoke")
    access = {"sub": "u1", "iss": POOL_ISSUER, "token_use": "access", "client_id": "app", "scope": "agents/invoke"}
    id_token = {"sub": "u1", "iss": POOL_ISSUER, "token_use": "id", "aud": "another-app", "scope": "agents/invoke"}
    unscoped = {**access, "scope": "aws.cognito.signin.user.admin"}

    assert cognito_claims(method, {"Authorization": _token(access)})["sub"] == "u1"
    for refused in (id_token, unscoped):
        with pytest.raises(GatewayRejection) as rejection:
            cognito_claims(method, {"Authorization": _token(refused)})
        assert rejection.value.response_type == "UNAUTHORIZED"
