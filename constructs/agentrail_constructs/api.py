"""AgentApi: a REST API (or an HTTP API) in front of agent functions, with authentication, throttling and access logs."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from aws_cdk import CfnOutput
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from agentrail_constructs.contract import contract
from agentrail_constructs.nag import acknowledge, default_resource, skip_checkov
from agentrail_constructs.security import baseline_for
from agentrail_constructs.storage import log_group

_CLIENT_NAME = re.compile(r"^[A-Za-z0-9]{1,64}$")
#: Scopes every app client of a pool can put in a token: they would admit any client's token.
_POOL_WIDE_SCOPES = frozenset({"openid", "email", "phone", "profile", "aws.cognito.signin.user.admin"})

if TYPE_CHECKING:
    from agentrail_constructs.function import AgentFunction


@dataclass(frozen=True)
class ApiAuth:
    """How callers authenticate. Build one with :meth:`iam`, :meth:`api_key` or :meth:`cognito`."""

    kind: Literal["iam", "api_key", "cognito"]
    user_pools: Sequence[cognito.IUserPool] = ()
    scopes: Sequence[str] = ()
    app_clients: Sequence[cognito.IUserPoolClient] = ()
    quota_per_day: int | None = None
    clients: Sequence[str] = ()
    single_tenant: bool = False

    @staticmethod
    def iam() -> ApiAuth:
        """SigV4-signed requests from AWS principals allowed ``execute-api:Invoke``. The default."""
        return ApiAuth("iam")

    @staticmethod
    def api_key(*, clients: Sequence[str] = (), single_tenant: bool = False, quota_per_day: int | None = 10_000) -> ApiAuth:
        """API keys in ``x-api-key``: one key, under a usage plan of its own, per client.

        The caller's identity (who owns a session or a task) is its API key, so clients that share a key see
        each other's sessions and tasks.

        Parameters
        ----------
        clients:
            One API key and one usage plan (the stage's throttling and ``quota_per_day``) per name; names are
            letters and digits.
        single_tenant:
            One key for every caller, who then share one identity: only when every caller is the same tenant.
        quota_per_day:
            Requests per key per day. Default: 10,000.

        Raises
        ------
        ValueError
            Without ``clients`` or ``single_tenant`` (or with both), or with a bad or repeated client name.
        """
        if not clients and not single_tenant:
            raise ValueError(
                "ApiAuth.api_key gives every holder of a key the same identity, so they can read each other's "
                "sessions and tasks: pass clients=['acme', 'globex'] for one API key and usage plan per client, "
                "or single_tenant=True if every caller is one tenant"
            )
        if clients and single_tenant:
            raise ValueError("ApiAuth.api_key: pass clients=[...] or single_tenant=True, not both")
        if isinstance(clients, str):
            raise ValueError("ApiAuth.api_key: clients must be a list of names, e.g. ['acme']")
        bad = [name for name in clients if not _CLIENT_NAME.match(name)]
        if bad:
            raise ValueError(f"ApiAuth.api_key: client names are 1 to 64 letters and digits; got {bad}")
        if len(set(clients)) != len(clients):
            raise ValueError("ApiAuth.api_key: each client name may appear once")
        return ApiAuth("api_key", quota_per_day=quota_per_day, clients=tuple(clients), single_tenant=single_tenant)

    @staticmethod
    def cognito(
        user_pools: Sequence[cognito.IUserPool],
        *,
        scopes: Sequence[str] = (),
        app_clients: Sequence[cognito.IUserPoolClient] = (),
    ) -> ApiAuth:
        """An access token from one of the given Cognito user pools in ``Authorization``, carrying one of ``scopes``.

        An HTTP API (``AgentApiOptions(kind="http")``) checks tokens with a JWT authorizer: it takes one user pool
        and needs ``app_clients``, the app clients whose tokens it accepts (their ids are the token audience).

        With scopes on its methods API Gateway accepts access tokens only. Without, it would accept an ID
        token of *any* app client of the pool, since it does not check an ID token's audience. So scopes are
        required, and each must be a resource server's (``<identifier>/<name>``): those are granted per app
        client, while ``openid``, ``email`` or ``aws.cognito.signin.user.admin`` are open to every client.

        Raises
        ------
        ValueError
            Without a user pool, without scopes, or with a scope that is not a resource server's.
        """
        if not user_pools:
            raise ValueError("ApiAuth.cognito needs at least one user pool")
        if isinstance(scopes, str):
            raise ValueError("ApiAuth.cognito: scopes must be a list, e.g. ['agents/invoke']")
        if not scopes:
            raise ValueError(
                "ApiAuth.cognito needs scopes=['<resource-server>/<scope>', ...]: with scopes API Gateway accepts "
                "only access tokens that carry one of them; without, it accepts ID tokens of any app client of the "
                "pool, whose audience it does not check"
            )
        open_to_all = [scope for scope in scopes if scope in _POOL_WIDE_SCOPES or "/" not in scope]
        if open_to_all:
            raise ValueError(
                f"ApiAuth.cognito: {open_to_all} can be in a token of any app client of the pool; use resource "
                "server scopes ('<identifier>/<name>') granted to the app clients that may call this API"
            )
        return ApiAuth("cognito", user_pools=tuple(user_pools), scopes=tuple(scopes), app_clients=tuple(app_clients))


API_KINDS = ("rest", "http")


@dataclass(frozen=True, kw_only=True)
class AgentApiOptions:
    """Options of the API in front of an agent."""

    kind: Literal["rest", "http"] = "rest"
    """``rest``: an API Gateway REST API, with request validation, usage plans and API keys, WAF, X-Ray on the stage
    and JSON gateway responses (a gateway 429 with ``Retry-After``). ``http``: an HTTP API (payload 2.0), cheaper per
    request, with IAM or Cognito (JWT) auth, stage throttling and access logs, but none of the former (the handlers
    validate every request themselves). Default: ``rest``."""
    auth: ApiAuth = field(default_factory=ApiAuth.iam)
    """Default: IAM (SigV4)."""
    stage_name: str = "v1"
    """Default: ``v1``."""
    throttling_rate_limit: float = 50
    """Steady requests per second for the whole stage. Default: 50."""
    throttling_burst_limit: int = 100
    """Default: 100."""
    access_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    """Default: one month."""
    web_acl_arn: str | None = None
    """A WAFv2 web ACL to associate with the stage (REST only). Default: none."""
    account_cloudwatch_role: bool = True
    """Create the account-wide role API Gateway needs to write execution logs (REST only). Default: true."""
    iam_identity: Literal["role", "session"] = "role"
    """Who an IAM caller that assumed a role is, as owner, requester and approver: the role, or each session of it.
    The caller chooses the session name, so ``session`` is sound only when the role's trust policy pins it
    (``sts:RoleSessionName`` and ``sts:SourceIdentity`` conditions, see the README). Default: ``role``."""


#: Options that configure the stage of a REST API the construct creates: not used with an existing REST API.
_STAGE_OPTIONS = (
    "stage_name",
    "throttling_rate_limit",
    "throttling_burst_limit",
    "access_log_retention",
    "account_cloudwatch_role",
)


def _check_http_options(options: AgentApiOptions, existing_rest_api: apigw.RestApi | None) -> None:
    """Refuse what an HTTP API cannot do, naming the fix."""
    if existing_rest_api is not None:
        raise ValueError("existing_rest_api is a REST API: leave AgentApiOptions.kind at 'rest' to add the routes to it")
    if options.auth.kind == "api_key":
        raise ValueError(
            "API keys and usage plans are a REST API feature: with AgentApiOptions(kind='http') use ApiAuth.iam() or "
            "ApiAuth.cognito(...), or keep kind='rest' for ApiAuth.api_key(...)"
        )
    if options.web_acl_arn:
        raise ValueError("WAF cannot be associated with an HTTP API: keep AgentApiOptions(kind='rest') for web_acl_arn")
    if options.auth.kind == "cognito" and (len(options.auth.user_pools) != 1 or not options.auth.app_clients):
        raise ValueError(
            "an HTTP API checks Cognito tokens with a JWT authorizer for one user pool and the app clients it accepts: "
            "pass ApiAuth.cognito([pool], scopes=[...], app_clients=[client])"
        )


def _check_stage_options_unused(options: AgentApiOptions) -> None:
    defaults = AgentApiOptions()
    changed = [name for name in _STAGE_OPTIONS if getattr(options, name) != getattr(defaults, name)]
    if changed:
        raise ValueError(
            f"{', '.join(changed)} configure the stage of a new REST API; with existing_rest_api, set them on your "
            "own API's stage (only auth and web_acl_arn apply)"
        )


#: The HTTP API stage's access log line: JSON, the REST stage's fields, never a body.
_HTTP_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "user": "$context.identity.user",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "integrationError": "$context.integrationErrorMessage",
}


def log_stage_access(stage: apigwv2.HttpStage | apigwv2.WebSocketStage, group: logs.ILogGroup, fields: dict[str, str]) -> None:
    """JSON access logs of an API Gateway v2 ``stage`` (HTTP or WebSocket) into ``group``: one object of ``fields``
    (``$context`` variables) per request. The L2 stages of HTTP APIs take no access log settings, so the L1 gets them."""
    default_resource(stage).access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(  # type: ignore[attr-defined]
        destination_arn=group.log_group_arn, format=json.dumps(fields)
    )


_ERROR_TEMPLATE = '{"error": "%s", "message": "%s", "request_id": "$context.requestId"}'
_GATEWAY_RESPONSES: tuple[tuple[apigw.ResponseType, str | None, str, str], ...] = (
    (apigw.ResponseType.BAD_REQUEST_BODY, "400", "invalid_request", "The request body does not match the schema."),
    (apigw.ResponseType.BAD_REQUEST_PARAMETERS, "400", "invalid_request", "A required parameter is missing or invalid."),
    (
        apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
        "403",
        "not_found_or_unauthenticated",
        "No such route, or the request carries no credentials.",
    ),
    (apigw.ResponseType.ACCESS_DENIED, "403", "forbidden", "The caller may not call this route."),
    (apigw.ResponseType.UNAUTHORIZED, "401", "unauthorized", "The request carries no valid credentials."),
    (apigw.ResponseType.INVALID_API_KEY, "403", "invalid_api_key", "The API key is missing or invalid."),
    (apigw.ResponseType.INVALID_SIGNATURE, "403", "invalid_signature", "The request signature does not match."),
    (apigw.ResponseType.EXPIRED_TOKEN, "403", "expired_token", "The credentials have expired."),
    (apigw.ResponseType.THROTTLED, "429", "throttled", "Too many requests; retry with backoff."),
    (apigw.ResponseType.QUOTA_EXCEEDED, "429", "quota_exceeded", "The daily quota of this API key is used up."),
    (apigw.ResponseType.REQUEST_TOO_LARGE, "413", "payload_too_large", "The request is too large."),
    (apigw.ResponseType.DEFAULT_4_XX, None, "bad_request", "The request could not be accepted."),
    (apigw.ResponseType.DEFAULT_5_XX, None, "gateway_error", "The service could not answer; retry later."),
)


def _retry_after(status: str | None, code: str) -> dict[str, str] | None:
    """``Retry-After`` on the gateway answers the runtime's error contract says carry it (throttling)."""
    if status is None or not contract.api_error(int(status), code).retry_after:
        return None
    return {"Retry-After": f"'{contract.THROTTLED_RETRY_AFTER_SECONDS}'"}


class AgentApi(Construct):
    """A regional REST API whose every method is authenticated and validated, or an HTTP API (``kind="http"``).

    The REST stage has throttling, JSON access logs (never request bodies), execution
    logging at ERROR without data tracing, metrics and X-Ray. Gateway errors use
    the same JSON shape as the handlers and never echo the request.

    An HTTP API (payload 2.0) authenticates every route with IAM or a Cognito JWT authorizer, and its stage has
    throttling and the same JSON access logs; its functions are told so (``AGENT_API_KIND=http``) and validate every
    request themselves. API keys, WAF, request validation, X-Ray on the stage and custom gateway responses are REST
    features: an HTTP API refuses them at synth.

    Parameters
    ----------
    options:
        Default: ``AgentApiOptions()`` (IAM auth, v1 stage).
    existing_rest_api:
        Your REST API: the routes, their models, a request validator and the JSON gateway responses are added
        to it, and its stage (throttling, logs, tracing) stays yours. A ``RestApi`` rather than an
        ``IRestApi``: the routes need its deployment stage (an imported API has none). With it, only
        ``auth`` and ``web_acl_arn`` of ``options`` apply; the stage options must keep their defaults.

    Attributes
    ----------
    rest_api, stage, access_log_group (none with an existing API), validator, authorizer,
    api_keys and usage_plans (by client name), api_key and usage_plan (the one key of ``single_tenant``);
    with ``kind="http"``: http_api, stage (an ``HttpStage``), access_log_group and authorizer (``rest_api`` and
    ``validator`` are None)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options: AgentApiOptions | None = None,
        existing_rest_api: apigw.RestApi | None = None,
        description: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        self.options = options = options or AgentApiOptions()
        self.access_log_group: logs.LogGroup | None = None
        self.http_api: apigwv2.HttpApi | None = None
        self.http_stage: apigwv2.HttpStage | None = None
        self.http_authorizer: apigwv2.IHttpRouteAuthorizer | None = None
        if options.kind not in API_KINDS:
            raise ValueError(f"AgentApiOptions.kind must be one of {', '.join(API_KINDS)}, got {options.kind!r}")
        if options.kind == "http":
            _check_http_options(options, existing_rest_api)
            self._check_auth(options.auth)
            self._build_http_api(options, description)
            return
        if existing_rest_api is not None:
            _check_stage_options_unused(options)
            self.rest_api = existing_rest_api
        else:
            self.rest_api = self._build_rest_api(options, description)
        self.stage = self.rest_api.deployment_stage
        self.validator = apigw.RequestValidator(
            self, "Validator", rest_api=self.rest_api, validate_request_body=True, validate_request_parameters=True
        )
        for response_type, status, code, message in _GATEWAY_RESPONSES:
            self.rest_api.add_gateway_response(
                f"Gateway{response_type.response_type}",
                type=response_type,
                status_code=status,
                response_headers=_retry_after(status, code),
                templates={"application/json": _ERROR_TEMPLATE % (code, message)},
            )
        self.authorizer: apigw.CognitoUserPoolsAuthorizer | None = None
        self.api_key: apigw.IApiKey | None = None
        self.usage_plan: apigw.UsagePlan | None = None
        self.api_keys: dict[str, apigw.IApiKey] = {}
        self.usage_plans: dict[str, apigw.UsagePlan] = {}
        self._build_auth(options)
        if options.web_acl_arn:
            wafv2.CfnWebACLAssociation(self, "WebAcl", resource_arn=self.stage.stage_arn, web_acl_arn=options.web_acl_arn)
        elif existing_rest_api is None:
            acknowledge(
                default_resource(self.stage),
                "APIG3",
                "No WAF by default: a web ACL costs money while idle and its rules are owner-specific. "
                "Pass web_acl_arn to associate one; stage throttling and authentication are always on.",
            )
        if existing_rest_api is None and options.account_cloudwatch_role:
            role = default_resource(self.rest_api.node.find_child("CloudWatchRole"))
            acknowledge(
                role,
                "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway's account-level logging role must use this AWS managed policy; it only allows writing "
                "API Gateway execution logs. Set account_cloudwatch_role=False if the account already has one.",
            )
        CfnOutput(self, "Url", value=self.rest_api.url, description="Invoke URL of the stage")

    def _build_rest_api(self, options: AgentApiOptions, description: str) -> apigw.RestApi:
        self.access_log_group = self._access_log_group(options)
        rest_api = apigw.RestApi(
            self,
            "RestApi",
            description=description or f"agentrail API {self.node.path}",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=options.account_cloudwatch_role,
            deploy_options=apigw.StageOptions(
                stage_name=options.stage_name,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                throttling_rate_limit=options.throttling_rate_limit,
                throttling_burst_limit=options.throttling_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True,
                ),
            ),
        )  # fmt: skip
        skip_checkov(
            default_resource(rest_api.deployment_stage),
            "CKV_AWS_120",
            "Agent answers are per caller and mostly to POSTs: a stage cache could serve one caller's answer to "
            "another, and it is billed by the hour while idle.",
        )
        return rest_api

    def _access_log_group(self, options: AgentApiOptions) -> logs.LogGroup:
        """The stage's access logs, under the stack's SecurityBaseline key when there is one."""
        baseline = baseline_for(self)
        return log_group(
            self,
            "AccessLogs",
            retention=options.access_log_retention,
            encryption_key=baseline.key if baseline is not None else None,
        )

    @staticmethod
    def _check_auth(auth: ApiAuth) -> None:
        # An ApiAuth built directly, not through its factories, gets the same checks.
        if auth.kind == "api_key":
            ApiAuth.api_key(clients=auth.clients, single_tenant=auth.single_tenant)
        elif auth.kind == "cognito":
            ApiAuth.cognito(auth.user_pools, scopes=auth.scopes, app_clients=auth.app_clients)

    def _build_http_api(self, options: AgentApiOptions, description: str) -> None:
        self.access_log_group = self._access_log_group(options)
        self.http_api = apigwv2.HttpApi(
            self, "HttpApi", description=description or f"agentrail API {self.node.path}", create_default_stage=False
        )
        self.http_stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.http_api,
            stage_name=options.stage_name,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=options.throttling_rate_limit, burst_limit=options.throttling_burst_limit
            ),
        )
        log_stage_access(self.http_stage, self.access_log_group, _HTTP_ACCESS_LOG_FORMAT)
        self.stage = self.http_stage  # type: ignore[assignment]
        self.rest_api = None  # type: ignore[assignment]
        self.validator = None  # type: ignore[assignment]
        self.authorizer = None
        self.api_key, self.usage_plan = None, None
        self.api_keys, self.usage_plans = {}, {}
        auth = options.auth
        if auth.kind == "iam":
            self.http_authorizer = authorizers.HttpIamAuthorizer()
        else:
            self.http_authorizer = authorizers.HttpUserPoolAuthorizer(
                "Authorizer", auth.user_pools[0], user_pool_clients=list(auth.app_clients)
            )
        CfnOutput(self, "Url", value=self.http_stage.url, description="Invoke URL of the stage")

    def _build_auth(self, options: AgentApiOptions) -> None:
        auth = options.auth
        self._check_auth(auth)
        if auth.kind == "cognito":
            self.authorizer = apigw.CognitoUserPoolsAuthorizer(self, "Authorizer", cognito_user_pools=list(auth.user_pools))
        elif auth.kind == "api_key" and auth.single_tenant:
            # The ids of the single key keep their names, so an existing deployment keeps its key.
            self.api_key, self.usage_plan = self._add_client_key(options, "", f"API key of {self.node.path}")
            self.api_keys["default"], self.usage_plans["default"] = self.api_key, self.usage_plan
        elif auth.kind == "api_key":
            for client in auth.clients:
                self.api_keys[client], self.usage_plans[client] = self._add_client_key(
                    options, client, f"API key of client {client} of {self.node.path}"
                )

    def _add_client_key(self, options: AgentApiOptions, client: str, description: str) -> tuple[apigw.IApiKey, apigw.UsagePlan]:
        """One API key under a usage plan of its own: quotas and throttling count per client."""
        quota = options.auth.quota_per_day
        key = self.rest_api.add_api_key(f"ApiKey{client}", description=description)
        plan = self.rest_api.add_usage_plan(
            f"UsagePlan{client}",
            throttle=apigw.ThrottleSettings(rate_limit=options.throttling_rate_limit, burst_limit=options.throttling_burst_limit),
            quota=apigw.QuotaSettings(limit=quota, period=apigw.Period.DAY) if quota else None,
            api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.stage)],
        )
        plan.add_api_key(key)
        CfnOutput(
            self,
            f"ApiKeyId{client}",
            value=key.key_id,
            description=f"API key{' of ' + client if client else ''}; read it with: "
            "aws apigateway get-api-key --include-value --api-key <id>",
        )
        return key, plan

    def add_function_route(
        self,
        path: str,
        method: str,
        target: lambda_.IFunction,
        *,
        request_schema: apigw.JsonSchema | None = None,
        request_parameters: dict[str, bool] | None = None,
        operation_name: str | None = None,
        authenticated_by_function: str | None = None,
    ) -> apigw.Method | None:
        """Route ``method path`` to ``target`` (pass the ``live`` alias) through the Lambda proxy integration.

        Returns the REST API's method; None on an HTTP API (its routes are in ``http_api``).

        ``request_schema`` is enforced by API Gateway before the function runs (a REST API; an HTTP API has no
        request validation, and the function validates). ``authenticated_by_function`` opens the method at the
        gateway for callers that cannot sign requests (a chat tool's webhook); it must say how the
        function authenticates them, and that reason is recorded for cdk-nag.
        """
        if self.http_api is not None:
            self._add_http_route(path, method, target, operation_name, authenticated_by_function)
            return None
        resource = self.rest_api.root.resource_for_path(path) if path != "/" else self.rest_api.root
        models = None
        if request_schema is not None:
            model = self.rest_api.add_model(
                f"{operation_name or 'Request'}Model",
                content_type="application/json",
                schema=request_schema,
                description=f"Body of {method} {path}",
            )
            models = {"application/json": model}
        auth = self.options.auth
        # None leaves an option unset (jsii passes it as undefined).
        authorizer: apigw.IAuthorizer | None = None
        authorization_scopes: list[str] | None = None
        api_key_required: bool | None = None
        if authenticated_by_function:
            authorization_type = apigw.AuthorizationType.NONE
        elif auth.kind == "iam":
            authorization_type = apigw.AuthorizationType.IAM
        elif auth.kind == "cognito":
            authorization_type = apigw.AuthorizationType.COGNITO
            authorizer = self.authorizer
            if auth.scopes:
                authorization_scopes = list(auth.scopes)
        else:
            authorization_type = apigw.AuthorizationType.NONE
            api_key_required = True
        created = resource.add_method(
            method,
            apigw.LambdaIntegration(target, proxy=True, allow_test_invoke=False),
            request_validator=self.validator,
            request_models=models,
            request_parameters={f"method.request.{k}": v for k, v in (request_parameters or {}).items()} or None,
            operation_name=operation_name,
            authorization_type=authorization_type,
            authorizer=authorizer,
            authorization_scopes=authorization_scopes,
            api_key_required=api_key_required,
        )
        cfn_method = default_resource(created)
        if authenticated_by_function:
            for rule in ("APIG4", "COG4"):
                acknowledge(cfn_method, rule, authenticated_by_function)
            skip_checkov(cfn_method, "CKV_AWS_59", authenticated_by_function)
            return created
        if auth.kind != "cognito":
            acknowledge(
                cfn_method,
                "COG4",
                f"This API authenticates with {'IAM SigV4' if auth.kind == 'iam' else 'API keys under a usage plan'} "
                "(AgentApiOptions.auth); a Cognito authorizer is available with ApiAuth.cognito(...).",
            )
        if auth.kind == "api_key":
            acknowledge(
                cfn_method,
                "APIG4",
                "Callers are authenticated by a required API key under a usage plan with throttling and a quota.",
            )
        return created

    def _add_http_route(
        self,
        path: str,
        method: str,
        target: lambda_.IFunction,
        operation_name: str | None,
        authenticated_by_function: str | None,
    ) -> list[apigwv2.HttpRoute]:
        assert self.http_api is not None
        name = operation_name or re.sub(r"[^A-Za-z0-9]", "", f"{method}{path}")
        integration = integrations.HttpLambdaIntegration(
            f"{name}Integration", target, payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0
        )
        auth = self.options.auth
        if authenticated_by_function:
            authorizer: apigwv2.IHttpRouteAuthorizer = apigwv2.HttpNoneAuthorizer()
        else:
            assert self.http_authorizer is not None
            authorizer = self.http_authorizer
        routes = self.http_api.add_routes(
            path=path,
            methods=[apigwv2.HttpMethod(method)],
            integration=integration,
            authorizer=authorizer,
            authorization_scopes=list(auth.scopes) if auth.kind == "cognito" and not authenticated_by_function else None,
        )
        if authenticated_by_function:
            for route in routes:
                cfn_route = default_resource(route)
                acknowledge(cfn_route, "APIG4", authenticated_by_function)
                skip_checkov(cfn_route, "CKV_AWS_309", authenticated_by_function)
        return routes

    def add_operational_routes(self, target: lambda_.IFunction) -> None:
        """``GET /health`` (the function's dependency checks) and ``GET /openapi.json``, authenticated like every
        route and served by ``target`` (pass the ``live`` alias)."""
        self.add_function_route("/health", "GET", target, operation_name="Health")
        self.add_function_route("/openapi.json", "GET", target, operation_name="OpenApi")

    def serve_with(self, agent_function: AgentFunction) -> None:
        """Tell a function that serves this API's routes which API it serves (``AGENT_API_KIND``) and how this API
        identifies callers (``AGENT_IAM_IDENTITY``)."""
        if self.options.kind != "rest":
            agent_function.add_environment("AGENT_API_KIND", self.options.kind)
        if self.options.iam_identity != "role":
            agent_function.add_environment("AGENT_IAM_IDENTITY", self.options.iam_identity)

    @property
    def url(self) -> str:
        if self.http_stage is not None:
            return self.http_stage.url
        return self.rest_api.url


__all__ = ["API_KINDS", "AgentApi", "AgentApiOptions", "ApiAuth"]
