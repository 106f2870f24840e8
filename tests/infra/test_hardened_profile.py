"""The hardened profile (``security="hardened"``, ``cdk -c security=hardened``): one customer managed key per stack
used by every store, functions in private subnets behind VPC endpoints, egress on 443 to those endpoints only, S3
access logs, and a synth that fails when something needs the internet the profile does not reach."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_secretsmanager as secretsmanager

from agentrail_constructs import (
    PATTERN_STACKS,
    AgentFunctionOptions,
    AsyncAgent,
    AsyncAgentStack,
    AsyncOptions,
    SecurityBaseline,
    SecurityBaselineOptions,
    StatelessAgent,
    StatelessAgentStack,
)
from agentrail_constructs.app_config import AppConfig
from tests.infra.conftest import SynthesizedStack as Synthesized

#: conftest's HARDENED_VARIANTS (checked below): every pattern, plus stateful with enqueue and async with a NAT gateway.
VARIANTS = sorted([*PATTERN_STACKS, "stateful-enqueue", "async-nat"])
WITHOUT_NAT = [variant for variant in VARIANTS if variant != "async-nat"]
SynthesizedStack = Any


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def refers_to(value: Any, logical_id: str) -> bool:
    """Whether ``value`` holds a ``Ref`` or ``Fn::GetAtt`` of ``logical_id`` anywhere inside."""
    if isinstance(value, dict):
        if value.get("Ref") == logical_id:
            return True
        getatt = value.get("Fn::GetAtt")
        if isinstance(getatt, list) and getatt and getatt[0] == logical_id:
            return True
        return any(refers_to(item, logical_id) for item in value.values())
    if isinstance(value, list):
        return any(refers_to(item, logical_id) for item in value)
    return False


#: Resource type -> where its customer managed key is named.
KEYED = {
    "AWS::DynamoDB::Table": lambda p: p.get("SSESpecification", {}).get("KMSMasterKeyId"),
    "AWS::SQS::Queue": lambda p: p.get("KmsMasterKeyId"),
    "AWS::SecretsManager::Secret": lambda p: p.get("KmsKeyId"),
    "AWS::Logs::LogGroup": lambda p: p.get("KmsKeyId"),
    "AWS::Lambda::Function": lambda p: p.get("KmsKeyArn"),
    "AWS::S3::Bucket": lambda p: p.get("BucketEncryption", {})
    .get("ServerSideEncryptionConfiguration", [{}])[0]
    .get("ServerSideEncryptionByDefault", {})
    .get("KMSMasterKeyID"),
}
#: IAM actions whose caller is the function's own code (not an event source mapping) -> the endpoint it needs.
CALLS = {
    "sqs:SendMessage": "sqs",
    "states:StartExecution": "states",
    "states:SendTaskSuccess": "states",
    "events:PutEvents": "events",
    "secretsmanager:GetSecretValue": "secretsmanager",
    "scheduler:CreateSchedule": "scheduler",
    "bedrock:InvokeModel": "bedrock-runtime",
    "bedrock:GetPrompt": "bedrock-agent",
}
#: Actions that write data a key protects: the writer needs a data key.
WRITES = ("sqs:SendMessage", "dynamodb:PutItem", "dynamodb:UpdateItem", "s3:PutObject", "secretsmanager:PutSecretValue")


def _key(stack: SynthesizedStack) -> str:
    (key,) = stack.of_type("AWS::KMS::Key")
    return key


def _access_log_bucket(stack: SynthesizedStack) -> str | None:
    baseline = SecurityBaseline.of(stack.stack)
    assert baseline is not None
    return stack.logical_id(baseline.access_log_bucket) if baseline.access_log_bucket is not None else None


def _endpoints(stack: SynthesizedStack) -> dict[str, dict[str, Any]]:
    """Service name (``sqs``, ``s3``) -> the endpoint's properties."""
    found = {}
    for props in stack.of_type("AWS::EC2::VPCEndpoint").values():
        name = props["ServiceName"]
        text = name if isinstance(name, str) else "".join(str(p) for p in name["Fn::Join"][1] if isinstance(p, str))
        found[text.rsplit(".", 1)[-1] if "bedrock-runtime" not in text else "bedrock-runtime"] = props
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_hardened_stack_has_one_customer_managed_key_with_rotation(hardened_stacks: dict, variant: str) -> None:
    stack = hardened_stacks[variant]

    keys = stack.of_type("AWS::KMS::Key")

    assert len(keys) == 1
    assert next(iter(keys.values()))["EnableKeyRotation"] is True


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_table_queue_secret_log_group_bucket_and_function_environment_uses_the_stack_key(
    hardened_stacks: dict, variant: str
) -> None:
    # Given a hardened pattern stack,
    stack = hardened_stacks[variant]
    key = _key(stack)
    log_bucket = _access_log_bucket(stack)
    # when every resource that stores data is read,
    unkeyed = [
        f"{resource_type} {lid}"
        for resource_type, key_of in KEYED.items()
        for lid, props in stack.of_type(resource_type).items()
        if lid != log_bucket and not refers_to(key_of(props), key)
    ]
    # then each names the stack's key; the access-log bucket alone uses SSE-S3, the only default encryption
    # S3 supports on a destination of server access logs.
    assert unkeyed == []
    if log_bucket is None:
        assert stack.of_type("AWS::S3::Bucket") == {}, "no bucket, so no access-log bucket either"
        return
    log_encryption = stack.resources[log_bucket]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert log_encryption[0]["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_function_runs_in_the_private_subnets_with_the_function_security_group(hardened_stacks: dict, variant: str) -> None:
    stack = hardened_stacks[variant]
    baseline = SecurityBaseline.of(stack.stack)
    assert baseline is not None
    private = {stack.logical_id(s.node.default_child) for s in baseline.vpc.isolated_subnets + baseline.vpc.private_subnets}
    group = stack.logical_id(baseline.function_security_group)

    functions = stack.of_type("AWS::Lambda::Function")

    assert functions
    for lid, props in functions.items():
        subnets = props["VpcConfig"]["SubnetIds"]
        assert len(subnets) == baseline.options.max_azs, lid
        assert all(s.get("Ref") in private for s in subnets), lid
        assert any(refers_to(g, group) for g in props["VpcConfig"]["SecurityGroupIds"]), lid


def test_every_hardened_variant_is_synthesized(hardened_stacks: dict) -> None:
    assert sorted(hardened_stacks) == VARIANTS


@pytest.mark.parametrize("variant", WITHOUT_NAT)
def test_without_nat_nothing_routes_out_of_the_vpc_and_functions_may_only_reach_the_endpoints_on_443(
    hardened_stacks: dict, variant: str
) -> None:
    # Given a hardened stack with the default egress (endpoints only),
    stack = hardened_stacks[variant]
    baseline = SecurityBaseline.of(stack.stack)
    assert baseline is not None
    group = stack.logical_id(baseline.function_security_group)
    endpoint_group = stack.logical_id(baseline.endpoint_security_group)
    # then there is no internet or NAT gateway and no route but the gateway endpoints',
    for resource_type in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::Route"):
        assert stack.of_type(resource_type) == {}, resource_type
    # and the function security group lets nothing in and only HTTPS out, to the endpoints and the prefix lists.
    rules = [p for p in stack.of_type("AWS::EC2::SecurityGroupEgress").values() if refers_to(p["GroupId"], group)]
    inline = stack.resources[group]["Properties"].get("SecurityGroupEgress", [])
    assert inline == [] and stack.resources[group]["Properties"].get("SecurityGroupIngress") is None
    assert {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in rules} == {("tcp", 443, 443)}
    destinations = sorted(
        "endpoints" if refers_to(r.get("DestinationSecurityGroupId"), endpoint_group) else r["DestinationPrefixListId"]
        for r in rules
    )
    assert destinations == ["endpoints", "pl-02cd2c6b", "pl-63a5400a"]
    assert not any("CidrIp" in r or "CidrIpv6" in r for r in rules)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_aws_service_a_function_may_call_has_a_vpc_endpoint(hardened_stacks: dict, variant: str) -> None:
    # Given the actions every function role is allowed, but for the dead-letter queues Lambda itself sends to
    # (failed stream batches, failed asynchronous invocations), which are not the function code's calls,
    stack = hardened_stacks[variant]
    lambdas_own = [
        props["DestinationConfig"]["OnFailure"]["Destination"]
        for resource_type in ("AWS::Lambda::EventSourceMapping", "AWS::Lambda::EventInvokeConfig")
        for props in stack.of_type(resource_type).values()
        if "OnFailure" in props.get("DestinationConfig", {})
    ]
    needed = {"s3", "dynamodb", "xray"}
    for statement in stack.policy_statements():
        if statement["Resource"] in lambdas_own or listed(statement["Resource"]) == lambdas_own[:1]:
            continue
        for action in listed(statement["Action"]):
            if statement["Effect"] == "Allow" and action in CALLS:
                needed.add(CALLS[action])
    # when the stack's endpoints are listed,
    endpoints = _endpoints(stack)
    # then each called service has one (S3 and DynamoDB as free gateways), in the functions' subnets, private DNS on.
    assert needed <= set(endpoints), f"missing endpoints: {sorted(needed - set(endpoints))}"
    assert {name for name, p in endpoints.items() if p.get("VpcEndpointType") == "Gateway"} == {"s3", "dynamodb"}
    assert all(p["PrivateDnsEnabled"] for p in endpoints.values() if p.get("VpcEndpointType") == "Interface")


def test_the_interface_endpoints_are_those_each_pattern_calls(hardened_stacks: dict) -> None:
    interfaces = {
        variant: sorted(n for n, p in _endpoints(hardened_stacks[variant]).items() if p.get("VpcEndpointType") == "Interface")
        for variant in PATTERN_STACKS
    }

    # codedeploy and lambda: the canary's pre-traffic hooks report to CodeDeploy and read the version deployed.
    assert interfaces == {
        "stateless": ["codedeploy", "lambda", "xray"],
        "stateful": ["codedeploy", "lambda", "xray"],
        # secretsmanager: the async API reads the salt of erasure's audit pseudonyms.
        "async": ["codedeploy", "events", "lambda", "secretsmanager", "sqs", "states", "xray"],
        "multiagent": ["codedeploy", "events", "lambda", "sqs", "xray"],
        "hierarchical": ["codedeploy", "events", "lambda", "sqs", "states", "xray"],
        "asgi": ["codedeploy", "lambda", "xray"],
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_bucket_but_the_access_log_bucket_delivers_server_access_logs_to_it(hardened_stacks: dict, variant: str) -> None:
    stack = hardened_stacks[variant]
    log_bucket = _access_log_bucket(stack)

    buckets = stack.of_type("AWS::S3::Bucket")

    assert (log_bucket in buckets) if buckets else log_bucket is None
    for lid, props in buckets.items():
        if lid != log_bucket:
            assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": log_bucket}, lid


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_role_granted_a_keyed_resource_can_use_the_key(hardened_stacks: dict, variant: str) -> None:
    # Given the stack's key and every resource stored under it,
    stack = hardened_stacks[variant]
    key = _key(stack)
    keyed = [
        lid
        for resource_type, key_of in KEYED.items()
        if resource_type not in ("AWS::Logs::LogGroup", "AWS::Lambda::Function")
        for lid, props in stack.of_type(resource_type).items()
        if refers_to(key_of(props), key)
    ]
    # when each role policy that acts on one of them is read,
    gaps = []
    for lid, props in stack.of_type("AWS::IAM::Policy").items():
        statements = [s for s in props["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
        on_key = {a for s in statements if refers_to(s["Resource"], key) for a in listed(s["Action"])}
        for statement in statements:
            if not any(refers_to(statement["Resource"], resource) for resource in keyed):
                continue
            actions = listed(statement["Action"])
            # then it may decrypt with the key, and generate data keys where it writes.
            if "kms:Decrypt" not in on_key:
                gaps.append(f"{lid}: {actions} without kms:Decrypt")
            if any(a in WRITES for a in actions) and not on_key & {"kms:GenerateDataKey", "kms:GenerateDataKey*"}:
                gaps.append(f"{lid}: {actions} without kms:GenerateDataKey")
    assert gaps == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_function_role_may_decrypt_its_environment(hardened_stacks: dict, variant: str) -> None:
    stack = hardened_stacks[variant]
    key = _key(stack)
    roles = {
        token: lid for lid, props in stack.of_type("AWS::Lambda::Function").items() for token in [props["Role"]["Fn::GetAtt"][0]]
    }

    decrypting = {
        role["Ref"]
        for props in stack.of_type("AWS::IAM::Policy").values()
        for statement in props["PolicyDocument"]["Statement"]
        if refers_to(statement["Resource"], key) and "kms:Decrypt" in listed(statement["Action"])
        for role in props["Roles"]
    }

    assert set(roles) <= decrypting, [roles[r] for r in set(roles) - decrypting]


def test_the_standard_profile_has_no_vpc_no_key_and_no_function_in_a_vpc(pattern_stacks: dict) -> None:
    for name, stack in pattern_stacks.items():
        assert stack.of_type("AWS::EC2::VPC") == {}, name
        assert stack.of_type("AWS::KMS::Key") == {}, name
        assert all("VpcConfig" not in p and "KmsKeyArn" not in p for p in stack.of_type("AWS::Lambda::Function").values())


# -- egress: what needs the internet says so at synth --------------------------------------


def _hardened_stack(app_factory: Callable[..., cdk.App], lookups: dict, **baseline: Any) -> cdk.Stack:
    stack = cdk.Stack(app_factory(context=lookups), "Hardened", env=cdk.Environment(account="123456789012", region="us-east-1"))
    SecurityBaseline(stack, "Security", options=SecurityBaselineOptions(**baseline) if baseline else None)
    return stack


def test_webhooks_in_a_hardened_stack_without_egress_fail_the_synth_naming_both_fixes(
    app_factory: Callable[..., cdk.App], hardened_lookups: dict
) -> None:
    stack = _hardened_stack(app_factory, hardened_lookups)

    with pytest.raises(ValueError, match=r"webhook notifier.*AsyncOptions\(webhooks=False\).*egress='nat'"):
        AsyncAgent(stack, "Tasks")


def test_an_openai_compatible_model_in_a_hardened_stack_without_egress_fails_the_synth(
    app_factory: Callable[..., cdk.App], hardened_lookups: dict
) -> None:
    stack = _hardened_stack(app_factory, hardened_lookups)
    secret = secretsmanager.Secret.from_secret_name_v2(stack, "Key", "openai")

    with pytest.raises(ValueError, match=r"OpenAI-compatible model.*egress='nat'"):
        StatelessAgent(
            stack, "Agent", function_options=AgentFunctionOptions(model="openai:gpt-4o-mini", openai_api_key_secret=secret)
        )


def test_with_nat_only_the_webhook_notifier_may_reach_the_internet(hardened_stacks: dict) -> None:
    # Given the async pattern hardened with egress="nat" and webhooks on,
    stack = hardened_stacks["async-nat"]
    agent: AsyncAgent = stack.stack.agent  # type: ignore[attr-defined]
    baseline = SecurityBaseline.of(stack.stack)
    assert baseline is not None and baseline.internet_security_group is not None and agent.notifier is not None
    internet = stack.logical_id(baseline.internet_security_group)
    # then one NAT gateway serves the private subnets,
    assert len(stack.of_type("AWS::EC2::NatGateway")) == 1
    # and the internet security group (HTTPS anywhere) is on the notifier alone.
    on_internet = [
        lid
        for lid, props in stack.of_type("AWS::Lambda::Function").items()
        if any(refers_to(g, internet) for g in props["VpcConfig"]["SecurityGroupIds"])
    ]
    assert on_internet == [stack.logical_id(agent.notifier.function)]
    assert stack.resources[internet]["Properties"]["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS through the NAT gateway",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]


# -- where the baseline comes from ----------------------------------------------------------


def test_a_construct_created_before_the_baseline_fails_the_synth_naming_the_fix(
    app_factory: Callable[..., cdk.App], hardened_lookups: dict, stack_env: cdk.Environment
) -> None:
    app = app_factory(context=hardened_lookups)
    stack = cdk.Stack(app, "Late", env=stack_env)
    StatelessAgent(stack, "Agent")
    SecurityBaseline(stack, "Security")

    with pytest.raises(RuntimeError, match=r"Late/Agent/Agent was created before the stack's SecurityBaseline.*create "):
        app.synth()


def test_the_hardened_profile_needs_the_stacks_account_and_region(app_factory: Callable[..., cdk.App]) -> None:
    with pytest.raises(ValueError, match=r"needs the account and Region.*CDK_DEFAULT_ACCOUNT"):
        StatelessAgentStack(app_factory(), "Agnostic", security="hardened")


def test_an_unknown_security_profile_is_refused(app_factory: Callable[..., cdk.App], stack_env: cdk.Environment) -> None:
    with pytest.raises(ValueError, match="security must be one of standard, hardened, got 'paranoid'"):
        AsyncAgentStack(app_factory(), "Odd", env=stack_env, security="paranoid")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("context", "problem"),
    [
        ({"security": "strict"}, "context 'security' must be one of standard, hardened, got 'strict'"),
        ({"security": "hardened", "egress": "proxy"}, "context 'egress' must be one of endpoints, nat, got 'proxy'"),
        ({"egress": "nat"}, "context 'egress' configures the hardened profile's network: add -c security=hardened"),
        ({"webhooks": "maybe"}, "context 'webhooks' must be 'true' or 'false'"),
    ],
)
def test_the_apps_security_context_is_validated(context: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        AppConfig.from_context(cdk.App(context=context), tuple(PATTERN_STACKS))


def test_the_apps_hardened_context_reaches_every_pattern_stack() -> None:
    config = AppConfig.from_context(
        cdk.App(context={"security": "hardened", "egress": "nat", "webhooks": "false"}), tuple(PATTERN_STACKS)
    )

    options = {pattern: config.stack_options(pattern) for pattern in PATTERN_STACKS}

    assert {p: (o["security"], o["security_options"].egress) for p, o in options.items()} == dict.fromkeys(
        PATTERN_STACKS, ("hardened", "nat")
    )
    assert options["async"]["options"] == AsyncOptions(webhooks=False)
    assert options["multiagent"]["options"].webhooks is False
    assert options["hierarchical"]["task_options"] == AsyncOptions(webhooks=False)


def test_tool_secrets_in_a_hardened_stack_give_its_vpc_the_secrets_manager_endpoint(
    app_factory: Callable[..., cdk.App], hardened_lookups: dict
) -> None:
    # given: two hardened stacks, one whose agent's tools read a secret
    plain, with_secrets = (_hardened_stack(app_factory, hardened_lookups) for _ in range(2))
    StatelessAgent(plain, "Agent")
    secret = secretsmanager.Secret.from_secret_name_v2(with_secrets, "Crm", "crm-api-key")
    StatelessAgent(with_secrets, "Agent", function_options=AgentFunctionOptions(tool_secrets={"crm": secret}))
    # then: only the second reaches Secrets Manager, through its VPC endpoint
    assert "secretsmanager" not in _endpoints(Synthesized(plain))
    assert "secretsmanager" in _endpoints(Synthesized(with_secrets))
