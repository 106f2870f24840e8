"""OperatorConsole: the operator console's static page in a private bucket behind CloudFront, operators signed in
through the Cognito hosted UI (authorization code with PKCE), and the agent's REST API served on the same origin."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, Fn, RemovalPolicy, Stack, Token
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from agentrail_constructs.api import AgentApi, ApiAuth
from agentrail_constructs.approvals import APPROVER_GROUP
from agentrail_constructs.nag import acknowledge, default_resource, logical_id, skip_checkov
from agentrail_constructs.pipeline import wildcard_findings
from agentrail_constructs.security import SecurityBaseline, baseline_for
from agentrail_constructs.storage import log_group

#: The page: index.html, console.js and console.css, deployed as they are (no build step).
SITE_DIR = Path(__file__).with_name("console_site")
#: Written by the deployment next to the page, so a copy in the folder (local mode's) never reaches the bucket.
CONFIG_FILE = "config.json"
#: What a Cognito prefix domain may be (the service also refuses ``aws``, ``amazon`` and ``cognito`` in it).
_DOMAIN_PREFIX = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_RESERVED_IN_PREFIX = ("aws", "amazon", "cognito")
#: The shortest token lifetime Cognito accepts, and the longest the console allows.
_MIN_TOKEN_VALIDITY = Duration.minutes(5)
_MAX_TOKEN_VALIDITY = Duration.hours(1)
#: The resource server and scope of the operators' pool: what the console's API accepts (``agents/invoke``).
OPERATOR_RESOURCE_SERVER = "agents"
OPERATOR_SCOPE = "invoke"


@dataclass(frozen=True, kw_only=True)
class OperatorConsoleOptions:
    """Options of the operator console."""

    title: str = "agentrail console"
    """Shown in the page's header and title. Default: ``agentrail console``."""
    domain_prefix: str | None = None
    """The Cognito hosted UI's prefix domain (``https://<prefix>.auth.<region>.amazoncognito.com``), unique in the
    Region across every AWS account. Default: ``agentrail-<the stack's id>`` (a UUID, so it never collides)."""
    domain_names: Sequence[str] = ()
    """Custom domain names of the console (the first is the one operators are sent back to after sign-in); needs
    ``certificate``. Default: none (the distribution's ``*.cloudfront.net`` name)."""
    certificate: acm.ICertificate | None = None
    """An ACM certificate in us-east-1 covering ``domain_names``; viewers then need TLS 1.2 or later
    (``TLSv1.2_2021``). Default: none (CloudFront's certificate, whose security policy it pins to TLSv1)."""
    price_class: cloudfront.PriceClass = cloudfront.PriceClass.PRICE_CLASS_100
    """Edge locations that serve the console. Default: ``PRICE_CLASS_100`` (North America and Europe, the cheapest)."""
    web_acl_id: str | None = None
    """The ARN of a WAFv2 web ACL of scope CLOUDFRONT (in us-east-1) to associate with the distribution.
    Default: none."""
    token_validity: Duration = field(default_factory=lambda: Duration.hours(1))
    """Lifetime of the access and ID tokens, between 5 minutes and 1 hour; the refresh token lives 60 minutes
    (Cognito's minimum), and the page never uses it. Default: 1 hour."""
    identity_providers: Sequence[cognito.UserPoolClientIdentityProvider] = (cognito.UserPoolClientIdentityProvider.COGNITO,)
    """Where the hosted UI lets operators sign in: the pool's own users, or federated providers already added to the
    pool. Default: the pool's users (``COGNITO``)."""
    log_retention: Duration = field(default_factory=lambda: Duration.days(90))
    """How long CloudFront's access logs (and, without a SecurityBaseline, the bucket's server access logs) are
    kept. Default: 90 days."""
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    """Of the site and log buckets. Default: RETAIN, as every agentrail bucket."""

    def validate(self) -> None:
        """Refuse options the console cannot deploy, naming the fix.

        Raises
        ------
        ValueError
            With a bad domain prefix, ``domain_names`` without ``certificate`` (or the reverse), or a token validity
            outside 5 minutes to 1 hour.
        """
        prefix = self.domain_prefix
        if prefix is not None and not Token.is_unresolved(prefix) and not _is_domain_prefix(prefix):
            raise ValueError(
                f"domain_prefix {prefix!r} is not a Cognito prefix domain: 1 to 63 lowercase letters, digits and "
                f"hyphens, without {', '.join(_RESERVED_IN_PREFIX)}"
            )
        if isinstance(self.domain_names, str):
            raise ValueError("domain_names must be a list, e.g. ['console.example.com']")
        if bool(self.domain_names) != (self.certificate is not None):
            raise ValueError(
                "pass domain_names and certificate together: CloudFront serves a custom domain only with an ACM "
                "certificate (in us-east-1) that covers it"
            )
        seconds = self.token_validity.to_seconds()
        if not _MIN_TOKEN_VALIDITY.to_seconds() <= seconds <= _MAX_TOKEN_VALIDITY.to_seconds():
            raise ValueError(f"token_validity must be between 5 minutes and 1 hour, got {seconds:g} seconds")
        if not self.identity_providers:
            raise ValueError("identity_providers needs at least one provider, e.g. (UserPoolClientIdentityProvider.COGNITO,)")


def _is_domain_prefix(prefix: str) -> bool:
    return bool(_DOMAIN_PREFIX.match(prefix)) and not any(word in prefix for word in _RESERVED_IN_PREFIX)


def _check_api(api: AgentApi, user_pool: cognito.IUserPool) -> None:
    """Refuse an API the console cannot call with a Cognito access token of ``user_pool``."""
    auth = api.options.auth
    if auth.kind != "cognito":
        raise ValueError(
            f"OperatorConsole signs operators in with Cognito, but the API authenticates with {auth.kind}: create the "
            "AgentApi with AgentApiOptions(auth=ApiAuth.cognito([user_pool], scopes=['<resource-server>/<scope>']))."
        )
    if api.options.kind != "rest" or api.rest_api is None:
        raise ValueError(
            "OperatorConsole needs a REST API (AgentApiOptions(kind='rest')), whose authorizer accepts every app "
            "client granted its scopes, while an HTTP API's accepts only the app clients it was created with."
        )
    stack = Stack.of(api)
    pool_id = stack.resolve(user_pool.user_pool_id)
    if not any(pool is user_pool or stack.resolve(pool.user_pool_id) == pool_id for pool in auth.user_pools):
        raise ValueError(
            "the API does not accept tokens of this user pool: pass OperatorConsole one of the user pools given to "
            "ApiAuth.cognito(...)."
        )


#: The console's views, and the resource whose GET each reads (an API without it shows no such view).
CONSOLE_FEATURES = (("approvals", "approvals"), ("runs", "tasks"), ("costs", "costs"), ("sessions", "sessions"))


def console_features(api: AgentApi) -> list[str]:
    """The views of the console the API's routes serve so far (build the console after the agent's routes)."""
    root = api.rest_api.root
    return [
        feature
        for feature, path in CONSOLE_FEATURES
        if (resource := root.get_resource(path)) is not None and resource.node.try_find_child("GET") is not None
    ]


def _stage_name(api: AgentApi) -> str:
    """The name of the API's stage: the path the console reaches the API under, ``v1`` by default."""
    stage = api.stage.node.default_child
    if isinstance(stage, apigw.CfnStage) and isinstance(stage.stage_name, str):
        return stage.stage_name
    return api.stage.stage_name


class OperatorConsole(Construct):
    """The operator console (approvals, runs, costs) of an agent's REST API, deployed as a static site.

    - ``bucket``: private (public access blocked, SSL only, SSE-S3, versioned), read only by the distribution
      through an origin access control; its server access logs go to the stack's SecurityBaseline access-log
      bucket when there is one, else to ``log_bucket``.
    - ``distribution``: HTTPS only (HTTP redirects), ``index.html`` at the root, security headers on every answer
      (HSTS, a strict Content-Security-Policy, ``nosniff``, ``DENY`` framing, no referrer), access logs into
      ``log_bucket``. The API's stage path (``/v1/*``) is served by the API itself through the distribution,
      uncached, so the page calls it on its own origin: the API needs no CORS.
    - ``client``: a public app client (no secret) of ``user_pool`` for the hosted UI's authorization code grant
      only, with ``openid`` and the API's scopes, calling back to the console's URL; tokens live one hour or less.
    - ``user_pool_domain``: the hosted UI's domain (a Cognito prefix domain, or ``existing_user_pool_domain``).
    - ``deployment``: the page from ``console_site/`` plus ``config.json`` (the API base, the hosted UI, the client
      id and scopes), then an invalidation of the distribution.

    Parameters
    ----------
    user_pool:
        The pool operators sign in to; one of the pools the API's ``ApiAuth.cognito(...)`` accepts. Its resource
        server (the API's scopes) must be created before the console: the client's scopes depend on it.
    api:
        The agent's REST API, authenticated with ``ApiAuth.cognito(...)``. Its authorizer accepts any client of the
        pool granted one of its scopes, so nothing is registered on it.
    options:
        Default: ``OperatorConsoleOptions()``.
    existing_user_pool_domain:
        A domain the pool already has (a pool has one prefix domain at most): the hosted UI is served from it.

    Attributes
    ----------
    options, user_pool, api, bucket, log_bucket, response_headers_policy, distribution, user_pool_domain,
    hosted_ui_url, client, scopes, url (``https://<console domain>/``), api_base (the page's API base),
    deployment, config (``config.json`` as deployed, with tokens)

    Raises
    ------
    ValueError
        When the API does not authenticate with Cognito, is an HTTP API, or does not accept the pool's tokens;
        with both ``existing_user_pool_domain`` and ``options.domain_prefix``; or with invalid options.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        user_pool: cognito.IUserPool,
        api: AgentApi,
        options: OperatorConsoleOptions | None = None,
        existing_user_pool_domain: cognito.UserPoolDomain | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.options = options = options or OperatorConsoleOptions()
        options.validate()
        _check_api(api, user_pool)
        if existing_user_pool_domain is not None and options.domain_prefix is not None:
            raise ValueError(
                "pass either existing_user_pool_domain or OperatorConsoleOptions(domain_prefix=...), not both: the "
                "hosted UI is served from one domain"
            )
        self.user_pool = user_pool
        self.api = api
        baseline = baseline_for(self)
        self.log_bucket = self._build_log_bucket()
        self.bucket = self._build_site_bucket(baseline)
        self.user_pool_domain = existing_user_pool_domain or self._build_user_pool_domain()
        self.hosted_ui_url = self.user_pool_domain.base_url()
        self.response_headers_policy = self._build_response_headers_policy()
        self.api_base = _stage_name(api)
        self.distribution = self._build_distribution()
        host = options.domain_names[0] if options.domain_names else self.distribution.distribution_domain_name
        self.url = f"https://{host}/"
        self.scopes = ["openid", *api.options.auth.scopes]
        self.client = self._build_client()
        self.config: dict[str, Any] = {
            "mode": "cognito",
            "apiBase": self.api_base,
            "title": options.title,
            "features": console_features(api),
            "cognito": {
                "domain": self.hosted_ui_url,
                "clientId": self.client.user_pool_client_id,
                "scopes": self.scopes,
                "redirectUri": self.url,
            },
        }
        self.deployment = self._build_deployment(baseline)
        CfnOutput(self, "ConsoleUrl", value=self.url, description="The operator console (sign in with the user pool)")

    # -- builders -------------------------------------------------------------------------

    def _build_log_bucket(self) -> s3.Bucket:
        """CloudFront's access logs: standard logging writes them with an ACL, so this bucket keeps ACLs on
        (BUCKET_OWNER_PREFERRED) and cannot be the SecurityBaseline's (ACLs disabled)."""
        bucket = s3.Bucket(
            self,
            "LogBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=self.options.removal_policy,
            lifecycle_rules=[s3.LifecycleRule(expiration=self.options.log_retention)],
        )
        resource = default_resource(bucket)
        reason = (
            "This bucket is the destination of the console's access logs (CloudFront's, and the site bucket's "
            "without a SecurityBaseline); logging it too would log each delivery of logs."
        )
        acknowledge(resource, "S1", reason)
        skip_checkov(resource, "CKV_AWS_18", reason)
        skip_checkov(
            resource,
            "CKV_AWS_21",
            "Access logs are written once by AWS and expire after log_retention; versions would keep what the retention removes.",
        )
        return bucket

    def _build_site_bucket(self, baseline: SecurityBaseline | None) -> s3.Bucket:
        access_logs = baseline.access_logs_destination() if baseline is not None else self.log_bucket
        return s3.Bucket(
            self,
            "SiteBucket",
            # SSE-S3: CloudFront's origin access control reads it with no key policy to keep in step.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=self.options.removal_policy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"{self.node.id}Site/",
        )

    def _build_user_pool_domain(self) -> cognito.UserPoolDomain:
        # The stack's id ends in a UUID: unique in every Region of every account, as a prefix domain must be.
        prefix = self.options.domain_prefix or Fn.join("-", ["agentrail", Fn.select(2, Fn.split("/", Aws.STACK_ID))])
        return cognito.UserPoolDomain(
            self, "Domain", user_pool=self.user_pool, cognito_domain=cognito.CognitoDomainOptions(domain_prefix=prefix)
        )

    def _content_security_policy(self) -> str:
        hosted_ui = self.hosted_ui_url
        return "; ".join(
            [
                "default-src 'self'",
                # The API is on this origin; the token endpoint is the hosted UI's.
                f"connect-src 'self' {hosted_ui}",
                "script-src 'self'",
                "style-src 'self'",
                "img-src 'self' data:",
                "object-src 'none'",
                "base-uri 'none'",
                "frame-ancestors 'none'",
                f"form-action 'self' {hosted_ui}",
            ]
        )

    def _build_response_headers_policy(self) -> cloudfront.ResponseHeadersPolicy:
        return cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="agentrail operator console: security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=self._content_security_policy(), override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(730), include_subdomains=True, override=True
                ),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                custom_headers=[
                    cloudfront.ResponseCustomHeader(
                        header="Permissions-Policy",
                        value="camera=(), microphone=(), geolocation=(), payment=(), usb=()",
                        override=True,
                    ),
                    cloudfront.ResponseCustomHeader(header="Cross-Origin-Opener-Policy", value="same-origin", override=True),
                ]
            ),
        )

    def _build_distribution(self) -> cloudfront.Distribution:
        options = self.options
        rest_api = self.api.rest_api
        # https://<id>.execute-api.<region>.<suffix>/<stage>/: the host, with the stage left in the request path.
        api_origin = origins.HttpOrigin(
            Fn.select(2, Fn.split("/", rest_api.url)),
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
        )
        distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"agentrail operator console {self.node.path}"[:128],
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(
                    self.bucket, origin_access_levels=[cloudfront.AccessLevel.READ]
                ),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                compress=True,
                response_headers_policy=self.response_headers_policy,
            ),
            additional_behaviors={
                # Authorization reaches the API only uncached: AllViewerExceptHostHeader forwards it then.
                f"/{self.api_base}/*": cloudfront.BehaviorOptions(
                    origin=api_origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                    response_headers_policy=self.response_headers_policy,
                )
            },
            domain_names=list(options.domain_names) or None,
            certificate=options.certificate,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if options.certificate else None,
            price_class=options.price_class,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_logging=True,
            log_bucket=self.log_bucket,
            log_file_prefix="cloudfront/",
            web_acl_id=options.web_acl_id,
        )
        resource = default_resource(distribution)
        if options.certificate is None:
            reason = (
                "The distribution serves its *.cloudfront.net name with CloudFront's default certificate, whose "
                "security policy CloudFront pins to TLSv1; pass domain_names and certificate to require TLS 1.2 "
                "(TLSv1.2_2021). The origins are reached over TLS 1.2 only."
            )
            acknowledge(resource, "CFR4", reason)
            skip_checkov(resource, "CKV_AWS_174", reason)
        if options.web_acl_id is None:
            reason = (
                "No WAF by default: a web ACL costs money while idle and its rules are owner-specific; pass web_acl_id "
                "to associate one. The page is static, and every API call still needs a Cognito access token."
            )
            acknowledge(resource, "CFR2", reason)
            skip_checkov(resource, "CKV_AWS_68", reason)
        acknowledge(
            resource,
            "CFR1",
            "Operators may work from anywhere: the console has no country to exclude, and every API call needs a "
            "Cognito access token.",
        )
        return distribution

    def _build_client(self) -> cognito.UserPoolClient:
        options = self.options
        client = cognito.UserPoolClient(
            self,
            "Client",
            user_pool=self.user_pool,
            generate_secret=False,
            # The hosted UI signs operators in; the SDK's sign-in flows (SRP, passwords) stay off for this client.
            auth_flows=cognito.AuthFlow(user_srp=False),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False, client_credentials=False),
                scopes=[cognito.OAuthScope.OPENID, *(cognito.OAuthScope.custom(scope) for scope in self.api.options.auth.scopes)],
                callback_urls=[self.url],
                logout_urls=[self.url],
            ),
            supported_identity_providers=list(options.identity_providers),
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=options.token_validity,
            id_token_validity=options.token_validity,
            refresh_token_validity=Duration.minutes(60),
        )
        # A client naming a resource server's scopes fails to create before that resource server exists.
        stack = Stack.of(self)
        pool_id = stack.resolve(self.user_pool.user_pool_id)
        for construct in stack.node.find_all():
            if isinstance(construct, cognito.CfnUserPoolResourceServer) and stack.resolve(construct.user_pool_id) == pool_id:
                client.node.add_dependency(construct)
        return client

    def _build_deployment(self, baseline: SecurityBaseline | None) -> s3deploy.BucketDeployment:
        sources = [s3deploy.Source.json_data(CONFIG_FILE, self.config)]
        if SITE_DIR.is_dir() and any(path.is_file() for path in SITE_DIR.iterdir()):
            sources.insert(0, s3deploy.Source.asset(str(SITE_DIR), exclude=[CONFIG_FILE, ".*"]))
        deployment = s3deploy.BucketDeployment(
            self,
            "Deployment",
            sources=sources,
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/*"],
            # The AWS CLI it runs needs more than Lambda's 128 MB to copy without stalling.
            memory_limit=512,
            # Browsers revalidate on every load (so a deployment shows at once); the edge keeps a day, and the
            # deployment's invalidation empties it.
            cache_control=[
                s3deploy.CacheControl.set_public(),
                s3deploy.CacheControl.max_age(Duration.seconds(0)),
                s3deploy.CacheControl.must_revalidate(),
                s3deploy.CacheControl.s_max_age(Duration.days(1)),
            ],
            log_group=log_group(
                self,
                "DeploymentLogs",
                retention=logs.RetentionDays.ONE_MONTH,
                encryption_key=baseline.key if baseline is not None else None,
            ),
        )
        self._acknowledge_deployment_handler(deployment)
        return deployment

    def _acknowledge_deployment_handler(self, deployment: s3deploy.BucketDeployment) -> None:
        """BucketDeployment's handler, a function CDK shares across the stack, on the resources cdk-nag and checkov
        name; each reason says why it holds for that function only."""
        role = deployment.handler_role
        stack = Stack.of(self)
        function = next(
            child
            for child in stack.node.children
            if isinstance(child, lambda_.Function) and child.role is not None and child.role.node.path == role.node.path
        )
        acknowledge(
            default_resource(role),
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's BucketDeployment handler writes its own logs with the AWS managed basic execution policy; it is a "
            "deployment-time function that no request reaches.",
        )
        policy = default_resource(role.node.find_child("DefaultPolicy"))
        document = stack.resolve(policy.policy_document)  # type: ignore[attr-defined]
        wildcards = self._deployment_wildcards()
        for finding in wildcard_findings(document):
            reason = next((why for pattern, why in wildcards if pattern.fullmatch(finding)), None)
            if reason is not None:  # any other wildcard stays a finding and fails the synth
                acknowledge(policy, f"IAM5[{finding}]", reason)
        skip_checkov(
            policy,
            "CKV_AWS_111",
            "CDK's BucketDeployment grants cloudfront:CreateInvalidation on every distribution (it names none); an "
            "invalidation only empties caches. Every S3 write is on the console's own site bucket.",
        )
        acknowledge(
            default_resource(function),
            "L1",
            "CDK's BucketDeployment handler: CDK pins its runtime to the one its bundled AWS CLI layer is built for.",
        )
        checks = {
            "CKV_AWS_115": "CDK's BucketDeployment handler runs once per deployment, started by CloudFormation: "
            "no request can exhaust the account's concurrency through it.",
            "CKV_AWS_116": "CDK's BucketDeployment handler is invoked synchronously by CloudFormation, which reports a "
            "failure in the stack's events; there is nothing to dead-letter.",
            "CKV_AWS_117": "CDK's BucketDeployment handler calls S3 and CloudFront (invalidation), which has no VPC "
            "endpoint; it holds no data but the console's public page.",
            "CKV_AWS_173": "CDK's BucketDeployment handler's environment holds only the AWS CLI's settings, no secret.",
        }
        for check, reason in checks.items():
            skip_checkov(default_resource(function), check, reason)

    def _deployment_wildcards(self) -> list[tuple[re.Pattern[str], str]]:
        """The wildcards of BucketDeployment's grants, as cdk-nag names them (``Action::s3:List*``), and why each is
        right."""
        objects = (
            "CDK's BucketDeployment grants to read the deployment's assets and sync the console's own site bucket: "
            "the object actions of a read and a sync (get, list, put, delete, abort multipart uploads), nothing more."
        )
        return [
            (re.compile(r"Action::s3:(GetBucket|GetObject|List|DeleteObject|Abort)\*"), objects),
            (
                re.compile(rf"Resource::<{logical_id(self.bucket)}\.Arn>/\*"),
                "The objects of the console's own site bucket, which the deployment syncs (and prunes) as a whole.",
            ),
            (
                # The partition is <AWS::Partition> in cdk-nag's finding when the stack is environment-agnostic.
                re.compile(r"Resource::arn:(<AWS::Partition>|[^:]+):s3:::cdk-[a-z0-9]+-assets-[^/]+/\*"),
                "The objects of the CDK bootstrap bucket that hold this app's assets: asset keys are content hashes, "
                "so only a wildcard names the ones a deployment copies.",
            ),
            (
                re.compile(r"Resource::\*"),
                "CDK's BucketDeployment grants cloudfront:CreateInvalidation and GetInvalidation on every distribution; "
                "they empty caches and read an invalidation's status, and read or change no data or configuration.",
            ),
        ]


class OperatorUserPool(Construct):
    """The operators' Cognito user pool of an operator console: people, created by an administrator, who sign in
    with a password and a TOTP authenticator, and whose access tokens the agent's API accepts.

    - ``user_pool``: no self sign-up (``admin-create-user`` only), the email address as user name (case-insensitive)
      and for account recovery, passwords of 14 characters or more with lowercase, uppercase, digits and symbols
      (temporary ones valid 3 days), MFA required with TOTP only (no SMS), the Plus feature plan with threat
      protection enforced (adaptive authentication, compromised credentials), deletion protection, and ``removal_policy``.
    - ``resource_server``: ``agents``, with the scope ``invoke`` (``agents/invoke``, in ``scopes``).
    - ``groups``: one Cognito group per name (``cognito:groups`` in the access token): the approvals' approver group.

    Parameters
    ----------
    groups:
        The Cognito groups to create; add more with :meth:`add_group`. Default: ``approvers`` (the approver group of
        ``ApprovalOptions()``).
    removal_policy:
        Of the pool. Default: RETAIN (the operators' accounts and MFA devices outlive the stack).

    Attributes
    ----------
    user_pool, resource_server, groups (name -> UserPoolGroup), scopes (``["agents/invoke"]``), api_auth
    (``ApiAuth.cognito([user_pool], scopes=scopes)``: the API's auth)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        groups: Sequence[str] = (APPROVER_GROUP,),
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        if isinstance(groups, str):
            raise ValueError(f"groups must be a list, e.g. [{APPROVER_GROUP!r}]")
        self.user_pool = self._build_user_pool(removal_policy)
        self.resource_server = self.user_pool.add_resource_server(
            "Agents",
            identifier=OPERATOR_RESOURCE_SERVER,
            scopes=[cognito.ResourceServerScope(scope_name=OPERATOR_SCOPE, scope_description="Call the agents' API")],
        )
        self.scopes = [f"{OPERATOR_RESOURCE_SERVER}/{OPERATOR_SCOPE}"]
        self.api_auth = ApiAuth.cognito([self.user_pool], scopes=self.scopes)
        self.groups: dict[str, cognito.UserPoolGroup] = {}
        for name in groups:
            self.add_group(name)

    def add_group(self, name: str) -> cognito.UserPoolGroup:
        """The Cognito group ``name``, created unless the pool has it already."""
        if name not in self.groups:
            words = re.split(r"[^A-Za-z0-9]+", name)
            self.groups[name] = cognito.UserPoolGroup(
                self,
                "Group" + "".join(word[:1].upper() + word[1:] for word in words),
                user_pool=self.user_pool,
                group_name=name,
                description=f"agentrail operators in {name}"[:2048],
            )
        return self.groups[name]

    def _build_user_pool(self, removal_policy: RemovalPolicy) -> cognito.UserPool:
        return cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            sign_in_case_sensitive=False,
            standard_attributes=cognito.StandardAttributes(email=cognito.StandardAttribute(required=True, mutable=True)),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            # Plus: threat protection (cdk-nag's COG8), billed per monthly active operator, nothing while idle.
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            deletion_protection=True,
            removal_policy=removal_policy,
        )


__all__ = [
    "CONSOLE_FEATURES",
    "OPERATOR_RESOURCE_SERVER",
    "OPERATOR_SCOPE",
    "OperatorConsole",
    "OperatorConsoleOptions",
    "OperatorUserPool",
    "console_features",
]
