"""The app's ``console`` context key: ``cdk deploy -c patterns=async -c console=true`` gives the task patterns an
operators' Cognito user pool, a Cognito-authenticated API and the operator console, clean under cdk-nag and checkov;
the combinations it cannot serve fail the synth naming the fix; and without it nothing changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest

from agentrail_constructs import (
    PATTERN_STACKS,
    AgentApiOptions,
    ApiAuth,
    ApprovalOptions,
    AsyncAgentStack,
    StatelessAgentStack,
)
from agentrail_constructs.app_config import AppConfig
from agentrail_constructs.stacks.pattern import CONSOLE_PATTERNS
from tests.infra.conftest import PIPELINE_CONTEXT, TEST_ENV, CloudAssembly, SynthesizedStack, synthesize_real_app
from tests.infra.test_cdk_nag import EXPECTED_ACKNOWLEDGEMENTS, acknowledgements, findings, violations
from tests.infra.test_checkov import MIN_REASON_CHARS, SKIPPABLE, run_checkov
from tests.infra.test_operator_console import CONSOLE_ACKNOWLEDGEMENTS, CONSOLE_SKIPS

SCOPE = "agents/invoke"
APPROVER_PATTERN = "iam:arn:aws:iam::111122223333:role/Approver*"
#: The console's acknowledgements as cdk-nag names them in the app's environment-agnostic stacks (the construct's
#: tests name the CDK asset bucket of the test account instead).
ASSET_BUCKET = {
    f"arn:aws:s3:::cdk-hnb659fds-assets-{TEST_ENV.account}-{TEST_ENV.region}/*": (
        "arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*"
    )
}
APP_CONSOLE_ACKNOWLEDGEMENTS = {
    (next((rule.replace(known, agnostic) for known, agnostic in ASSET_BUCKET.items() if known in rule), rule), path)
    for rule, path in CONSOLE_ACKNOWLEDGEMENTS
}


def config_of(app_factory: Callable[..., cdk.App], **context: str) -> AppConfig:
    return AppConfig.from_context(app_factory(context=context), tuple(PATTERN_STACKS))


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == resource_type}


def only(resources: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.items()))


@pytest.fixture(scope="module")
def console_apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CloudAssembly]:
    """app.py with ``-c console=true`` for each task pattern on its own, with cdk-nag (bundling skipped); the async
    one also with ``-c approvers=...`` (IAM principal patterns beside the Cognito group)."""
    return {
        pattern: synthesize_real_app(
            tmp_path_factory.mktemp(f"real-app-console-{pattern}") / "cdk.out",
            patterns=(pattern,),
            bundling=False,
            context={"console": "true", **({"approvers": APPROVER_PATTERN} if pattern == "async" else {})},
        )
        for pattern in CONSOLE_PATTERNS
    }


@pytest.fixture(scope="module")
def console_templates(console_apps: dict[str, CloudAssembly]) -> dict[str, dict[str, Any]]:
    return {pattern: app.template(app.pattern_stack_name(pattern)) for pattern, app in console_apps.items()}


@pytest.fixture(scope="module")
def console_checkov(console_apps: dict[str, CloudAssembly]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """checkov's outcome per task pattern's stack with the console (one checkov run over the three templates)."""
    paths = {pattern: app.template_path(app.pattern_stack_name(pattern)) for pattern, app in console_apps.items()}
    results = run_checkov(list(paths.values()))
    return {pattern: results[path.name] for pattern, path in paths.items()}


def operators_pool(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return only(resources_of_type(template, "AWS::Cognito::UserPool"))


# -- the operators' pool ------------------------------------------------------------------


@pytest.mark.parametrize("pattern", CONSOLE_PATTERNS)
def test_the_operators_pool_admits_only_admin_created_users_with_a_strong_password_and_totp(
    console_templates: dict[str, Any], pattern: str
) -> None:
    _, pool = operators_pool(console_templates[pattern])
    props = pool["Properties"]

    assert props["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert props["Policies"]["PasswordPolicy"] == {
        "MinimumLength": 14,
        "RequireLowercase": True,
        "RequireNumbers": True,
        "RequireSymbols": True,
        "RequireUppercase": True,
        "TemporaryPasswordValidityDays": 3,
    }
    assert props["MfaConfiguration"] == "ON"
    assert props["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert props["AccountRecoverySetting"] == {"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]}
    assert props["UsernameAttributes"] == ["email"]
    assert props["UsernameConfiguration"] == {"CaseSensitive": False}
    assert props["UserPoolTier"] == "PLUS"
    assert props["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
    assert props["DeletionProtection"] == "ACTIVE"
    assert pool["DeletionPolicy"] == pool["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("pattern", CONSOLE_PATTERNS)
def test_the_pool_has_the_approvers_group_and_the_agents_resource_server_with_the_invoke_scope(
    console_templates: dict[str, Any], pattern: str
) -> None:
    template = console_templates[pattern]
    pool_id, _ = operators_pool(template)

    _, group = only(resources_of_type(template, "AWS::Cognito::UserPoolGroup"))
    _, server = only(resources_of_type(template, "AWS::Cognito::UserPoolResourceServer"))

    assert group["Properties"]["GroupName"] == ApprovalOptions().approver_group == "approvers"
    assert group["Properties"]["UserPoolId"] == {"Ref": pool_id}
    assert server["Properties"]["Identifier"] == "agents"
    assert [scope["ScopeName"] for scope in server["Properties"]["Scopes"]] == ["invoke"]
    assert server["Properties"]["UserPoolId"] == {"Ref": pool_id}


def test_the_approvers_context_still_names_iam_principals_beside_the_cognito_group(console_templates: dict[str, Any]) -> None:
    # Given -c console=true -c approvers=<an IAM role pattern> for the async pattern,
    template = console_templates["async"]
    _, group = only(resources_of_type(template, "AWS::Cognito::UserPoolGroup"))
    approval_environments = [
        function["Properties"]["Environment"]["Variables"]
        for function in resources_of_type(template, "AWS::Lambda::Function").values()
        if "AGENT_APPROVAL_GROUPS" in function["Properties"].get("Environment", {}).get("Variables", {})
    ]

    # then every function that decides approvals knows both: the Cognito group and the IAM principals of that group.
    assert approval_environments
    for variables in approval_environments:
        assert variables["AGENT_APPROVAL_APPROVER_GROUP"] == group["Properties"]["GroupName"]
        assert json.loads(variables["AGENT_APPROVAL_GROUPS"]) == {"approvers": [APPROVER_PATTERN]}


# -- the API and the console -----------------------------------------------------------------


@pytest.mark.parametrize("pattern", CONSOLE_PATTERNS)
def test_every_api_method_requires_an_access_token_of_the_pool_with_the_invoke_scope(
    console_templates: dict[str, Any], pattern: str
) -> None:
    template = console_templates[pattern]
    pool_id, _ = operators_pool(template)
    authorizer_id, authorizer = only(resources_of_type(template, "AWS::ApiGateway::Authorizer"))
    methods = resources_of_type(template, "AWS::ApiGateway::Method")

    assert authorizer["Properties"]["Type"] == "COGNITO_USER_POOLS"
    assert authorizer["Properties"]["ProviderARNs"] == [{"Fn::GetAtt": [pool_id, "Arn"]}]
    assert methods
    for lid, method in methods.items():
        props = method["Properties"]
        assert props["AuthorizationType"] == "COGNITO_USER_POOLS", lid
        assert props["AuthorizerId"] == {"Ref": authorizer_id}, lid
        assert props["AuthorizationScopes"] == [SCOPE], lid


@pytest.mark.parametrize("pattern", CONSOLE_PATTERNS)
def test_the_console_has_a_pkce_client_of_the_pool_and_a_distribution(console_templates: dict[str, Any], pattern: str) -> None:
    template = console_templates[pattern]
    pool_id, _ = operators_pool(template)

    _, client = only(resources_of_type(template, "AWS::Cognito::UserPoolClient"))
    distribution_id, _ = only(resources_of_type(template, "AWS::CloudFront::Distribution"))
    _, domain = only(resources_of_type(template, "AWS::Cognito::UserPoolDomain"))

    props = client["Properties"]
    assert props["UserPoolId"] == {"Ref": pool_id}
    assert props["GenerateSecret"] is False
    assert props["AllowedOAuthFlows"] == ["code"]
    assert props["AllowedOAuthScopes"] == ["openid", SCOPE]
    assert props["CallbackURLs"] == [{"Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution_id, "DomainName"]}, "/"]]}]
    # The client names the resource server's scope: it is created after the resource server.
    (server_id,) = resources_of_type(template, "AWS::Cognito::UserPoolResourceServer")
    assert server_id in client["DependsOn"]
    assert domain["Properties"]["UserPoolId"] == {"Ref": pool_id}


@pytest.mark.parametrize("pattern", CONSOLE_PATTERNS)
def test_the_stack_outputs_the_console_url_and_the_operators_pool_id(console_templates: dict[str, Any], pattern: str) -> None:
    template = console_templates[pattern]
    pool_id, _ = operators_pool(template)
    distribution_id, _ = only(resources_of_type(template, "AWS::CloudFront::Distribution"))
    outputs = template["Outputs"]

    assert outputs["ConsoleUrl"]["Value"] == {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution_id, "DomainName"]}, "/"]]
    }
    assert outputs["OperatorUserPoolId"]["Value"] == {"Ref": pool_id}
    assert "ApiUrl" in outputs
    # The console's URL is output once, under the stack's name for it.
    assert [name for name in outputs if "ConsoleUrl" in name] == ["ConsoleUrl"]


# -- cdk-nag and checkov ----------------------------------------------------------------------


@pytest.mark.parametrize("pattern", CONSOLE_PATTERNS)
def test_the_stack_with_the_console_has_no_unacknowledged_cdk_nag_finding(
    console_apps: dict[str, CloudAssembly], pattern: str
) -> None:
    app = console_apps[pattern]
    app.assert_synthesized()

    assert violations(app.report, app.pattern_stack_name(pattern)) == []


@pytest.mark.parametrize("pattern", CONSOLE_PATTERNS)
def test_the_console_acknowledges_its_reviewed_findings_and_the_cognito_methods_need_none(
    console_apps: dict[str, CloudAssembly], pattern: str
) -> None:
    app = console_apps[pattern]
    stack_name = app.pattern_stack_name(pattern)

    acknowledged = acknowledgements(app.report, stack_name)

    # The pattern's own list less COG4 (every method now has a Cognito authorizer), plus the console's; the pool
    # satisfies every other Cognito rule (COG1 password policy, COG2 MFA, COG8 Plus tier) instead of acknowledging it.
    without_cog4 = {(rule, path) for rule, path in EXPECTED_ACKNOWLEDGEMENTS[pattern] if rule != "COG4"}
    assert len(acknowledged) == len(set(acknowledged))
    assert set(acknowledged) == without_cog4 | APP_CONSOLE_ACKNOWLEDGEMENTS
    for finding in findings(app.report, "suppressedViolations", stack_name):
        assert [c["constructPath"] for c in finding["violatingConstructs"]] == [finding["acknowledgedAt"]]
        assert len(finding["reason"].strip()) >= MIN_REASON_CHARS, finding["reason"]


@pytest.mark.parametrize("pattern", CONSOLE_PATTERNS)
def test_the_stack_with_the_console_has_no_failed_checkov_check_and_only_reviewed_skips(
    console_checkov: dict[str, Any], pattern: str
) -> None:
    outcome = console_checkov[pattern]

    assert not outcome["failed"], [(c["check_id"], c["resource"]) for c in outcome["failed"]]
    assert outcome["passed"]
    reviewed = set(SKIPPABLE) | {check for check, _ in CONSOLE_SKIPS}
    assert {c["check_id"] for c in outcome["skipped"]} <= reviewed
    assert all(len((c["check_result"].get("suppress_comment") or "").strip()) >= MIN_REASON_CHARS for c in outcome["skipped"])


# -- what the context passes to the stacks ------------------------------------------------------


def test_console_true_reaches_only_the_task_patterns_stacks(app_factory: Callable[..., cdk.App]) -> None:
    config = config_of(app_factory, patterns="stateless,stateful,async,multiagent,hierarchical,asgi", console="true")

    given = {pattern: config.stack_options(pattern).get("console") for pattern in config.patterns}

    assert given == {
        "stateless": None,
        "stateful": None,
        "async": True,
        "multiagent": True,
        "hierarchical": True,
        "asgi": None,
    }


@pytest.mark.parametrize("context", [{}, {"console": "false"}], ids=["absent", "false"])
def test_without_console_the_stacks_get_no_console_option(app_factory: Callable[..., cdk.App], context: dict[str, str]) -> None:
    config = config_of(app_factory, patterns="async,multiagent,hierarchical", **context)

    assert config.console is False
    assert all("console" not in config.stack_options(pattern) for pattern in config.patterns)


def test_without_console_the_async_stack_keeps_iam_auth_and_has_no_pool_or_console(app_factory: Callable[..., cdk.App]) -> None:
    # Given the app's async stack without -c console,
    app = app_factory(context={"patterns": "async"})
    stack = AppConfig.from_context(app, tuple(PATTERN_STACKS)).add_stacks(app)["async"]
    synth = SynthesizedStack(stack)

    # then every method is signed with SigV4, and there is no user pool, console or console output.
    methods = synth.of_type("AWS::ApiGateway::Method").values()
    assert methods and {m["AuthorizationType"] for m in methods} == {"AWS_IAM"}
    assert not [r for r in synth.resources.values() if r["Type"].startswith(("AWS::Cognito::", "AWS::CloudFront::"))]
    outputs = synth.template.to_json()["Outputs"]
    assert "ConsoleUrl" not in outputs and "OperatorUserPoolId" not in outputs
    assert stack.operators is None and stack.console is None


# -- refused at synth -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"auth": "api_key", "single_tenant": "true"}, r"context console=true authenticates .* drop -c auth=api_key"),
        ({"api": "http"}, r"context console=true needs a REST API .*: drop -c api=http"),
        (
            {"patterns": "stateless,stateful,asgi"},
            r"operator console of the async, multiagent, hierarchical patterns, and -c patterns=stateless,stateful,asgi "
            r"has none of them",
        ),
        (PIPELINE_CONTEXT, r"context console=true cannot be deployed by the pipeline: .* SigV4"),
        ({"console": "yes"}, r"context 'console' must be 'true' or 'false'"),
    ],
    ids=["api-key", "http-api", "no-task-pattern", "pipeline", "not-a-boolean"],
)
def test_a_console_the_app_cannot_serve_fails_the_synth_naming_the_fix(
    app_factory: Callable[..., cdk.App], context: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        config_of(app_factory, **{"patterns": "async", "console": "true", **context})


def test_the_local_mode_pipeline_off_still_serves_the_console(app_factory: Callable[..., cdk.App]) -> None:
    config = config_of(app_factory, patterns="async", console="true", pipeline="off")

    assert config.pipeline is None
    assert config.stack_options("async")["console"] is True


def test_a_stack_without_a_task_api_refuses_the_console(app_factory: Callable[..., cdk.App]) -> None:
    with pytest.raises(ValueError, match="only the async, multiagent, hierarchical patterns have a console"):
        StatelessAgentStack(app_factory(), "Stateless", console=True)


@pytest.mark.parametrize(
    ("api_options", "message"),
    [
        (AgentApiOptions(kind="http"), r"console=True needs a REST API"),
        (AgentApiOptions(auth=ApiAuth.api_key(single_tenant=True)), r"api_options asks for api_key"),
    ],
    ids=["http", "api-key"],
)
def test_a_task_stack_refuses_api_options_the_console_cannot_front(
    app_factory: Callable[..., cdk.App], api_options: AgentApiOptions, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        AsyncAgentStack(app_factory(), "Async", console=True, api_options=api_options)


def test_the_async_stack_gives_the_pool_its_approver_and_escalation_groups(app_factory: Callable[..., cdk.App]) -> None:
    approvals = ApprovalOptions(timeout_policy="escalate", escalation_group="leads")

    stack = AsyncAgentStack(app_factory(), "Async", console=True, approval_options=approvals)

    assert stack.operators is not None
    assert sorted(stack.operators.groups) == ["approvers", "leads"]
