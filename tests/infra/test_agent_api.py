"""AgentApi and StatelessAgent: authentication, validation, integrations, stage settings and gateway errors."""

from __future__ import annotations

import json
from collections.abc import Callable

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cognito as cognito
from aws_cdk.assertions import Match, Template

from agentrail_constructs import AgentApiOptions, AgentFunction, AgentFunctionOptions, ApiAuth, StatelessAgent
from agentrail_constructs.api import _GATEWAY_RESPONSES

USER_POOL_ARN = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Example1"
WEB_ACL_ARN = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/agents/0f0e0d0c-0b0a-4000-8000-000000000000"
ROUTES = {("POST", "invoke"), ("POST", "erase"), ("GET", "health"), ("GET", "openapi.json")}


def logical_id(template: Template, resource_type: str, props: dict | None = None) -> str:
    found = template.find_resources(resource_type, props or {})
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found))


def served_alias(template: Template) -> str:
    """The ``live`` alias of the agent's function (its pre-traffic hook, an AgentFunction too, has one of its own)."""
    aliases = template.find_resources("AWS::Lambda::Alias", {"Properties": {"Name": "live"}})
    served = [name for name, alias in aliases.items() if "PreTrafficHook" not in alias["Metadata"]["aws:cdk:path"]]
    assert len(served) == 1, f"expected one live alias outside the pre-traffic hooks, found {sorted(aliases)}"
    return served[0]


def methods(template: Template) -> dict[str, dict]:
    """Every API method's properties, keyed by (HTTP method, path part) — asserting there is no other route."""
    found = {logical: resource["Properties"] for logical, resource in template.find_resources("AWS::ApiGateway::Method").items()}
    paths = {
        logical: resource["Properties"]["PathPart"]
        for logical, resource in template.find_resources("AWS::ApiGateway::Resource").items()
    }
    routes = {(props["HttpMethod"], paths[props["ResourceId"]["Ref"]]) for props in found.values()}
    assert routes == ROUTES
    return found


def stateless_stack(
    app_factory: Callable[..., cdk.App], env: cdk.Environment, **kwargs: object
) -> tuple[StatelessAgent, Template]:
    stack = cdk.Stack(app_factory(), "Test", env=env)
    agent = StatelessAgent(stack, "Agent", **kwargs)  # type: ignore[arg-type]
    return agent, Template.from_stack(stack)


@pytest.fixture(scope="module")
def api_key_template(app_factory: Callable[..., cdk.App], stack_env: cdk.Environment) -> Template:
    return stateless_stack(app_factory, stack_env, api_options=AgentApiOptions(auth=ApiAuth.api_key(single_tenant=True)))[1]


@pytest.fixture(scope="module")
def cognito_template(app_factory: Callable[..., cdk.App], stack_env: cdk.Environment) -> Template:
    stack = cdk.Stack(app_factory(), "Test", env=stack_env)
    pool = cognito.UserPool.from_user_pool_arn(stack, "Pool", USER_POOL_ARN)
    StatelessAgent(stack, "Agent", api_options=AgentApiOptions(auth=ApiAuth.cognito([pool], scopes=["agents/invoke"])))
    return Template.from_stack(stack)


# -- authentication ------------------------------------------------------------------


def test_every_method_requires_iam_authorization_by_default(stateless_template: Template) -> None:
    found = methods(stateless_template)

    assert {props["AuthorizationType"] for props in found.values()} == {"AWS_IAM"}
    assert not any(props.get("ApiKeyRequired") for props in found.values())


def test_api_key_auth_requires_a_key_on_every_method(api_key_template: Template) -> None:
    found = methods(api_key_template)

    assert {props.get("ApiKeyRequired") for props in found.values()} == {True}
    api_key_template.resource_count_is("AWS::ApiGateway::ApiKey", 1)


def test_api_key_auth_puts_the_key_under_a_usage_plan_with_throttle_and_daily_quota(api_key_template: Template) -> None:
    plan = logical_id(api_key_template, "AWS::ApiGateway::UsagePlan")
    api_key = logical_id(api_key_template, "AWS::ApiGateway::ApiKey")

    api_key_template.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "Throttle": {"RateLimit": 50, "BurstLimit": 100},
            "Quota": {"Limit": 10_000, "Period": "DAY"},
            "ApiStages": [Match.object_like({"Stage": {"Ref": Match.any_value()}})],
        },
    )
    api_key_template.has_resource_properties(
        "AWS::ApiGateway::UsagePlanKey", {"KeyId": {"Ref": api_key}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": plan}}
    )


def test_api_key_quota_can_be_left_out(app_factory: Callable[..., cdk.App], stack_env: cdk.Environment) -> None:
    _, template = stateless_stack(
        app_factory, stack_env, api_options=AgentApiOptions(auth=ApiAuth.api_key(single_tenant=True, quota_per_day=None))
    )

    template.has_resource_properties("AWS::ApiGateway::UsagePlan", {"Quota": Match.absent(), "Throttle": Match.any_value()})


def test_cognito_auth_uses_a_user_pools_authorizer_on_every_method(cognito_template: Template) -> None:
    authorizer = logical_id(cognito_template, "AWS::ApiGateway::Authorizer")
    found = methods(cognito_template)

    cognito_template.has_resource_properties(
        "AWS::ApiGateway::Authorizer", {"Type": "COGNITO_USER_POOLS", "ProviderARNs": [USER_POOL_ARN]}
    )
    assert [(props["AuthorizationType"], props["AuthorizerId"], props["AuthorizationScopes"]) for props in found.values()] == [
        ("COGNITO_USER_POOLS", {"Ref": authorizer}, ["agents/invoke"])
    ] * len(ROUTES)


def test_cognito_auth_without_a_user_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="needs at least one user pool"):
        ApiAuth.cognito([])


def test_api_keys_per_client_each_get_a_usage_plan_of_their_own(
    app_factory: Callable[..., cdk.App], stack_env: cdk.Environment
) -> None:
    agent, template = stateless_stack(
        app_factory, stack_env, api_options=AgentApiOptions(auth=ApiAuth.api_key(clients=["acme", "globex"]))
    )

    template.resource_count_is("AWS::ApiGateway::ApiKey", 2)
    template.resource_count_is("AWS::ApiGateway::UsagePlan", 2)
    links = {
        (props["KeyId"]["Ref"], props["UsagePlanId"]["Ref"])
        for props in template.find_resources("AWS::ApiGateway::UsagePlanKey").values()
        for props in [props["Properties"]]
    }
    assert len(links) == 2
    assert len({key for key, _ in links}) == len({plan for _, plan in links}) == 2
    assert set(agent.api.api_keys) == set(agent.api.usage_plans) == {"acme", "globex"}
    assert agent.api.api_key is None
    assert {props.get("ApiKeyRequired") for props in methods(template).values()} == {True}
    assert len([name for name in template.find_outputs("*") if "ApiKeyId" in name]) == 2


def test_the_apps_api_key_context_needs_clients_or_single_tenant() -> None:
    from agentrail_constructs.app_config import AppConfig

    with pytest.raises(ValueError, match=r"-c api_clients=acme,globex.*-c single_tenant=true"):
        AppConfig.from_context(cdk.App(context={"auth": "api_key"}), ("stateless",))

    config = AppConfig.from_context(cdk.App(context={"auth": "api_key", "api_clients": "acme, globex"}), ("stateless",))
    assert config.api_options().auth.clients == ("acme", "globex")
    single = AppConfig.from_context(cdk.App(context={"auth": "api_key", "single_tenant": "true"}), ("stateless",))
    assert single.api_options().auth.single_tenant


def test_api_key_auth_without_clients_or_single_tenant_is_refused_naming_both_options() -> None:
    with pytest.raises(ValueError, match=r"same identity.*clients=\['acme', 'globex'\].*single_tenant=True"):
        ApiAuth.api_key()


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"clients": ["acme"], "single_tenant": True}, "not both"),
        ({"clients": ["acme corp"]}, "letters and digits"),
        ({"clients": ["acme", "acme"]}, "once"),
        ({"clients": "acme"}, "list of names"),
    ],
    ids=["both", "space", "repeated", "string"],
)
def test_api_key_clients_are_validated(kwargs: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ApiAuth.api_key(**kwargs)


@pytest.mark.parametrize(
    ("scopes", "problem"),
    [
        ((), "needs scopes"),
        (("openid",), "any app client"),
        (("aws.cognito.signin.user.admin",), "any app client"),
        (("agents/invoke", "email"), "any app client"),
        (("invoke",), "any app client"),
    ],
    ids=["none", "openid", "user-admin", "mixed", "no-resource-server"],
)
def test_cognito_auth_requires_resource_server_scopes_so_id_tokens_are_refused(scopes: tuple, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ApiAuth.cognito([cognito.UserPool.from_user_pool_arn(cdk.Stack(), "Pool", USER_POOL_ARN)], scopes=scopes)


# -- validation ----------------------------------------------------------------------


def test_every_method_goes_through_the_body_validator(stateless_template: Template) -> None:
    validator = logical_id(stateless_template, "AWS::ApiGateway::RequestValidator")

    stateless_template.has_resource_properties("AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True})
    assert [props.get("RequestValidatorId") for props in methods(stateless_template).values()] == [{"Ref": validator}] * len(
        ROUTES
    )


def test_invoke_body_model_is_a_draft4_schema_requiring_message_and_refusing_unknown_fields(
    stateless_template: Template,
) -> None:
    model = logical_id(stateless_template, "AWS::ApiGateway::Model", {"Properties": {"Description": "Body of POST /invoke"}})

    stateless_template.has_resource_properties(
        "AWS::ApiGateway::Model",
        {
            "ContentType": "application/json",
            "Schema": Match.object_like(
                {
                    "$schema": "http://json-schema.org/draft-04/schema#",
                    "type": "object",
                    "required": ["message"],
                    "additionalProperties": False,
                }
            ),
        },
    )
    stateless_template.has_resource_properties(
        "AWS::ApiGateway::Method", {"HttpMethod": "POST", "RequestModels": {"application/json": {"Ref": model}}}
    )


def test_only_post_invoke_and_post_erase_carry_a_body_model(stateless_template: Template) -> None:
    paths = {
        logical: resource["Properties"]["PathPart"]
        for logical, resource in stateless_template.find_resources("AWS::ApiGateway::Resource").items()
    }
    with_model = [props for props in methods(stateless_template).values() if "RequestModels" in props]

    assert sorted((props["HttpMethod"], paths[props["ResourceId"]["Ref"]]) for props in with_model) == [
        ("POST", "erase"),
        ("POST", "invoke"),
    ]


# -- integrations --------------------------------------------------------------------


def test_every_integration_is_a_lambda_proxy_to_the_live_alias(stateless_template: Template) -> None:
    alias = served_alias(stateless_template)

    for props in methods(stateless_template).values():
        integration = props["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert integration["IntegrationHttpMethod"] == "POST"
        assert {"Ref": alias} in integration["Uri"]["Fn::Join"][1], "the integration must invoke the live alias"


def test_api_gateway_may_invoke_only_the_live_alias(stateless_template: Template) -> None:
    alias = served_alias(stateless_template)
    permissions = stateless_template.find_resources("AWS::Lambda::Permission")

    assert len(permissions) == len(ROUTES)
    for permission in permissions.values():
        assert permission["Properties"]["FunctionName"] == {"Ref": alias}
        assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"


def test_existing_function_is_served_instead_of_a_new_one(
    app_factory: Callable[..., cdk.App], stack_env: cdk.Environment
) -> None:
    stack = cdk.Stack(app_factory(), "Test", env=stack_env)
    mine = AgentFunction(stack, "Mine", options=AgentFunctionOptions(max_steps=2, deployment_options=None))

    agent = StatelessAgent(stack, "Agent", existing_function=mine)

    assert agent.function is mine.function
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Lambda::Function", 1)
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Environment": {"Variables": Match.object_like({"AGENT_MAX_STEPS": "2"})}}
    )


def test_existing_function_together_with_function_options_is_refused(stack: cdk.Stack) -> None:
    mine = AgentFunction(stack, "Mine")

    with pytest.raises(ValueError, match="pass either existing_function or function_options, not both"):
        StatelessAgent(stack, "Agent", existing_function=mine, function_options=AgentFunctionOptions())


# -- stage ---------------------------------------------------------------------------


def test_stage_has_tracing_throttling_metrics_and_error_logging_without_data_trace(stateless_template: Template) -> None:
    stateless_template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "v1",
            "TracingEnabled": True,
            "MethodSettings": [
                {
                    "HttpMethod": "*",
                    "ResourcePath": "/*",
                    "LoggingLevel": "ERROR",
                    "DataTraceEnabled": False,
                    "MetricsEnabled": True,
                    "ThrottlingRateLimit": 50,
                    "ThrottlingBurstLimit": 100,
                }
            ],
        },
    )


def test_stage_throttling_follows_the_options(app_factory: Callable[..., cdk.App], stack_env: cdk.Environment) -> None:
    _, template = stateless_stack(
        app_factory, stack_env, api_options=AgentApiOptions(throttling_rate_limit=5, throttling_burst_limit=10)
    )

    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {"MethodSettings": [Match.object_like({"ThrottlingRateLimit": 5, "ThrottlingBurstLimit": 10})]},
    )


def test_stage_writes_json_access_logs_to_its_own_log_group(stateless_template: Template) -> None:
    stage = next(iter(stateless_template.find_resources("AWS::ApiGateway::Stage").values()))["Properties"]
    access_logs = stage["AccessLogSetting"]
    function_log_group_refs = [
        props["Properties"]["LoggingConfig"]["LogGroup"]
        for props in stateless_template.find_resources("AWS::Lambda::Function").values()
    ]

    destination_refs = [part for part in access_logs["DestinationArn"]["Fn::Join"][1] if isinstance(part, dict)]
    assert len(destination_refs) == 1 and destination_refs[0] not in function_log_group_refs
    assert stateless_template.find_resources("AWS::Logs::LogGroup")[destination_refs[0]["Ref"]]["Properties"] == {
        "RetentionInDays": 30
    }
    log_format = json.loads(access_logs["Format"])
    assert log_format["requestId"] == "$context.requestId"
    assert {"status", "httpMethod", "resourcePath", "requestTime"} <= set(log_format)


def test_api_is_regional(stateless_template: Template) -> None:
    stateless_template.has_resource_properties("AWS::ApiGateway::RestApi", {"EndpointConfiguration": {"Types": ["REGIONAL"]}})


def test_account_cloudwatch_role_can_be_left_to_the_account(
    app_factory: Callable[..., cdk.App], stack_env: cdk.Environment
) -> None:
    _, template = stateless_stack(app_factory, stack_env, api_options=AgentApiOptions(account_cloudwatch_role=False))

    template.resource_count_is("AWS::ApiGateway::Account", 0)
    assert not template.find_resources(
        "AWS::IAM::Role",
        {
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Statement": [Match.object_like({"Principal": {"Service": "apigateway.amazonaws.com"}})]
                }
            }
        },
    )


def test_no_web_acl_is_associated_by_default(stateless_template: Template) -> None:
    stateless_template.resource_count_is("AWS::WAFv2::WebACLAssociation", 0)


def test_web_acl_arn_associates_the_web_acl_with_the_stage(
    app_factory: Callable[..., cdk.App], stack_env: cdk.Environment
) -> None:
    _, template = stateless_stack(app_factory, stack_env, api_options=AgentApiOptions(web_acl_arn=WEB_ACL_ARN))
    stage = logical_id(template, "AWS::ApiGateway::Stage")

    association = next(iter(template.find_resources("AWS::WAFv2::WebACLAssociation").values()))["Properties"]

    assert association["WebACLArn"] == WEB_ACL_ARN
    assert {"Ref": stage} in association["ResourceArn"]["Fn::Join"][1]


# -- gateway responses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("response_type", "status", "code"),
    [(response_type.response_type, status, code) for response_type, status, code, _ in _GATEWAY_RESPONSES],
)
def test_gateway_error_is_json_in_the_handlers_shape_and_never_echoes_the_request(
    stateless_template: Template, response_type: str, status: str | None, code: str
) -> None:
    found = stateless_template.find_resources("AWS::ApiGateway::GatewayResponse", {"Properties": {"ResponseType": response_type}})
    assert len(found) == 1, f"no gateway response for {response_type}"
    props = next(iter(found.values()))["Properties"]

    template = props["ResponseTemplates"]["application/json"]

    assert "$input" not in template
    assert props.get("StatusCode") == status
    body = json.loads(template)
    assert body["error"] == code
    assert body["request_id"] == "$context.requestId"
    assert set(body) == {"error", "message", "request_id"}


def test_a_throttled_caller_is_told_when_to_retry_and_no_other_gateway_answer_claims_to_know(
    stateless_template: Template,
) -> None:
    found = stateless_template.find_resources("AWS::ApiGateway::GatewayResponse")

    retry_after = {
        props["Properties"]["ResponseType"]: props["Properties"]
        .get("ResponseParameters", {})
        .get("gatewayresponse.header.Retry-After")
        for props in found.values()
    }

    assert retry_after.pop("THROTTLED") == "'1'"
    assert set(retry_after.values()) == {None}
