"""The operator console as infrastructure: a private bucket read only through CloudFront's origin access control, the
distribution's HTTPS and security headers, the Cognito app client and hosted UI domain, the deployed config.json,
options refused at synth, and cdk-nag and checkov on a stack that composes a user pool, a Cognito-authed API and
the console."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cognito as cognito
from cdk_nag import AwsSolutionsChecks

from agentrail_constructs import (
    AgentApi,
    AgentApiOptions,
    AgentFunction,
    ApiAuth,
    OperatorConsole,
    OperatorConsoleOptions,
    SecurityBaseline,
)
from agentrail_constructs.operator_console import SITE_DIR
from agentrail_constructs.sources import handler_dir
from tests.infra.conftest import HARDENED_LOOKUPS, TEST_ENV, SynthesizedStack
from tests.infra.test_cdk_nag import acknowledgements, findings, violations
from tests.infra.test_checkov import MIN_REASON_CHARS, run_checkov

SCOPE = "agents/invoke"
CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-000011112222"


@dataclass
class Composed:
    """What :func:`compose` built: the pool, its resource server, the API and the console."""

    pool: cognito.UserPool
    resource_server: cognito.UserPoolResourceServer
    api: AgentApi
    console: OperatorConsole


def user_pool(stack: cdk.Stack) -> tuple[cognito.UserPool, cognito.UserPoolResourceServer]:
    """A pool as an operator's would be (MFA, a strong password policy, threat protection) with the API's scope."""
    pool = cognito.UserPool(
        stack,
        "Pool",
        mfa=cognito.Mfa.REQUIRED,
        mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
        password_policy=cognito.PasswordPolicy(
            min_length=12, require_digits=True, require_lowercase=True, require_uppercase=True, require_symbols=True
        ),
        feature_plan=cognito.FeaturePlan.PLUS,
        standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
    )
    server = pool.add_resource_server(
        "Agents",
        identifier="agents",
        scopes=[cognito.ResourceServerScope(scope_name="invoke", scope_description="Call the agents")],
    )
    return pool, server


def compose(
    stack: cdk.Stack, *, options: OperatorConsoleOptions | None = None, existing_domain_prefix: str | None = None
) -> Composed:
    """A user pool (with a domain of its own named ``existing_domain_prefix``), a REST API authenticated with its
    access tokens, one function route, and the console."""
    pool, server = user_pool(stack)
    existing_user_pool_domain = (
        pool.add_domain("Existing", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=existing_domain_prefix))
        if existing_domain_prefix
        else None
    )
    api = AgentApi(stack, "Api", options=AgentApiOptions(auth=ApiAuth.cognito([pool], scopes=[SCOPE])))
    agent = AgentFunction(stack, "Agent", handler_code=handler_dir("stateless"))
    api.add_function_route("/approvals", "GET", agent.alias)
    console = OperatorConsole(
        stack, "Console", user_pool=pool, api=api, options=options, existing_user_pool_domain=existing_user_pool_domain
    )
    return Composed(pool, server, api, console)


@pytest.fixture(scope="module")
def composed(synthesize: Callable[..., Any]) -> tuple[Composed, SynthesizedStack]:
    return synthesize(compose)


def only(resources: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.items()))


def deployment_config(synth: SynthesizedStack, console: OperatorConsole) -> dict[str, Any]:
    """The config.json the deployment writes: its staged asset, with the deploy-time values (markers) rendered."""
    _, deployment = only(synth.of_type("Custom::CDKBucketDeployment"))
    for key, markers in zip(deployment["SourceObjectKeys"], deployment["SourceMarkers"], strict=True):
        staged = Path(synth.stack.node.root.outdir) / f"asset.{key.removesuffix('.zip')}" / "config.json"  # type: ignore[attr-defined]
        if staged.is_file():
            text = staged.read_text()
            for marker, value in markers.items():
                text = text.replace(marker, synth.render(value))
            return json.loads(text)
    raise AssertionError("no source of the deployment holds config.json")


# -- the bucket ----------------------------------------------------------------------------


def test_the_site_bucket_blocks_public_access_and_only_the_distribution_may_read_it(composed: Any) -> None:
    built, synth = composed
    bucket = synth.properties(built.console.bucket)
    distribution = synth.logical_id(built.console.distribution)

    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    # Server access logs go to the console's log bucket when the stack has no SecurityBaseline.
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": synth.logical_id(built.console.log_bucket)}

    policy = synth.properties(built.console.bucket.policy)["PolicyDocument"]["Statement"]  # type: ignore[arg-type]
    allows = [s for s in policy if s["Effect"] == "Allow"]
    denies = [s for s in policy if s["Effect"] == "Deny"]
    assert allows == [
        {
            "Action": "s3:GetObject",
            "Condition": {"StringEquals": {"AWS:SourceArn": allows[0]["Condition"]["StringEquals"]["AWS:SourceArn"]}},
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Resource": allows[0]["Resource"],
        }
    ]
    source_arn = synth.render(allows[0]["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert source_arn == f"arn:aws:cloudfront::{TEST_ENV.account}:distribution/{distribution}"
    assert denies == [
        {
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": denies[0]["Resource"],
        }
    ]


def test_the_log_bucket_is_private_and_expires_what_it_keeps(composed: Any) -> None:
    built, synth = composed
    logs = synth.properties(built.console.log_bucket)

    assert all(logs["PublicAccessBlockConfiguration"].values())
    # CloudFront's standard logs are written with an ACL: ACLs stay on, owned by the bucket owner.
    assert logs["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerPreferred"}]
    assert logs["LifecycleConfiguration"]["Rules"] == [{"ExpirationInDays": 90, "Status": "Enabled"}]


# -- the distribution ----------------------------------------------------------------------


def test_the_distribution_reads_the_bucket_through_an_origin_access_control_and_has_no_identity(composed: Any) -> None:
    built, synth = composed
    oac_id, oac = only(synth.of_type("AWS::CloudFront::OriginAccessControl"))
    config = synth.properties(built.console.distribution)["DistributionConfig"]

    assert oac["OriginAccessControlConfig"] == {
        "Name": oac["OriginAccessControlConfig"]["Name"],
        "OriginAccessControlOriginType": "s3",
        "SigningBehavior": "always",
        "SigningProtocol": "sigv4",
    }
    s3_origins = [o for o in config["Origins"] if "S3OriginConfig" in o]
    assert s3_origins == [
        {
            "DomainName": {"Fn::GetAtt": [synth.logical_id(built.console.bucket), "RegionalDomainName"]},
            "Id": s3_origins[0]["Id"],
            "OriginAccessControlId": {"Fn::GetAtt": [oac_id, "Id"]},
            "S3OriginConfig": {"OriginAccessIdentity": ""},
        }
    ]
    assert synth.of_type("AWS::CloudFront::CloudFrontOriginAccessIdentity") == {}
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == s3_origins[0]["Id"]


def test_viewers_are_redirected_to_https_and_served_index_html_with_access_logs(composed: Any) -> None:
    built, synth = composed
    config = synth.properties(built.console.distribution)["DistributionConfig"]

    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultCacheBehavior"]["AllowedMethods"] == ["GET", "HEAD"]
    assert config["DefaultRootObject"] == "index.html"
    assert config["PriceClass"] == "PriceClass_100"
    assert config["Logging"] == {
        "Bucket": {"Fn::GetAtt": [synth.logical_id(built.console.log_bucket), "RegionalDomainName"]},
        "Prefix": "cloudfront/",
    }
    # CloudFront's default certificate: no ViewerCertificate, so the acknowledged TLSv1 policy (see the nag test).
    assert "ViewerCertificate" not in config


def test_the_api_stage_is_served_on_the_consoles_origin_uncached_and_https_only(composed: Any) -> None:
    # Given the console of a REST API whose stage is v1,
    built, synth = composed
    config = synth.properties(built.console.distribution)["DistributionConfig"]
    (behavior,) = config["CacheBehaviors"]
    origin = next(o for o in config["Origins"] if o["Id"] == behavior["TargetOriginId"])
    rest_api = synth.logical_id(built.api.rest_api)

    # then /v1/* goes to the API's own host (the stage stays in the path), over TLS 1.2,
    assert behavior["PathPattern"] == "/v1/*"
    assert synth.render(origin["DomainName"]) == f"{rest_api}.execute-api.us-east-1.amazonaws.com"
    assert origin["CustomOriginConfig"] == {"OriginProtocolPolicy": "https-only", "OriginSSLProtocols": ["TLSv1.2"]}
    assert "OriginPath" not in origin or origin["OriginPath"] == ""
    # uncached (CachingDisabled), with every viewer header but Host (so Authorization reaches the API),
    assert behavior["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    assert behavior["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    assert behavior["ViewerProtocolPolicy"] == "https-only"
    assert {"GET", "POST"} <= set(behavior["AllowedMethods"])
    # and with the same security headers as the page.
    assert behavior["ResponseHeadersPolicyId"] == config["DefaultCacheBehavior"]["ResponseHeadersPolicyId"]


def test_every_answer_carries_hsts_nosniff_deny_framing_and_a_strict_content_security_policy(composed: Any) -> None:
    built, synth = composed
    headers = synth.properties(built.console.response_headers_policy)["ResponseHeadersPolicyConfig"]
    security = headers["SecurityHeadersConfig"]
    domain = synth.logical_id(built.console.user_pool_domain)
    hosted_ui = f"https://{domain}.auth.us-east-1.amazoncognito.com"

    assert security["StrictTransportSecurity"] == {
        "AccessControlMaxAgeSec": 63072000,
        "IncludeSubdomains": True,
        "Override": True,
    }
    assert security["ContentTypeOptions"] == {"Override": True}
    assert security["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert security["ReferrerPolicy"] == {"ReferrerPolicy": "no-referrer", "Override": True}
    assert security["ContentSecurityPolicy"]["Override"] is True
    assert synth.render(security["ContentSecurityPolicy"]["ContentSecurityPolicy"]) == (
        "default-src 'self'; "
        f"connect-src 'self' {hosted_ui}; "
        "script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; "
        f"form-action 'self' {hosted_ui}"
    )
    config = synth.properties(built.console.distribution)["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] == {
        "Ref": synth.logical_id(built.console.response_headers_policy)
    }


def test_the_console_url_is_an_output(composed: Any) -> None:
    built, synth = composed
    outputs = synth.template.to_json()["Outputs"]
    (url,) = [o for name, o in outputs.items() if name.startswith("ConsoleConsoleUrl")]

    assert synth.render(url["Value"]) == f"https://{synth.logical_id(built.console.distribution)}.DomainName/"


# -- Cognito ---------------------------------------------------------------------------------


def test_the_console_client_is_public_and_may_only_use_the_authorization_code_grant(composed: Any) -> None:
    built, synth = composed
    client_id = synth.logical_id(built.console.client)
    client = synth.properties(built.console.client)
    console_url = f"https://{synth.logical_id(built.console.distribution)}.DomainName/"

    assert client["UserPoolId"] == {"Ref": synth.logical_id(built.pool)}
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client.get("GenerateSecret", False) is False
    assert client["AllowedOAuthScopes"] == ["openid", SCOPE]
    assert [synth.render(url) for url in client["CallbackURLs"]] == [console_url]
    assert [synth.render(url) for url in client["LogoutURLs"]] == [console_url]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert client["EnableTokenRevocation"] is True
    # No SDK sign-in flow (SRP, passwords) for this client: the hosted UI signs operators in.
    assert client["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]
    assert client["TokenValidityUnits"] == {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "minutes"}
    assert client["AccessTokenValidity"] <= 60
    assert client["IdTokenValidity"] <= 60
    assert client["RefreshTokenValidity"] == 60
    # The scope is the resource server's: the client is created after it.
    assert synth.logical_id(built.resource_server) in synth.resources[client_id]["DependsOn"]


def test_the_rest_apis_authorizer_needs_no_registration_of_the_client(composed: Any) -> None:
    # Given the API's Cognito authorizer, then it trusts the pool and requires the scope the client is granted.
    built, synth = composed
    _, authorizer = only(synth.of_type("AWS::ApiGateway::Authorizer"))

    assert authorizer["Type"] == "COGNITO_USER_POOLS"
    assert authorizer["ProviderARNs"] == [{"Fn::GetAtt": [synth.logical_id(built.pool), "Arn"]}]
    assert synth.routes()[("GET", "/approvals")]["AuthorizationScopes"] == [SCOPE]


def test_the_hosted_ui_has_a_prefix_domain_unique_to_the_stack(composed: Any) -> None:
    built, synth = composed
    _, domain = only(synth.of_type("AWS::Cognito::UserPoolDomain"))

    assert domain["UserPoolId"] == {"Ref": synth.logical_id(built.pool)}
    assert domain["Domain"] == {
        "Fn::Join": ["-", ["agentrail", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]]
    }
    assert "CustomDomainConfig" not in domain


def test_a_domain_prefix_option_names_the_hosted_ui(synthesize: Callable[..., Any]) -> None:
    built, synth = synthesize(lambda stack: compose(stack, options=OperatorConsoleOptions(domain_prefix="acme-operators")))

    lid, domain = only(synth.of_type("AWS::Cognito::UserPoolDomain"))
    assert domain["Domain"] == "acme-operators"
    # The domain's Ref is its prefix: config.json names the hosted UI at https://acme-operators.auth.<region>...
    assert deployment_config(synth, built.console)["cognito"]["domain"] == f"https://{lid}.auth.us-east-1.amazoncognito.com"


def test_an_existing_domain_serves_the_hosted_ui_and_no_other_is_created(synthesize: Callable[..., Any]) -> None:
    built, synth = synthesize(lambda stack: compose(stack, existing_domain_prefix="acme-login"))

    assert len(synth.of_type("AWS::Cognito::UserPoolDomain")) == 1
    assert built.console.user_pool_domain.node.id == "Existing"
    existing = synth.logical_id(built.console.user_pool_domain)
    assert synth.resources[existing]["Properties"]["Domain"] == "acme-login"
    assert deployment_config(synth, built.console)["cognito"]["domain"] == f"https://{existing}.auth.us-east-1.amazoncognito.com"


# -- the deployment ------------------------------------------------------------------------


def test_config_json_tells_the_page_the_api_base_the_hosted_ui_the_client_and_the_redirect(composed: Any) -> None:
    built, synth = composed
    domain = synth.logical_id(built.console.user_pool_domain)

    config = deployment_config(synth, built.console)

    assert config == {
        "mode": "cognito",
        # The page's origin serves the API's stage: a relative base, no trailing slash.
        "apiBase": "v1",
        "title": "agentrail console",
        # the views whose routes the API serves: the composed API has GET /approvals only
        "features": ["approvals"],
        "cognito": {
            "domain": f"https://{domain}.auth.us-east-1.amazoncognito.com",
            "clientId": synth.logical_id(built.console.client),
            "scopes": ["openid", SCOPE],
            "redirectUri": f"https://{synth.logical_id(built.console.distribution)}.DomainName/",
        },
    }


def test_the_deployment_ships_the_page_folder_and_invalidates_the_distribution(composed: Any) -> None:
    built, synth = composed
    _, deployment = only(synth.of_type("Custom::CDKBucketDeployment"))
    outdir = Path(synth.stack.node.root.outdir)  # type: ignore[attr-defined]
    staged = [outdir / f"asset.{key.removesuffix('.zip')}" for key in deployment["SourceObjectKeys"]]

    assert deployment["DestinationBucketName"] == {"Ref": synth.logical_id(built.console.bucket)}
    assert deployment["DistributionId"] == {"Ref": synth.logical_id(built.console.distribution)}
    assert deployment["DistributionPaths"] == ["/*"]
    assert deployment["Prune"] is True
    assert deployment["SystemMetadata"] == {"cache-control": "public, max-age=0, must-revalidate, s-maxage=86400"}
    # Whatever the page folder holds ships as it is (a config.json there, local mode's, never does).
    page = sorted(p.name for p in SITE_DIR.iterdir() if p.is_file() and p.name != "config.json" and not p.name.startswith("."))
    shipped = [sorted(p.name for p in folder.iterdir()) for folder in staged]
    assert shipped == ([page] if page else []) + [["config.json"]]
    _, handler = next(
        (lid, props)
        for lid, props in synth.of_type("AWS::Lambda::Function").items()
        if lid.startswith("CustomCDKBucketDeployment")
    )
    assert handler["MemorySize"] == 512


# -- options refused at synth --------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        (ApiAuth.iam(), "signs operators in with Cognito, but the API authenticates with iam"),
        (ApiAuth.api_key(single_tenant=True), "signs operators in with Cognito, but the API authenticates with api_key"),
    ],
    ids=["iam", "api_key"],
)
def test_an_api_not_authenticated_with_cognito_is_refused(stack: cdk.Stack, auth: ApiAuth, message: str) -> None:
    pool, _ = user_pool(stack)
    api = AgentApi(stack, "Api", options=AgentApiOptions(auth=auth))

    with pytest.raises(ValueError, match=message):
        OperatorConsole(stack, "Console", user_pool=pool, api=api)


def test_an_http_api_is_refused_since_its_authorizer_cannot_accept_a_later_client(stack: cdk.Stack) -> None:
    pool, _ = user_pool(stack)
    other = pool.add_client("Other")
    api = AgentApi(
        stack, "Api", options=AgentApiOptions(kind="http", auth=ApiAuth.cognito([pool], scopes=[SCOPE], app_clients=[other]))
    )

    with pytest.raises(ValueError, match=r"needs a REST API \(AgentApiOptions\(kind='rest'\)\)"):
        OperatorConsole(stack, "Console", user_pool=pool, api=api)


def test_a_pool_the_api_does_not_trust_is_refused(stack: cdk.Stack) -> None:
    pool, _ = user_pool(stack)
    api = AgentApi(stack, "Api", options=AgentApiOptions(auth=ApiAuth.cognito([pool], scopes=[SCOPE])))
    stranger = cognito.UserPool.from_user_pool_id(stack, "Stranger", "us-east-1_Stranger1")

    with pytest.raises(ValueError, match="the API does not accept tokens of this user pool"):
        OperatorConsole(stack, "Console", user_pool=stranger, api=api)


def test_an_existing_domain_and_a_domain_prefix_together_are_refused(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="pass either existing_user_pool_domain or OperatorConsoleOptions"):
        compose(stack, options=OperatorConsoleOptions(domain_prefix="acme-ops"), existing_domain_prefix="acme-login")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (OperatorConsoleOptions(domain_names=["console.example.com"]), "pass domain_names and certificate together"),
        (OperatorConsoleOptions(domain_prefix="Acme_Ops"), "is not a Cognito prefix domain"),
        (OperatorConsoleOptions(domain_prefix="my-aws-console"), "is not a Cognito prefix domain"),
        (OperatorConsoleOptions(token_validity=cdk.Duration.hours(2)), "token_validity must be between 5 minutes and 1 hour"),
        (OperatorConsoleOptions(token_validity=cdk.Duration.minutes(1)), "token_validity must be between 5 minutes and 1 hour"),
        (OperatorConsoleOptions(identity_providers=()), "identity_providers needs at least one provider"),
    ],
    ids=["domain-without-certificate", "uppercase-prefix", "reserved-word-prefix", "token-2h", "token-1min", "no-provider"],
)
def test_options_the_console_cannot_deploy_are_refused(options: OperatorConsoleOptions, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        options.validate()


# -- variants --------------------------------------------------------------------------------


def test_a_custom_domain_requires_tls_1_2_and_is_where_operators_are_sent_back(synthesize: Callable[..., Any]) -> None:
    # Given a console on its own domain with an ACM certificate,
    def build(stack: cdk.Stack) -> Composed:
        certificate = acm.Certificate.from_certificate_arn(stack, "Certificate", CERTIFICATE_ARN)
        return compose(stack, options=OperatorConsoleOptions(domain_names=["console.example.com"], certificate=certificate))

    built, synth = synthesize(build)
    config = synth.properties(built.console.distribution)["DistributionConfig"]

    # then viewers need TLS 1.2, and sign-in calls back to that domain.
    assert config["Aliases"] == ["console.example.com"]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": CERTIFICATE_ARN,
        "MinimumProtocolVersion": "TLSv1.2_2021",
        "SslSupportMethod": "sni-only",
    }
    assert synth.properties(built.console.client)["CallbackURLs"] == ["https://console.example.com/"]
    assert deployment_config(synth, built.console)["cognito"]["redirectUri"] == "https://console.example.com/"
    # Nothing about TLSv1 is acknowledged or skipped any more.
    distribution = synth.resources[synth.logical_id(built.console.distribution)]
    assert "CFR4" not in SynthesizedStack.acknowledgements(built.console.distribution)
    assert "CKV_AWS_174" not in {s["id"] for s in distribution["Metadata"]["checkov"]["skip"]}


def test_under_a_security_baseline_the_site_bucket_logs_to_the_stacks_access_log_bucket(
    app_factory: Callable[..., cdk.App],
) -> None:
    stack = cdk.Stack(app_factory(context=HARDENED_LOOKUPS), "Hardened", env=TEST_ENV)
    baseline = SecurityBaseline(stack, "Security")
    built = compose(stack)
    synth = SynthesizedStack(stack)

    assert baseline.access_log_bucket is not None
    logging = synth.properties(built.console.bucket)["LoggingConfiguration"]
    assert logging["DestinationBucketName"] == {"Ref": synth.logical_id(baseline.access_log_bucket)}


# -- cdk-nag and checkov on the composed stack ---------------------------------------------

#: What the console acknowledges (rule, path under the console or the stack's BucketDeployment handler), reviewed.
HANDLER = "Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C512MiB"
CONSOLE_ACKNOWLEDGEMENTS = {
    ("CFR1", "Console/Distribution/Resource"),
    ("CFR2", "Console/Distribution/Resource"),
    ("CFR4", "Console/Distribution/Resource"),
    # No S1 on the log bucket here: cdk-nag sees it is the site bucket's access-log destination.
    ("L1", f"{HANDLER}/Resource"),
    (
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        f"{HANDLER}/ServiceRole/Resource",
    ),
    *(
        (f"IAM5[{finding}]", f"{HANDLER}/ServiceRole/DefaultPolicy/Resource")
        for finding in (
            "Action::s3:GetBucket*",
            "Action::s3:GetObject*",
            "Action::s3:List*",
            "Action::s3:DeleteObject*",
            "Action::s3:Abort*",
            "Resource::<ConsoleSiteBucket0686DAE8.Arn>/*",
            f"Resource::arn:aws:s3:::cdk-hnb659fds-assets-{TEST_ENV.account}-{TEST_ENV.region}/*",
            "Resource::*",
        )
    ),
}
#: What the console skips in checkov, and why (the reason on each resource says more).
CONSOLE_SKIPS = {
    ("CKV_AWS_18", "LogBucket"): "the log bucket is the destination of the access logs",
    ("CKV_AWS_21", "LogBucket"): "access logs expire after log_retention",
    ("CKV_AWS_68", "Distribution"): "no WAF unless web_acl_id is given",
    ("CKV_AWS_174", "Distribution"): "CloudFront pins TLSv1 on its default certificate",
    ("CKV_AWS_111", "CustomCDKBucketDeployment"): "CDK grants CreateInvalidation on every distribution",
    ("CKV_AWS_115", "CustomCDKBucketDeployment"): "a deployment-time function",
    ("CKV_AWS_116", "CustomCDKBucketDeployment"): "invoked synchronously by CloudFormation",
    ("CKV_AWS_117", "CustomCDKBucketDeployment"): "CloudFront has no VPC endpoint",
    ("CKV_AWS_173", "CustomCDKBucketDeployment"): "the environment holds no secret",
    ("CKV_AWS_158", "DeploymentLogs"): "CloudWatch Logs' own encryption without a key",
}


@dataclass
class Checked:
    report: dict[str, Any]
    template: Path


@pytest.fixture(scope="module")
def checked_stack(app_factory: Callable[..., cdk.App]) -> Checked:
    """The composed stack synthesized with cdk-nag's AwsSolutions pack, as app.py runs it."""
    app = app_factory()
    stack = cdk.Stack(app, "Console", env=TEST_ENV)
    compose(stack)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with contextlib.suppress(RuntimeError):  # a finding fails the synth; the report names it, and the tests show it
        app.synth()
    report = json.loads((Path(app.outdir) / "validation-report.json").read_text())
    return Checked(report=report, template=Path(app.outdir) / stack.template_file)


def test_a_stack_with_a_pool_a_cognito_api_and_the_console_has_no_unacknowledged_cdk_nag_finding(checked_stack: Checked) -> None:
    assert violations(checked_stack.report, "Console") == []


def test_the_console_acknowledges_exactly_the_reviewed_findings_each_on_its_resource_with_a_reason(
    checked_stack: Checked,
) -> None:
    acknowledged = {
        (rule, path)
        for rule, path in acknowledgements(checked_stack.report, "Console")
        if path.startswith(("Console/", "Custom::CDKBucketDeployment"))
    }

    assert acknowledged == CONSOLE_ACKNOWLEDGEMENTS
    for finding in findings(checked_stack.report, "suppressedViolations", "Console"):
        assert [c["constructPath"] for c in finding["violatingConstructs"]] == [finding["acknowledgedAt"]]
        assert len(finding["reason"].strip()) >= MIN_REASON_CHARS, finding["reason"]


def test_the_composed_stack_has_no_failed_checkov_check_and_the_console_skips_only_reviewed_checks(
    checked_stack: Checked,
) -> None:
    outcome = run_checkov([checked_stack.template])[checked_stack.template.name]

    assert not outcome["failed"], [(c["check_id"], c["resource"]) for c in outcome["failed"]]
    ours = [
        (c["check_id"], c["resource"].split(".", 1)[1].removeprefix("Console"))
        for c in outcome["skipped"]
        if c["resource"].split(".", 1)[1].startswith(("Console", "CustomCDKBucketDeployment"))
    ]
    reviewed = {
        (check, prefix) for check, name in ours for (id_, prefix) in CONSOLE_SKIPS if check == id_ and name.startswith(prefix)
    }
    assert len(reviewed) == len(ours), f"unreviewed console skips: {ours}"
    assert reviewed == set(CONSOLE_SKIPS)
    assert all(len((c["check_result"].get("suppress_comment") or "").strip()) >= MIN_REASON_CHARS for c in outcome["skipped"])


def test_under_a_security_baseline_the_composed_stack_passes_cdk_nag_and_checkov(app_factory: Callable[..., cdk.App]) -> None:
    # Given the composed stack under the hardened profile (the site bucket logs to the baseline's bucket, so cdk-nag's
    # S1 on the console's log bucket is the acknowledged one),
    app = app_factory(context=HARDENED_LOOKUPS)
    stack = cdk.Stack(app, "Hardened", env=TEST_ENV)
    SecurityBaseline(stack, "Security")
    compose(stack)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    # when it is synthesized with cdk-nag and scanned by checkov,
    app.synth()
    report = json.loads((Path(app.outdir) / "validation-report.json").read_text())
    template = Path(app.outdir) / stack.template_file
    outcome = run_checkov([template])[template.name]
    # then nothing is left unacknowledged, and no check fails.
    assert violations(report, "Hardened") == []
    assert ("S1", "Console/LogBucket/Resource") in set(acknowledgements(report, "Hardened"))
    assert not outcome["failed"], [(c["check_id"], c["resource"]) for c in outcome["failed"]]
