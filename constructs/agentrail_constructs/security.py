"""SecurityBaseline: the hardened profile of a stack. One customer managed key, private subnets reached only through
VPC endpoints, restricted egress and a bucket for S3 server access logs, picked up by every agentrail construct created
after it in the same stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import jsii
from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct, IValidation

from agentrail_constructs.nag import default_resource, skip_checkov
from agentrail_constructs.storage import log_group

Egress = Literal["endpoints", "nat"]
#: Gateway endpoints: free, reached through the route tables and the services' prefix lists.
GATEWAY_SERVICES = ("s3", "dynamodb")
#: What ``AgentFunction.calls_service`` is told (a health check kind or an endpoint name) -> the endpoint's service name.
ENDPOINT_NAMES = {"stepfunctions": "states", "states": "states"}


@dataclass(frozen=True, kw_only=True)
class SecurityBaselineOptions:
    """Options of a stack's SecurityBaseline (``security="hardened"``)."""

    egress: Egress = "endpoints"
    """``endpoints``: the functions reach AWS through VPC endpoints and nothing else (no NAT gateway, no internet).
    ``nat``: public subnets and NAT gateways too, and HTTPS to anywhere for the functions that need the internet
    (the webhook notifier, OpenAI-compatible models); the others keep the endpoints-only security group.
    Default: ``endpoints``."""
    max_azs: int = 2
    """Availability Zones of the subnets; every interface endpoint is billed per hour in each. Default: 2."""
    nat_gateways: int = 1
    """NAT gateways with ``egress="nat"`` (one per AZ for zonal resilience, each billed per hour). Default: 1."""
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    """Of the key and the access-log bucket. Default: RETAIN (data encrypted under the key outlives the stack)."""
    access_log_retention: Duration = field(default_factory=lambda: Duration.days(90))
    """How long S3 server access logs are kept. Default: 90 days."""
    flow_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    """VPC flow logs (rejected and accepted traffic). Default: one month."""

    def validate(self) -> None:
        if self.egress not in ("endpoints", "nat"):
            raise ValueError(f"egress must be 'endpoints' or 'nat', got {self.egress!r}")
        if not 1 <= self.max_azs <= 6:
            raise ValueError("max_azs must be between 1 and 6")
        if self.egress == "nat" and not 1 <= self.nat_gateways <= self.max_azs:
            raise ValueError("nat_gateways must be between 1 and max_azs with egress='nat'")


class SecurityBaseline(Construct):
    """The hardened profile of one stack: create it first, as a direct child of the stack
    (``SecurityBaseline(stack, "Security")``), and every agentrail construct created after it uses it by default.

    - ``key``: one customer managed KMS key with yearly rotation, for tables, queues, secrets, buckets, log
      groups and the functions' environment (an option given to a construct still wins).
    - ``vpc``: private subnets in ``max_azs`` AZs; with ``egress="endpoints"`` they have no route out of the VPC
      but the S3 and DynamoDB gateway endpoints, and the interface endpoints the stack's functions call.
    - ``function_security_group``: egress on 443 only, to the interface endpoints and the S3 and DynamoDB
      prefix lists; nothing comes in.
    - ``access_log_bucket``: where the stack's buckets deliver S3 server access logs (SSE-S3: a destination of
      server access logs supports no SSE-KMS default encryption), created with the first bucket that asks.
    - VPC flow logs into a log group under the key.

    The stack needs its account and Region (``env=``, or the CLI's credentials): the S3 and DynamoDB prefix
    lists are looked up (``cdk.context.json`` remembers them).

    Attributes
    ----------
    options, key, vpc, function_subnets, function_security_group, internet_security_group (``egress="nat"``),
    endpoint_security_group, interface_endpoints (by service), access_log_bucket, flow_log_group

    Raises
    ------
    ValueError
        When its scope is not a stack, the stack already has one, or the stack's environment is unknown.
    """

    def __init__(self, scope: Construct, construct_id: str, *, options: SecurityBaselineOptions | None = None) -> None:
        if not isinstance(scope, Stack):
            raise ValueError("create SecurityBaseline directly in the stack: SecurityBaseline(stack, 'Security')")
        if SecurityBaseline.of(scope) is not None:
            raise ValueError(f"stack {scope.node.path} already has a SecurityBaseline; one key and one VPC per stack")
        if Token.is_unresolved(scope.account) or Token.is_unresolved(scope.region):
            raise ValueError(
                f"the hardened profile needs the account and Region of stack {scope.node.path} (it looks up the S3 and "
                "DynamoDB prefix lists its functions' egress is limited to): pass env=cdk.Environment(account=..., "
                "region=...), or run cdk with credentials so that CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION are set"
            )
        super().__init__(scope, construct_id)
        self.options = options = options or SecurityBaselineOptions()
        options.validate()
        stack = scope
        self.key = kms.Key(
            self,
            "Key",
            description=f"agentrail data key of stack {stack.stack_name}",
            enable_key_rotation=True,
            removal_policy=options.removal_policy,
        )
        self._access_log_bucket: s3.Bucket | None = None
        self.vpc = self._build_vpc()
        self.function_subnets = ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PRIVATE_ISOLATED if options.egress == "endpoints" else ec2.SubnetType.PRIVATE_WITH_EGRESS
        )
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="Interface endpoints of the agentrail functions: HTTPS in from the functions only",
        )
        self.function_security_group = ec2.SecurityGroup(
            self,
            "FunctionSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="agentrail functions: HTTPS out to the VPC endpoints and the S3 and DynamoDB prefix lists only",
        )
        self.endpoint_security_group.add_ingress_rule(
            self.function_security_group, ec2.Port.tcp(443), "HTTPS from the agentrail functions"
        )
        self.function_security_group.add_egress_rule(
            self.endpoint_security_group, ec2.Port.tcp(443), "HTTPS to the interface endpoints"
        )
        for service in GATEWAY_SERVICES:
            self.vpc.add_gateway_endpoint(
                f"{service.capitalize()}Endpoint",
                service=ec2.GatewayVpcEndpointAwsService(service),
                subnets=[self.function_subnets],
            )
            prefix_list = ec2.PrefixList.from_lookup(
                self, f"{service.capitalize()}PrefixList", prefix_list_name=f"com.amazonaws.{stack.region}.{service}"
            )
            self.function_security_group.add_egress_rule(
                ec2.Peer.prefix_list(prefix_list.prefix_list_id),
                ec2.Port.tcp(443),
                f"HTTPS to {service} through its gateway endpoint",
            )
        self.internet_security_group: ec2.SecurityGroup | None = None
        if options.egress == "nat":
            self.internet_security_group = ec2.SecurityGroup(
                self,
                "InternetSecurityGroup",
                vpc=self.vpc,
                allow_all_outbound=False,
                description="agentrail functions that call the internet (webhooks, OpenAI-compatible models): HTTPS out",
            )
            self.internet_security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS through the NAT gateway")
        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        # Every function has active tracing: the X-Ray daemon in its execution environment sends through the VPC.
        self.add_interface_endpoint("xray")

    @staticmethod
    def of(scope: Construct) -> SecurityBaseline | None:
        """The SecurityBaseline of ``scope``'s stack (a direct child of it), or None."""
        stack = Stack.of(scope)
        for child in stack.node.children:
            if isinstance(child, SecurityBaseline):
                return child
        return None

    @property
    def access_log_bucket(self) -> s3.Bucket | None:
        """The destination of the stack's S3 server access logs, once a bucket has asked for it; else None."""
        return self._access_log_bucket

    def access_logs_destination(self) -> s3.Bucket:
        """The access-log bucket, created on the first call (a stack without buckets has none)."""
        if self._access_log_bucket is None:
            self._access_log_bucket = self._build_access_log_bucket()
        return self._access_log_bucket

    @property
    def egress(self) -> Egress:
        return self.options.egress

    def add_interface_endpoint(self, service: str) -> ec2.InterfaceVpcEndpoint | None:
        """An interface endpoint for ``service`` (``sqs``, ``states``, ``events``, ``secretsmanager``, ...), once per
        stack, reachable from the functions only. S3 and DynamoDB have gateway endpoints already: None."""
        name = ENDPOINT_NAMES.get(service, service)
        if name in GATEWAY_SERVICES:
            return None
        endpoint = self.interface_endpoints.get(name)
        if endpoint is None:
            endpoint = self.vpc.add_interface_endpoint(
                "".join(part.capitalize() for part in name.split("-")) + "Endpoint",
                service=ec2.InterfaceVpcEndpointAwsService(name),
                subnets=self.function_subnets,
                security_groups=[self.endpoint_security_group],
                open=False,
                private_dns_enabled=True,
            )
            self.interface_endpoints[name] = endpoint
        return endpoint

    def security_groups_for(self, *, internet: bool) -> list[ec2.ISecurityGroup]:
        """The security groups of a function; ``internet`` adds HTTPS to anywhere (only with ``egress="nat"``)."""
        if internet and self.internet_security_group is None:
            raise ValueError("only a SecurityBaseline with egress='nat' has a path to the internet")
        groups: list[ec2.ISecurityGroup] = [self.function_security_group]
        if internet and self.internet_security_group is not None:
            groups.append(self.internet_security_group)
        return groups

    def require_internet(self, what: str, fix: str) -> None:
        """Fail at synth, naming ``fix``, when ``what`` needs the internet and this baseline has no path to it.

        Raises
        ------
        ValueError
            With ``egress="endpoints"``.
        """
        if self.egress != "nat":
            raise ValueError(
                f"{what} needs the internet, and the hardened profile of stack {Stack.of(self).node.path} reaches only "
                f"AWS endpoints (egress='endpoints'): {fix}, or give the stack a NAT gateway with "
                "SecurityBaselineOptions(egress='nat') (cdk -c egress=nat; billed per hour and per GB, see README, "
                "Hardened profile)"
            )

    # -- builders -------------------------------------------------------------------------

    def _build_access_log_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=self.options.removal_policy,
            lifecycle_rules=[s3.LifecycleRule(expiration=self.options.access_log_retention)],
        )
        reason = (
            "This bucket is the destination of the stack's S3 server access logs; logging it too would log each "
            "delivery of logs, into itself or into a bucket that logs back (AWS: an infinite loop of logs)."
        )
        resource = default_resource(bucket)
        skip_checkov(resource, "CKV_AWS_18", reason)  # cdk-nag's S1 knows a log destination; checkov's check does not
        skip_checkov(
            resource,
            "CKV_AWS_21",
            "Access logs are written once by S3 and expire after access_log_retention; versions would keep what "
            "the retention removes.",
        )
        return bucket

    def _build_vpc(self) -> ec2.Vpc:
        o = self.options
        subnets = [ec2.SubnetConfiguration(name="Functions", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22)]
        if o.egress == "nat":
            subnets = [
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=26),
                ec2.SubnetConfiguration(name="Functions", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
            ]
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.80.0.0/16"),
            max_azs=o.max_azs,
            nat_gateways=o.nat_gateways if o.egress == "nat" else 0,
            subnet_configuration=subnets,
            # CDK restricts the default security group with a custom resource (a Lambda function of its own,
            # outside the VPC); nothing here uses the default group, and the endpoints and functions have their own.
            restrict_default_security_group=False,
        )
        self.flow_log_group = log_group(self, "FlowLogs", retention=o.flow_log_retention, encryption_key=self.key)
        vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        return vpc


@jsii.implements(IValidation)
class _CreatedBeforeBaseline:
    """Fails the synth when the stack got a SecurityBaseline after ``construct`` was created without it."""

    def __init__(self, construct: Construct) -> None:
        self._construct = construct

    def validate(self) -> list[str]:
        if SecurityBaseline.of(self._construct) is None:
            return []
        return [
            f"{self._construct.node.path} was created before the stack's SecurityBaseline, so it uses neither its key "
            "nor its VPC: create SecurityBaseline(stack, 'Security') before any agentrail construct"
        ]


def baseline_for(construct: Construct) -> SecurityBaseline | None:
    """The SecurityBaseline ``construct`` must use, or None; with None, the synth fails if one is added later."""
    baseline = SecurityBaseline.of(construct)
    if baseline is None:
        construct.node.add_validation(_CreatedBeforeBaseline(construct))
    return baseline


def grant_key_to_service(key: kms.IKey, service: str, *, write: bool = True) -> None:
    """Let an AWS service (``events.amazonaws.com``: an EventBridge target's dead-letter queue) use a customer managed
    ``key`` of this account on its behalf; a no-op for an imported key, whose policy must already allow it."""
    if not isinstance(key, kms.Key):
        return
    stack = Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(service)],
            actions=["kms:Decrypt", *(["kms:GenerateDataKey"] if write else [])],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        )
    )


__all__ = ["SecurityBaseline", "SecurityBaselineOptions", "baseline_for", "grant_key_to_service"]
