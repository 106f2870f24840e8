"""cdk-nag (AwsSolutions, cdk-nag 3 policy-validation plugin) on every pattern stack of the real app.

Each acknowledged finding is listed below, per pattern, by rule and construct
path: a new acknowledgement changes this file, so it is seen in review.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks

from agentrail_constructs import (
    PATTERN_STACKS,
    AgentApiOptions,
    AgentFunctionOptions,
    ApiAuth,
    StatelessAgent,
    StatelessAgentStack,
)
from agentrail_constructs.nag import acknowledge
from tests.infra.conftest import PIPELINE_PATTERNS, PIPELINE_STACK_NAME, TEST_ENV

APIGW_LOGS_ROLE = "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]"
MIN_REASON_CHARS = 40


def _methods(api: str, *routes: str) -> set[tuple[str, str]]:
    return {("COG4", f"{api}/RestApi/Default/{route}/Resource") for route in routes}


def _executions_of(state_machine: str, *, children: bool = False) -> str:
    """How cdk-nag prints the ARN of a state machine's executions (or a distributed Map's child executions)."""
    name = f'{{"Fn::Select":[6,{{"Fn::Split":[":",{{"Ref":"{state_machine}"}}]}}]}}'
    return f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}{'/*' if children else ''}:*"


_SPECIALISTS = ("SpecialistAccount", "SpecialistBilling", "SpecialistTechnical")
_TASK_ROLES = ("Tasks/Agent", "Tasks/Worker", "Tasks/Notifier")
_WORKFLOW_ROLES = ("LongTasks/Steps", "LongTasks/StateMachine", "Approvals/Steps", "Approvals/StateMachine")


def _policies(rule: str, scope: str, *roles: str) -> set[tuple[str, str]]:
    """``rule`` acknowledged on the default policy of each role under ``scope``."""
    return {(rule, f"{scope}/{role}/Role/DefaultPolicy/Resource") for role in roles}


def _functions(scope: str, *functions: str) -> set[tuple[str, str]]:
    """L1 (not the newest runtime) acknowledged on each AgentFunction under ``scope``: python3.13 by design."""
    return {("L1", f"{scope}/{function}/Function/Resource") for function in functions}


#: CodeDeploy's service role of a LambdaDeploymentGroup (the Limited policy: this group's alias, alarms and hook).
CODEDEPLOY_ROLE = "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited]"
#: How :func:`acknowledgements` writes the invoke grant on a pre-traffic hook (``<…PreTrafficHookFunction<hash>.Arn>:*``).
HOOK_VERSIONS = "IAM5[Resource::<PreTrafficHook.Arn>:*]"


def _canary(scope: str, *functions: str, hooked: bool = True) -> set[tuple[str, str]]:
    """What the canary deployment of each AgentFunction under ``scope`` acknowledges: CodeDeploy's service role and,
    for a function that runs an agent, its pre-traffic hook (an AgentFunction: python3.13, X-Ray) and the group's
    invoke grant on the hook's versions."""
    found: set[tuple[str, str]] = set()
    for function in functions:
        found.add((CODEDEPLOY_ROLE, f"{scope}/{function}/Deployment/DeploymentGroup/ServiceRole/Resource"))
        if hooked:
            found |= _functions(f"{scope}/{function}", "PreTrafficHook")
            found.add(("IAM5[Resource::*]", f"{scope}/{function}/PreTrafficHook/Role/DefaultPolicy/Resource"))
            found.add((HOOK_VERSIONS, f"{scope}/{function}/Deployment/DeploymentGroup/ServiceRole/DefaultPolicy/Resource"))
    return found


def _pinned(scope: str, function: str, workflow: str) -> tuple[str, str]:
    """A workflow's state machine invokes the versions of its step function (each execution pins one)."""
    return (f"IAM5[Resource::<{function}.Arn>:*]", f"{scope}/{workflow}/StateMachine/Role/DefaultPolicy/Resource")


def _task_api(scope: str) -> set[tuple[str, str]]:
    """What an AsyncAgent nested at ``scope`` (its API, results bucket and webhook secret) acknowledges."""
    return {
        ("S1", f"{scope}/Tasks/ResultsBucket/Resource"),
        ("SMG4", f"{scope}/WebhookSigningSecret/Resource"),
        (APIGW_LOGS_ROLE, f"{scope}/Api/RestApi/CloudWatchRole/Resource"),
        ("APIG3", f"{scope}/Api/RestApi/DeploymentStage.v1/Resource"),
        *_methods(
            f"{scope}/Api",
            "tasks/POST",
            "tasks/{task_id}/GET",
            "tasks/{task_id}/DELETE",
            "tasks/{task_id}/feedback/POST",
            "webhooks/secret/GET",
            "erase/POST",
            "health/GET",
            "openapi.json/GET",
            # the operator console's reads
            "tasks/GET",
            "tasks/{task_id}/timeline/GET",
            "costs/GET",
        ),
    }


#: pattern -> {(AwsSolutions rule, construct path inside the stack)} that may be acknowledged.
EXPECTED_ACKNOWLEDGEMENTS: dict[str, set[tuple[str, str]]] = {
    "asgi": {
        *_functions("AsgiAgent", "Agent"),
        *_canary("AsgiAgent", "Agent"),
        ("IAM5[Resource::*]", "AsgiAgent/Agent/Role/DefaultPolicy/Resource"),
        (APIGW_LOGS_ROLE, "AsgiAgent/Api/RestApi/CloudWatchRole/Resource"),
        ("APIG3", "AsgiAgent/Api/RestApi/DeploymentStage.v1/Resource"),
        # the app on / and /{proxy+}, and the validated POST /invoke with ANY beside it and below it
        *_methods("AsgiAgent/Api", "ANY", "{proxy+}/ANY", "invoke/POST", "invoke/ANY", "invoke/{proxy+}/ANY"),
    },
    "stateless": {
        *_functions("StatelessAgent", "Agent"),
        *_canary("StatelessAgent", "Agent"),
        ("IAM5[Resource::*]", "StatelessAgent/Agent/Role/DefaultPolicy/Resource"),
        (APIGW_LOGS_ROLE, "StatelessAgent/Api/RestApi/CloudWatchRole/Resource"),
        ("APIG3", "StatelessAgent/Api/RestApi/DeploymentStage.v1/Resource"),
        *_methods("StatelessAgent/Api", "invoke/POST", "erase/POST", "health/GET", "openapi.json/GET"),
    },
    "stateful": {
        *_functions("StatefulAgent", "Agent", "Sessions/Cleanup"),
        *_canary("StatefulAgent", "Agent"),
        *_canary("StatefulAgent", "Sessions/Cleanup", hooked=False),
        ("SQS3", "StatefulAgent/Sessions/CleanupFailures/Resource"),
        ("IAM5[Resource::*]", "StatefulAgent/Agent/Role/DefaultPolicy/Resource"),
        ("IAM5[Resource::*]", "StatefulAgent/Sessions/Cleanup/Role/DefaultPolicy/Resource"),
        (
            "IAM5[Resource::<StatefulAgentSessionsOffloadBucketEFCBCC5C.Arn>/sessions/*]",
            "StatefulAgent/Agent/Role/DefaultPolicy/Resource",
        ),
        (
            "IAM5[Resource::<StatefulAgentSessionsOffloadBucketEFCBCC5C.Arn>/sessions/*]",
            "StatefulAgent/Sessions/Cleanup/Role/DefaultPolicy/Resource",
        ),
        ("S1", "StatefulAgent/Sessions/OffloadBucket/Resource"),
        (APIGW_LOGS_ROLE, "StatefulAgent/Api/RestApi/CloudWatchRole/Resource"),
        ("APIG3", "StatefulAgent/Api/RestApi/DeploymentStage.v1/Resource"),
        *_methods(
            "StatefulAgent/Api",
            "sessions/POST",
            "sessions/{session_id}/messages/POST",
            "sessions/{session_id}/GET",
            "sessions/{session_id}/state/PUT",
            "sessions/{session_id}/feedback/POST",
            "sessions/{session_id}/DELETE",
            "sessions/GET",
            "sessions/{session_id}/turns/{number}/timeline/GET",
            "erase/POST",
            "health/GET",
            "openapi.json/GET",
        ),
    },
    "async": {
        *_functions(
            "AsyncAgent", "Agent", "Worker", "Notifier", "LongTasks/Steps", "Approvals/Steps", "Approvals/PendingMetrics"
        ),
        *_canary("AsyncAgent", "Agent", "Worker", "LongTasks/Steps", "Approvals/Steps"),
        *_canary("AsyncAgent", "Notifier", "Approvals/PendingMetrics", hooked=False),
        _pinned("AsyncAgent", "AsyncAgentLongTasksStepsFunction754D23B2", "LongTasks"),
        _pinned("AsyncAgent", "AsyncAgentApprovalsStepsFunction9F7BC919", "Approvals"),
        *_policies("IAM5[Resource::*]", "AsyncAgent", "Agent", "Worker", "Notifier", "Approvals/PendingMetrics"),
        *_policies("IAM5[Resource::*]", "AsyncAgent", *_WORKFLOW_ROLES),
        *_policies(
            "IAM5[Resource::<AsyncAgentTasksResultsBucketCA908178.Arn>/*]",
            "AsyncAgent",
            "Agent",
            "Worker",
            "LongTasks/Steps",
            "Approvals/Steps",
        ),
        *(
            (f"IAM5[Resource::{_executions_of(machine)}]", "AsyncAgent/Agent/Role/DefaultPolicy/Resource")
            for machine in ("AsyncAgentLongTasksStateMachineD47E736B", "AsyncAgentApprovalsStateMachine8B068864")
        ),
        *_task_api("AsyncAgent"),
        # The salt of erased principals' audit pseudonyms: rotating it would give one principal two pseudonyms.
        ("SMG4", "AsyncAgent/Approvals/ErasureSalt/Resource"),
        *_methods("AsyncAgent/Api", "approvals/GET", "approvals/{approval_id}/GET", "approvals/{approval_id}/decision/POST"),
    },
    "multiagent": {
        *_functions("Team", "Orchestrator", *_SPECIALISTS, *_TASK_ROLES),
        *_canary("Team", *_SPECIALISTS, "Tasks/Agent", "Tasks/Worker"),
        *_canary("Team", "Orchestrator", "Tasks/Notifier", hooked=False),  # agentless: no hook
        *_policies("IAM5[Resource::*]", "Team", "Orchestrator", *_SPECIALISTS, *_TASK_ROLES),
        *_policies(
            "IAM5[Resource::<TeamTasksResultsBucketB023DED4.Arn>/*]",
            "Team",
            "Orchestrator",
            *_SPECIALISTS,
            "Tasks/Agent",
            "Tasks/Worker",
        ),
        *_task_api("Team/Tasks"),
    },
    "hierarchical": {
        *_functions("Tasks", "Agent", "Worker", "Notifier"),
        *_functions("Supervisor", "Steps"),
        *_canary("Tasks", "Agent", "Worker"),
        *_canary("Tasks", "Notifier", hooked=False),
        *_canary("Supervisor", "Steps"),
        *_policies("IAM5[Resource::*]", "Tasks", "Agent", "Worker", "Notifier"),
        *_policies("IAM5[Resource::*]", "Supervisor", "Steps", "StateMachine"),
        *_policies("IAM5[Resource::<TasksResultsBucketD67FE01B.Arn>/*]", "Tasks", "Agent", "Worker"),
        *_policies("IAM5[Resource::<TasksResultsBucketD67FE01B.Arn>/*]", "Supervisor", "Steps"),
        ("IAM5[Resource::<SupervisorStepsFunction51FC9959.Arn>:*]", "Supervisor/StateMachine/Role/DefaultPolicy/Resource"),
        (f"IAM5[Resource::{_executions_of('SupervisorStateMachine400BCAC2')}]", "Tasks/Agent/Role/DefaultPolicy/Resource"),
        *(
            (f"IAM5[Resource::{executions}]", "Supervisor/StateMachine/DistributedMapPolicy/Resource")
            for executions in (
                _executions_of("SupervisorStateMachine400BCAC2"),
                _executions_of("SupervisorStateMachine400BCAC2", children=True),
            )
        ),
        *_task_api("Tasks"),
    },
}

#: Variants of the real app (conftest's REAL_APP_VARIANTS) -> what they may acknowledge.
VARIANT_ACKNOWLEDGEMENTS: dict[str, set[tuple[str, str]]] = {
    "stateful-enqueue": {
        *EXPECTED_ACKNOWLEDGEMENTS["stateful"],
        *_functions("StatefulAgent", "Worker"),
        *_canary("StatefulAgent", "Worker"),
        ("IAM5[Resource::*]", "StatefulAgent/Worker/Role/DefaultPolicy/Resource"),
        (
            "IAM5[Resource::<StatefulAgentSessionsOffloadBucketEFCBCC5C.Arn>/sessions/*]",
            "StatefulAgent/Worker/Role/DefaultPolicy/Resource",
        ),
    },
}

# Shadow adds the worker (an AgentFunction: python3.13 by design, X-Ray's Resource '*'); its queues, table and
# grants (SendMessage, the shadow alias's invoke, GetItem/PutItem) need nothing acknowledged.
VARIANT_ACKNOWLEDGEMENTS["stateless-shadow"] = {
    *EXPECTED_ACKNOWLEDGEMENTS["stateless"],
    *_functions("StatelessAgent/Agent", "ShadowWorker"),
    ("IAM5[Resource::*]", "StatelessAgent/Agent/ShadowWorker/Role/DefaultPolicy/Resource"),
}

# A Bedrock guardrail (AWS::Bedrock::Guardrail and its version) and bedrock:ApplyGuardrail on exactly its ARN: nothing
# to acknowledge beyond the stateless stack's own list.
VARIANT_ACKNOWLEDGEMENTS["stateless-guardrail"] = set(EXPECTED_ACKNOWLEDGEMENTS["stateless"])

PATTERNS = sorted(PATTERN_STACKS)
# Budgets add a table (encrypted, point-in-time recovery) and UpdateItem/GetItem on it: nothing to acknowledge,
# in the multi-agent stacks either.
VARIANT_ACKNOWLEDGEMENTS.update(
    {f"{pattern}-budgets": set(EXPECTED_ACKNOWLEDGEMENTS[pattern]) for pattern in ("async", "multiagent", "hierarchical")}
)
VARIANTS = sorted(VARIANT_ACKNOWLEDGEMENTS)


def findings(report: dict[str, Any], key: str, stack_name: str) -> list[dict[str, Any]]:
    """``violations`` or ``suppressedViolations`` of every plugin, for the constructs of one stack."""
    return [
        finding
        for plugin in report["pluginReports"]
        for finding in plugin[key]
        if any(c["constructPath"].startswith(f"{stack_name}/") for c in finding["violatingConstructs"])
    ]


def violations(report: dict[str, Any], stack_name: str) -> list[tuple[str, str]]:
    """(rule, construct path) of every unacknowledged finding in one stack."""
    return [
        (finding["ruleName"], construct["constructPath"])
        for finding in findings(report, "violations", stack_name)
        for construct in finding["violatingConstructs"]
    ]


def acknowledgements(report: dict[str, Any], stack_name: str) -> list[tuple[str, str]]:
    """(rule without ``AwsSolutions-``, path inside the stack) of every acknowledged finding in one stack."""
    return [
        (
            re.sub(r"<\w*PreTrafficHookFunction[0-9A-F]{8}\.Arn>", "<PreTrafficHook.Arn>", finding["ruleName"]).removeprefix(
                "AwsSolutions-"
            ),
            finding["acknowledgedAt"].removeprefix(f"{stack_name}/"),
        )
        for finding in findings(report, "suppressedViolations", stack_name)
    ]


def resource_paths(template: dict[str, Any]) -> set[str]:
    return {resource["Metadata"]["aws:cdk:path"] for resource in template["Resources"].values() if "Metadata" in resource}


def test_every_registered_pattern_has_an_expected_acknowledgement_list() -> None:
    assert set(EXPECTED_ACKNOWLEDGEMENTS) == set(PATTERN_STACKS), (
        "list the cdk-nag acknowledgements of each pattern in EXPECTED_ACKNOWLEDGEMENTS"
    )


def test_the_aws_solutions_pack_ran_on_the_real_app(real_app: Any) -> None:
    plugins = {plugin["pluginName"]: plugin["conclusion"] for plugin in real_app.report["pluginReports"]}

    assert plugins == {"AwsSolutions": "success"}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_pattern_stack_has_no_unacknowledged_finding(real_app: Any, pattern: str) -> None:
    stack_name = real_app.pattern_stack_name(pattern)

    found = violations(real_app.report, stack_name)

    assert found == [], "fix each finding, or acknowledge it on its resource with nag.acknowledge and a reason"


@pytest.mark.parametrize("pattern", PATTERNS)
def test_pattern_stack_has_no_unacknowledged_finding_when_the_account_is_known(real_app_in_an_account: Any, pattern: str) -> None:
    # Finding ids embed ARNs: with a known account and Region they hold literals, not <AWS::Region>.
    stack_name = real_app_in_an_account.pattern_stack_name(pattern)

    found = violations(real_app_in_an_account.report, stack_name)

    assert found == []


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_acknowledgement_sits_on_exactly_the_violating_resource_with_a_reason(real_app: Any, pattern: str) -> None:
    stack_name = real_app.pattern_stack_name(pattern)
    resources = resource_paths(real_app.template(stack_name))

    suppressed = findings(real_app.report, "suppressedViolations", stack_name)

    assert suppressed, "the real app always acknowledges some findings; an empty list means the report changed shape"
    for finding in suppressed:
        assert [c["constructPath"] for c in finding["violatingConstructs"]] == [finding["acknowledgedAt"]]
        assert finding["acknowledgedAt"] in resources, "acknowledge on the CloudFormation resource, not a scope"
        assert len(finding["reason"].strip()) >= MIN_REASON_CHARS, finding["reason"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_acknowledged_findings_are_exactly_the_reviewed_list(real_app: Any, pattern: str) -> None:
    stack_name = real_app.pattern_stack_name(pattern)

    acknowledged = acknowledgements(real_app.report, stack_name)

    assert len(acknowledged) == len(set(acknowledged))
    expected = EXPECTED_ACKNOWLEDGEMENTS.get(pattern)
    assert expected is not None, f"review, then list in EXPECTED_ACKNOWLEDGEMENTS[{pattern!r}]: {sorted(acknowledged)}"
    assert set(acknowledged) - expected == set(), "new acknowledgements: review each, then add it to the list"
    assert expected - set(acknowledged) == set(), "these are no longer acknowledged: remove them from the list"


def test_every_app_variant_has_an_expected_acknowledgement_list(real_app_variants: dict[str, Any]) -> None:
    assert set(VARIANT_ACKNOWLEDGEMENTS) == set(real_app_variants)


@pytest.mark.parametrize("variant", VARIANTS)
def test_app_variant_has_no_unacknowledged_finding(real_app_variants: dict[str, Any], variant: str) -> None:
    pattern, assembly = real_app_variants[variant]
    stack_name = assembly.pattern_stack_name(pattern)
    assembly.assert_synthesized()

    found = violations(assembly.report, stack_name)

    assert found == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_app_variant_acknowledges_exactly_the_reviewed_list(real_app_variants: dict[str, Any], variant: str) -> None:
    pattern, assembly = real_app_variants[variant]
    stack_name = assembly.pattern_stack_name(pattern)

    acknowledged = acknowledgements(assembly.report, stack_name)

    assert len(acknowledged) == len(set(acknowledged))
    assert set(acknowledged) == VARIANT_ACKNOWLEDGEMENTS[variant]


# -- the checks fail the synth ---------------------------------------------------------


def _unencrypted_queue(stack: cdk.Stack) -> None:
    sqs.Queue(stack, "Jobs", encryption=sqs.QueueEncryption.UNENCRYPTED)


def _old_runtime_function(stack: cdk.Stack) -> None:
    lambda_.Function(
        stack, "Legacy", runtime=lambda_.Runtime.PYTHON_3_9, handler="index.handler", code=lambda_.Code.from_inline("x = 1")
    )


@pytest.mark.parametrize(
    ("add_offender", "rule", "path"),
    [
        (_unencrypted_queue, "AwsSolutions-SQS4", "Probe/Jobs/Resource"),
        (_unencrypted_queue, "AwsSolutions-SQS2", "Probe/Jobs/Resource"),
        (_old_runtime_function, "AwsSolutions-L1", "Probe/Legacy/Resource"),
    ],
)
def test_unacknowledged_finding_fails_the_synth_and_is_named_in_the_report(
    app_factory: Callable[..., cdk.App], add_offender: Callable[[cdk.Stack], None], rule: str, path: str
) -> None:
    app = app_factory()
    stack = StatelessAgentStack(app, "Probe")
    add_offender(stack)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()

    report = json.loads((Path(app.outdir) / "validation-report.json").read_text())
    named = {
        (f["ruleName"], c["constructPath"]) for f in findings(report, "violations", "Probe") for c in f["violatingConstructs"]
    }
    assert (rule, path) in named
    assert all(p.startswith(("Probe/Jobs/", "Probe/Legacy/")) for _, p in named), "the pattern itself stays clean"


@pytest.mark.parametrize("auth", ["api_key", "cognito"])
def test_other_auth_modes_pass_the_checks(app_factory: Callable[..., cdk.App], auth: str) -> None:
    app = app_factory()
    stack = cdk.Stack(app, "Probe")
    options = (
        ApiAuth.api_key(clients=["acme", "globex"])
        if auth == "api_key"
        else ApiAuth.cognito([cognito.UserPool.from_user_pool_id(stack, "Pool", "us-east-1_Example1")], scopes=["agents/invoke"])
    )
    StatelessAgent(stack, "StatelessAgent", api_options=AgentApiOptions(auth=options))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))

    app.synth()

    report = json.loads((Path(app.outdir) / "validation-report.json").read_text())
    assert [plugin["violations"] for plugin in report["pluginReports"]] == [[]]


def test_a_cross_region_inference_profile_passes_the_checks_with_its_foundation_model_wildcard_acknowledged(
    app_factory: Callable[..., cdk.App],
) -> None:
    # Given a stateless agent on a cross-Region inference profile, with its canary's pre-traffic hook
    app = app_factory()
    StatelessAgent(
        cdk.Stack(app, "Probe"),
        "StatelessAgent",
        function_options=AgentFunctionOptions(model="bedrock:us.amazon.nova-lite-v1:0"),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))

    # when the app is synthesized with cdk-nag
    app.synth()

    # then nothing is left unacknowledged, and the Region wildcard of the profile's foundation model is acknowledged
    # on each role that may call the model (the agent's, and its hook's), with a reason
    report = json.loads((Path(app.outdir) / "validation-report.json").read_text())
    assert violations(report, "Probe") == []
    wildcard = "IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/amazon.nova-lite-v1:0]"
    acknowledged = {path for rule, path in acknowledgements(report, "Probe") if rule == wildcard}
    assert acknowledged == {
        "StatelessAgent/Agent/Role/DefaultPolicy/Resource",
        "StatelessAgent/Agent/PreTrafficHook/Role/DefaultPolicy/Resource",
    }


def test_acknowledge_refuses_a_short_reason(stack: cdk.Stack) -> None:
    queue = sqs.Queue(stack, "Jobs")

    with pytest.raises(ValueError, match="acknowledging SQS3 needs a real reason"):
        acknowledge(queue.node.default_child, "SQS3", "not needed")  # type: ignore[arg-type]


# -- the hardened profile ------------------------------------------------------------------


@pytest.mark.parametrize("pattern", PATTERNS)
def test_hardened_pattern_stack_has_no_unacknowledged_finding(real_app_hardened: Any, pattern: str) -> None:
    stack_name = real_app_hardened.pattern_stack_name(pattern)

    found = violations(real_app_hardened.report, stack_name)

    assert found == []


#: What the hardened profile acknowledges beyond the standard list (rule, path suffix): CDK's KMS grants, the
#: network interfaces Lambda manages with the execution role, and the access-log bucket's own access logs.
HARDENED_ONLY = ("IAM5[Action::kms:GenerateDataKey*]", "IAM5[Action::kms:ReEncrypt*]", "IAM5[Resource::arn:aws:ec2:")


@pytest.mark.parametrize("pattern", PATTERNS)
def test_hardened_acknowledgements_are_the_standard_ones_less_the_access_log_ones_plus_key_and_network(
    real_app_hardened: Any, pattern: str
) -> None:
    # Given the hardened stack's acknowledgements (webhooks off: no notifier, signing secret or its route),
    stack_name = real_app_hardened.pattern_stack_name(pattern)
    acknowledged = set(acknowledgements(real_app_hardened.report, stack_name))
    webhook_parts = ("WebhookSigningSecret", "WebhookFailures", "/Notifier/", "webhooks/secret")
    standard = {(rule, path) for rule, path in EXPECTED_ACKNOWLEDGEMENTS[pattern] if not any(p in path for p in webhook_parts)}
    # then S1 (server access logs) is acknowledged nowhere: every data bucket logs to the access-log bucket,
    assert {path for rule, path in acknowledged if rule == "S1"} == set()
    # and every other acknowledgement is a standard one or one of the hardened kinds (or CDK's own W3010 on the
    # AZ names its VPC writes for a stack whose account and Region are known).
    extra = {(r, p) for r, p in acknowledged - standard if r != "W3010" and not r.startswith("IAM5[Resource::arn:aws:states")}
    assert all(rule.startswith(HARDENED_ONLY) for rule, _ in extra), sorted(extra)
    network = {path for rule, path in extra if rule.endswith(":network-interface/*]")}
    functions = {path for rule, path in standard if rule == "L1"}
    assert {p.replace("/Function/Resource", "/Role/DefaultPolicy/Resource") for p in functions} == network
    # Finding ids hold literal ARNs in the test account, so the standard acknowledgements compare by resource.
    assert {p for r, p in standard if r != "S1"} <= {p for _, p in acknowledged}


# -- every pattern behind an HTTP API (-c api=http) ----------------------------------------------------------


@pytest.mark.parametrize("pattern", list(PATTERN_STACKS))
def test_http_api_pattern_stack_has_no_unacknowledged_finding(real_app_http: Any, pattern: str) -> None:
    stack_name = real_app_http.pattern_stack_name(pattern)

    found = violations(real_app_http.report, stack_name)

    assert "AWS::ApiGatewayV2::Api" in json.dumps(real_app_http.template(stack_name))
    assert found == [], f"unacknowledged cdk-nag findings in {stack_name} (HTTP API): {found}"


@pytest.mark.parametrize("pattern", list(PATTERN_STACKS))
def test_http_api_acknowledgements_are_the_standard_ones_less_the_rest_apis(real_app_http: Any, pattern: str) -> None:
    # An HTTP API has no REST methods (COG4), no account logging role (IAM4) and no WAF to acknowledge (APIG3):
    # its routes are IAM-authenticated and its stage logs access, so nothing of it is acknowledged.
    stack_name = real_app_http.pattern_stack_name(pattern)
    rest_only = {(rule, path) for rule, path in EXPECTED_ACKNOWLEDGEMENTS[pattern] if "/RestApi/" in path}

    acknowledged = set(acknowledgements(real_app_http.report, stack_name))

    assert acknowledged == EXPECTED_ACKNOWLEDGEMENTS[pattern] - rest_only


# -- the delivery pipeline (-c pipeline=owner/name) ------------------------------------------------------------------


def _literal_env_as_placeholders(finding: tuple[str, str]) -> tuple[str, str]:
    """A finding of a stack in the test account, written as the same finding of an environment-agnostic stack."""
    rule, path = finding
    for literal, placeholder in (
        ("arn:aws:", "arn:<AWS::Partition>:"),
        (str(TEST_ENV.region), "<AWS::Region>"),
        (str(TEST_ENV.account), "<AWS::AccountId>"),
    ):
        rule = rule.replace(literal, placeholder)
    return rule, path


def test_the_pipeline_app_has_no_unacknowledged_finding_in_the_pipeline_or_its_stages(real_app_pipeline: Any) -> None:
    real_app_pipeline.assert_synthesized()

    found = violations(real_app_pipeline.report, PIPELINE_STACK_NAME)

    assert found == []


#: The CodeBuild projects of the pipeline fixture: CDK Pipelines grants each its own log group and report groups.
PIPELINE_PROJECTS = (
    "DeliveryPipelineBuildSynthCdkBuildProject793F903C",
    "DeliveryPipelineEvalGateA226A17F",
    "DeliveryPipelineStagingSmokeStagingAgentrailHierarchical39435674",
    "DeliveryPipelineStagingSmokeStagingAgentrailStateless33DC7CEC",
    "DeliveryPipelineTestUnitAndIntegrationTests1F24CD77",
    "DeliveryPipelineUpdatePipelineSelfMutationAD4D4227",
)
_IN_ACCOUNT = f"{TEST_ENV.region}:{TEST_ENV.account}"
#: Every rule the pipeline itself acknowledges (its stages aside), each with its reason on the resource.
PIPELINE_ACKNOWLEDGED = {
    "S1",  # the artifact bucket's access logs
    *(
        f"IAM5[Action::{action}]"
        for action in (
            *("kms:GenerateDataKey*", "kms:ReEncrypt*"),
            *("s3:Abort*", "s3:DeleteObject*", "s3:GetBucket*", "s3:GetObject*", "s3:List*"),
        )
    ),
    "IAM5[Resource::*]",
    "IAM5[Resource::<DeliveryPipelineArtifactsBucketA07FB7E4.Arn>/*]",
    f"IAM5[Resource::arn:*:iam::{TEST_ENV.account}:role/*]",
    f"IAM5[Resource::arn:aws:codebuild:{_IN_ACCOUNT}:report-group/*]",
    f"IAM5[Resource::arn:aws:execute-api:{_IN_ACCOUNT}:*]",
    f"IAM5[Resource::arn:aws:logs:{_IN_ACCOUNT}:log-group:/aws/codebuild/*]",
    *(f"IAM5[Resource::arn:aws:codebuild:{_IN_ACCOUNT}:report-group/<{project}>-*]" for project in PIPELINE_PROJECTS),
    *(f"IAM5[Resource::arn:aws:logs:{_IN_ACCOUNT}:log-group:/aws/codebuild/<{project}>:*]" for project in PIPELINE_PROJECTS),
}


def test_the_pipeline_acknowledges_only_what_cdk_pipelines_grants_by_design_on_each_resource(real_app_pipeline: Any) -> None:
    # Given the acknowledged findings of the pipeline itself (not of the stacks its stages deploy),
    report = real_app_pipeline.report
    stages = (f"{PIPELINE_STACK_NAME}/Delivery/Staging/", f"{PIPELINE_STACK_NAME}/Delivery/Production/")
    suppressed = [
        f for f in findings(report, "suppressedViolations", PIPELINE_STACK_NAME) if not f["acknowledgedAt"].startswith(stages)
    ]
    resources = resource_paths(real_app_pipeline.template(PIPELINE_STACK_NAME))
    assert suppressed
    for finding in suppressed:
        rule = finding["ruleName"].removeprefix("AwsSolutions-")
        # each sits on exactly the violating resource, with a reason,
        assert [c["constructPath"] for c in finding["violatingConstructs"]] == [finding["acknowledgedAt"]]
        assert finding["acknowledgedAt"] in resources
        assert len(finding["reason"].strip()) >= MIN_REASON_CHARS, finding["reason"]
        if rule == "S1":
            assert finding["acknowledgedAt"].endswith("/ArtifactsBucket/Resource")
    # and the rules acknowledged are exactly these (a new one is a review, not a pattern that happens to match).
    assert {f["ruleName"].removeprefix("AwsSolutions-") for f in suppressed} == PIPELINE_ACKNOWLEDGED


@pytest.mark.parametrize("stage", ["Staging", "Production"])
@pytest.mark.parametrize("pattern", PIPELINE_PATTERNS)
def test_each_stage_stack_acknowledges_exactly_what_its_pattern_stack_does(
    real_app_pipeline: Any, stage: str, pattern: str
) -> None:
    stack_path = f"{PIPELINE_STACK_NAME}/Delivery/{stage}/{real_app_pipeline.pattern_stack_name(pattern)}"

    acknowledged = {_literal_env_as_placeholders(f) for f in acknowledgements(real_app_pipeline.report, stack_path)}

    assert acknowledged == EXPECTED_ACKNOWLEDGEMENTS[pattern]
