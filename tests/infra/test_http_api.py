"""AgentApiOptions(kind="http"): an HTTP API (payload 2.0) in front of the same handlers, and ``-c api=http``."""

from __future__ import annotations

import json
from collections.abc import Callable

import aws_cdk as cdk
import pytest
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk.assertions import Match, Template

from agentrail_constructs import AgentApiOptions, ApiAuth, StatelessAgent
from agentrail_constructs.app_config import AppConfig

USER_POOL_ARN = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Example1"
WEB_ACL_ARN = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/agents/0f0e0d0c-0b0a-4000-8000-000000000000"
ROUTE_KEYS = {"POST /invoke", "POST /erase", "GET /health", "GET /openapi.json"}


@pytest.fixture(scope="module")
def http_template(app_factory: Callable[..., cdk.App], stack_env: cdk.Environment) -> Template:
    stack = cdk.Stack(app_factory(), "Test", env=stack_env)
    StatelessAgent(stack, "Agent", api_options=AgentApiOptions(kind="http", throttling_rate_limit=20, throttling_burst_limit=40))
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def jwt_template(app_factory: Callable[..., cdk.App], stack_env: cdk.Environment) -> Template:
    stack = cdk.Stack(app_factory(), "Test", env=stack_env)
    pool = cognito.UserPool.from_user_pool_arn(stack, "Pool", USER_POOL_ARN)
    client = cognito.UserPoolClient.from_user_pool_client_id(stack, "Client", "4abcdefghijklmnopqrstuvwxy")
    auth = ApiAuth.cognito([pool], scopes=["agents/invoke"], app_clients=[client])
    StatelessAgent(stack, "Agent", api_options=AgentApiOptions(kind="http", auth=auth))
    return Template.from_stack(stack)


def routes(template: Template) -> dict[str, dict]:
    found = template.find_resources("AWS::ApiGatewayV2::Route")
    return {resource["Properties"]["RouteKey"]: resource["Properties"] for resource in found.values()}


def test_kind_http_builds_an_http_api_and_no_rest_api(http_template):
    http_template.resource_count_is("AWS::ApiGatewayV2::Api", 1)
    http_template.has_resource_properties("AWS::ApiGatewayV2::Api", {"ProtocolType": "HTTP"})
    http_template.resource_count_is("AWS::ApiGateway::RestApi", 0)


def test_every_http_route_is_iam_authenticated_and_sends_payload_2_0_to_the_live_alias(http_template):
    found = routes(http_template)

    assert set(found) == ROUTE_KEYS
    assert {props["AuthorizationType"] for props in found.values()} == {"AWS_IAM"}
    integrations = http_template.find_resources("AWS::ApiGatewayV2::Integration")
    assert len(integrations) == len(ROUTE_KEYS)
    for integration in integrations.values():
        props = integration["Properties"]
        assert (props["IntegrationType"], props["PayloadFormatVersion"]) == ("AWS_PROXY", "2.0")
        assert "LiveAlias" in props["IntegrationUri"]["Ref"]


def test_the_http_stage_throttles_and_writes_json_access_logs_without_bodies_to_a_retained_log_group(http_template):
    [stage] = http_template.find_resources("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]

    assert props["StageName"] == "v1" and props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"] == {"ThrottlingRateLimit": 20, "ThrottlingBurstLimit": 40}
    log_format = json.loads(props["AccessLogSettings"]["Format"])
    assert log_format["requestId"] == "$context.requestId" and "status" in log_format
    assert not any("body" in value.lower() for value in log_format.values())
    log_group = props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert http_template.to_json()["Resources"][log_group]["Properties"]["RetentionInDays"] == 30


def test_a_function_behind_an_http_api_is_told_so(http_template):
    http_template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"AGENT_API_KIND": "http"})}},
    )


def test_cognito_on_an_http_api_is_a_jwt_authorizer_for_the_app_clients_with_the_scopes_on_every_route(jwt_template):
    jwt_template.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer",
        {
            "AuthorizerType": "JWT",
            "IdentitySource": ["$request.header.Authorization"],
            "JwtConfiguration": {
                "Audience": ["4abcdefghijklmnopqrstuvwxy"],
                "Issuer": Match.string_like_regexp("cognito-idp.us-east-1.amazonaws.com/us-east-1_Example1"),
            },
        },
    )
    found = routes(jwt_template)
    assert {props["AuthorizationType"] for props in found.values()} == {"JWT"}
    assert all(props["AuthorizationScopes"] == ["agents/invoke"] for props in found.values())


# -- what an HTTP API cannot do is refused at synth, naming the fix --------------------------------------


def test_api_keys_on_an_http_api_are_refused_naming_the_fix(stack):
    options = AgentApiOptions(kind="http", auth=ApiAuth.api_key(clients=["acme"]))

    with pytest.raises(ValueError, match=r"REST API feature.*ApiAuth.iam\(\).*kind='rest'"):
        StatelessAgent(stack, "Agent", api_options=options)


def test_a_web_acl_on_an_http_api_is_refused(stack):
    with pytest.raises(ValueError, match="WAF cannot be associated with an HTTP API"):
        StatelessAgent(stack, "Agent", api_options=AgentApiOptions(kind="http", web_acl_arn=WEB_ACL_ARN))


def test_an_existing_rest_api_with_kind_http_is_refused(stack):
    existing = apigw.RestApi(stack, "Mine")

    with pytest.raises(ValueError, match="existing_rest_api is a REST API"):
        StatelessAgent(stack, "Agent", api_options=AgentApiOptions(kind="http"), existing_rest_api=existing)


def test_cognito_on_an_http_api_without_app_clients_is_refused_naming_the_fix(stack):
    pool = cognito.UserPool.from_user_pool_arn(stack, "Pool", USER_POOL_ARN)
    options = AgentApiOptions(kind="http", auth=ApiAuth.cognito([pool], scopes=["agents/invoke"]))

    with pytest.raises(ValueError, match=r"app_clients=\[client\]"):
        StatelessAgent(stack, "Agent", api_options=options)


def test_an_unknown_kind_is_refused(stack):
    with pytest.raises(ValueError, match="kind must be one of rest, http"):
        StatelessAgent(stack, "Agent", api_options=AgentApiOptions(kind="grpc"))  # type: ignore[arg-type]


# -- cdk -c api=http -----------------------------------------------------------------------------------


def test_context_api_http_gives_every_pattern_an_http_api():
    config = AppConfig.from_context(cdk.App(context={"api": "http"}), ("stateless",))

    assert config.api_options().kind == "http"
    assert AppConfig.from_context(cdk.App(), ("stateless",)).api_options().kind == "rest"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"api": "grpc"}, "context 'api' must be one of rest, http"),
        ({"api": "http", "auth": "api_key", "single_tenant": "true"}, "auth=api_key needs a REST API"),
    ],
    ids=["unknown", "api-key-on-http"],
)
def test_context_api_is_validated_with_a_clear_error(context, message):
    with pytest.raises(ValueError, match=message):
        AppConfig.from_context(cdk.App(context=context), ("stateless",))
