"""AgentFunction: a Lambda function running an agentrail handler, with the runtime layers and secure defaults."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import jsii
from aws_cdk import Annotations, Aspects, CfnResource, Duration, IAspect, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, IConstruct

from agentrail_constructs.agent_version import (
    VersionAnswer,
    VersionRequest,
    queue_request,
    resolve_answer,
    version_request,
    version_token,
)
from agentrail_constructs.contract import contract
from agentrail_constructs.deployment import (
    AGENTLESS_HANDLERS,
    DEFAULT_DEPLOYMENT,
    NO_AGENT_HANDLERS,
    PRE_TRAFFIC_HOOK_HANDLER,
    CanaryDeployment,
    DeploymentOptions,
    deployment_options_for,
)
from agentrail_constructs.guardrails import BedrockGuardrail, ExistingGuardrail, GuardrailOptions, guardrail_arn
from agentrail_constructs.layers import DependenciesLayer, EvalsLayer, RuntimeLayer, _CopyPackage
from agentrail_constructs.nag import acknowledge, default_resource, skip_checkov
from agentrail_constructs.nag import arn_prefix as nag_arn_prefix
from agentrail_constructs.security import SecurityBaseline, baseline_for
from agentrail_constructs.shadow import SHADOW_WORKER_HANDLER, ShadowDeployment, ShadowOptions, shadow_options_for
from agentrail_constructs.sources import handler_dir
from agentrail_constructs.storage import encrypt_log_group, log_group

DEFAULT_RUNTIME = lambda_.Runtime.PYTHON_3_13
#: An agent function's application log level (Lambda's ``ApplicationLogLevel``, which Powertools' logger follows).
LogLevel = Literal["DEBUG", "INFO", "WARN", "ERROR"]
#: A name of ``tool_secrets``: what a tool passes to ``context.secret(...)``.
TOOL_SECRET_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, kw_only=True)
class ProvisionedConcurrencyScaling:
    """Application Auto Scaling of the ``live`` alias's provisioned concurrency on utilization."""

    min_capacity: int = 1
    """Default: 1."""
    max_capacity: int = 10
    """Default: 10."""
    utilization_target: float = 0.7
    """Fraction of provisioned concurrency in use that triggers scaling. Default: 0.7."""


@dataclass(frozen=True, kw_only=True)
class OtelExportOptions:
    """Send the function's traces through OpenTelemetry too (Langfuse, LangSmith or any OTLP backend), besides X-Ray.

    The function gets the AWS Distro for OpenTelemetry (ADOT) Python layer, which bundles OpenTelemetry Python and a
    reduced ADOT Collector running as a Lambda extension, and ``AWS_LAMBDA_EXEC_WRAPPER=/opt/otel-instrument``, which
    instruments the handler without code changes (https://aws-otel.github.io/docs/getting-started/lambda/lambda-python).
    The layer's ARN for the stack's Region and the function's architecture comes from CDK's own table
    (``lambda.AdotLayerVersion``): nothing is looked up at synth. The collector reads its configuration from
    ``OPENTELEMETRY_COLLECTOR_CONFIG_URI`` (a file in the function's code, an ``https://`` or an ``s3://`` URI); its
    built-in configuration sends to X-Ray only, so an OTLP backend needs a configuration of yours.
    """

    collector_config_uri: str | None = None
    """``OPENTELEMETRY_COLLECTOR_CONFIG_URI``: the collector configuration with your OTLP exporter (for an ``s3://``
    URI, grant the function's role ``s3:GetObject`` on it). Default: the layer's own (X-Ray only)."""
    layer_version: lambda_.AdotLambdaLayerPythonSdkVersion = field(
        default_factory=lambda: lambda_.AdotLambdaLayerPythonSdkVersion.LATEST
    )
    """The ADOT Python layer version. Default: the latest this aws-cdk-lib knows."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """``OTEL_*`` settings for the SDK and the collector (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``...);
    never credentials: they belong in the collector configuration or a secret. Default: none."""

    def validate(self) -> None:
        """Fail at synth with a message that names the fix."""
        if self.collector_config_uri is not None and not self.collector_config_uri.strip():
            raise ValueError("otel_export.collector_config_uri is empty: pass a URI, or None for the layer's own config")
        reserved = sorted(set(self.environment) & {"AWS_LAMBDA_EXEC_WRAPPER", "OPENTELEMETRY_COLLECTOR_CONFIG_URI"})
        if reserved:
            raise ValueError(
                f"otel_export.environment may not set {', '.join(reserved)}: "
                "AgentFunction sets the wrapper, and collector_config_uri sets the configuration"
            )


@dataclass(frozen=True, kw_only=True)
class AgentFunctionOptions:
    """Everything an AgentFunction can be told. Each default is the secure, cheap-when-idle choice."""

    model: str = "local"
    """Model spec: ``local``, ``bedrock:<model-id>`` or ``openai:<model>``. Default: ``local``."""
    allowed_models: Sequence[str] = ()
    """Further models a request may pick with ``"model"``. Default: none."""
    step_models: Mapping[str, str] = field(default_factory=dict)
    """``AGENT_STEP_MODELS``: a model of their own for kinds of step, ``{"routing" | "planning" | "review": spec}``
    (the router's choice of a specialist; the supervisor's plan, and its review of the workers' results into the
    answer), e.g. a cheaper model than ``model``, which runs every other step. A task's ``spend_by_model`` shows
    each model's tokens and cost. Default: none."""
    agent_definition: str = "agentrail_runtime.demo:definition"
    """``module:attribute`` of the AgentDefinition (prompt and tools). Default: the demo agent."""
    agent_code: str | None = None
    """Folder with the user's agent package(s), shipped as a layer. Default: none."""
    system_prompt: str | None = None
    """Overrides the definition's system prompt. Default: the definition's."""
    agent_version: str | None = None
    """``AGENT_VERSION``: the version stamped on the agent's logs, metrics, traces, records and answers, and on the
    ``live`` alias's Lambda version. Default: computed at synth by the runtime (in a subprocess) from the definition,
    its prompt files and the settings, as it would compute it in Lambda."""
    max_steps: int = 8
    """Model calls per task. Default: 8."""
    token_budget: int = 20_000
    """Input plus output tokens per task. Default: 20,000."""
    max_output_tokens: int = 1024
    """Output cap of one model call. Default: 1,024."""
    max_tool_result_bytes: int = 16_384
    """Cap of one tool result as the model sees it; longer ones are cut, with a notice. Default: 16 KiB."""
    max_request_bytes: int = 16_384
    """Largest accepted request body. Default: 16 KiB."""
    store_redacted: bool = False
    """``AGENT_STORE_REDACTED``: store session history, task records and shadow comparisons with personal and secret data redacted
    (``[REDACTED:<kind>]``); the model still sees the text as written within the run, and later turns see the
    redacted history. Default: False (stored as written)."""
    log_redaction: bool = True
    """``AGENT_LOG_REDACTION``: redact personal and secret data in every log line of the runtime. Default: True."""
    prices: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    """USD per million tokens by model spec prefix, over the built-in table: ``(input, output)``, or ``(input, output,
    cache_read, cache_write)`` for a model whose prompt cache is priced apart. Default: none."""
    prompt_caching: bool = True
    """``AGENT_PROMPT_CACHING``: ``bedrock:`` models that cache prompts are sent cache points (after the tools, the
    system prompt and the stable history), and the local model simulates a prompt cache; cache-read and cache-write
    tokens are metered and priced apart. Default: True."""
    memory_size: int = 1024
    """MiB. Default: 1,024 (a full vCPU share for the agent loop)."""
    timeout: Duration = field(default_factory=lambda: Duration.seconds(60))
    """Default: 60 seconds."""
    architecture: lambda_.Architecture = field(default_factory=lambda: lambda_.Architecture.ARM_64)
    """Default: ARM_64 (Graviton, cheaper per GB-second)."""
    runtime: lambda_.Runtime = field(default_factory=lambda: DEFAULT_RUNTIME)
    """Default: Python 3.13, the newest Lambda Python runtime whose CPython compiles the layers' bytecode here."""
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    """Default: one month."""
    log_encryption_key: kms.IKey | None = None
    """A customer managed key for the function's log group. Default: the stack's SecurityBaseline key if any, else
    none (CloudWatch Logs' own encryption); the table constructs set their key on the log groups of the functions
    they serve."""
    log_level: LogLevel = "INFO"
    """Application log level. Default: INFO."""
    reserved_concurrent_executions: int | None = None
    """Caps concurrency (and reserves it). Default: none, the account pool: a reservation fails the deploy in an
    account whose concurrency quota is still 10. Recommended in production: see README, Concurrency."""
    provisioned_concurrency: int | None = None
    """Pre-initialized environments on the ``live`` alias (no cold starts, billed while idle). Default: none."""
    provisioned_scaling: ProvisionedConcurrencyScaling | None = None
    """Autoscale provisioned concurrency on utilization. Default: none."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Extra environment variables. Default: none."""
    service_name: str | None = None
    """Powertools service name. Default: the construct id in kebab case."""
    metrics_namespace: str = "Agentrail"
    """CloudWatch namespace of the EMF metrics. Default: ``Agentrail``."""
    openai_api_key_secret: secretsmanager.ISecret | None = None
    """Secret holding the API key of an OpenAI-compatible endpoint. Default: none."""
    openai_base_url: str | None = None
    """Endpoint of the OpenAI-compatible API. Default: ``https://api.openai.com/v1``."""
    tool_secrets: Mapping[str, secretsmanager.ISecret] = field(default_factory=dict)
    """Secrets the agent's tools read with ``context.secret(name)``, by name: the function may
    ``secretsmanager:GetSecretValue`` exactly these (and decrypt with a secret's customer managed key, through Secrets
    Manager only); ``AGENT_TOOL_SECRETS`` names them; with a SecurityBaseline the VPC gets the Secrets Manager
    endpoint. Default: none."""
    otel_export: OtelExportOptions | None = None
    """Also export traces through OpenTelemetry (the ADOT layer and its collector). Default: none (X-Ray only)."""
    deployment_options: DeploymentOptions | None = DEFAULT_DEPLOYMENT
    """How a new version reaches the ``live`` alias: a CodeDeploy canary with rollback alarms and a pre-traffic hook
    (see :class:`DeploymentOptions`); None: the alias moves at once, without CodeDeploy. Default: the stack's
    ``deployment_options`` in a PatternStack, else ``DeploymentOptions()`` (canary, 10% for 5 minutes)."""
    shadow_options: ShadowOptions | None = None
    """Run each new version in shadow on a sample of live traffic (a ``shadow`` alias, a queue, a worker and a
    comparison table; see :class:`ShadowOptions`): the stateless agent and the sessions API; other handlers warn and
    have none. Default: the stack's ``shadow_options`` in a PatternStack, else none."""

    guardrail_options: GuardrailOptions | None = None
    """Create a Bedrock guardrail (:class:`GuardrailOptions`: prompt-attack, harmful-content and PII filters) and
    apply it: ``bedrock:`` models send it as Converse's ``guardrailConfig``, and ``BedrockGuardrailGuard`` applies it
    with any model. Default: none."""
    existing_guardrail: ExistingGuardrail | None = None
    """Apply a Bedrock guardrail you own (id or ARN, and version) instead. Default: none."""

    def validate(self) -> None:
        """Fail at synth with a message that names the fix."""
        if self.guardrail_options is not None and self.existing_guardrail is not None:
            raise ValueError(
                "pass either guardrail_options (agentrail creates a Bedrock guardrail) or existing_guardrail (the one "
                "you own), not both: drop guardrail_options to apply yours"
            )
        if self.guardrail_options is not None:
            self.guardrail_options.validate()
        if self.existing_guardrail is not None:
            self.existing_guardrail.validate()
        problem = contract.step_models_problem(self.step_models)
        if problem is not None:
            raise ValueError(problem)
        for spec in (self.model, *self.allowed_models, *self.step_models.values()):
            if not contract.MODEL_SPEC.match(spec):
                raise ValueError(contract.unknown_model_message(spec))
            if spec.startswith("openai:") and self.openai_api_key_secret is None:
                raise ValueError(f"model {spec!r} needs openai_api_key_secret (a Secrets Manager secret)")
        if self.otel_export is not None:
            self.otel_export.validate()
        if self.deployment_options is not None:
            self.deployment_options.validate()
        if self.shadow_options is not None:
            self.shadow_options.validate()
        for name in self.tool_secrets:
            if not TOOL_SECRET_NAME.fullmatch(name):
                raise ValueError(
                    f"tool_secrets name {name!r} must be 1-64 letters, digits, '_', '-' or '.': the name a tool passes to "
                    "context.secret(...)"
                )
        if self.agent_version is not None and not self.agent_version.strip():
            raise ValueError("agent_version is empty: pass a version, or None to have it computed at synth")
        for name, value, low, high in (
            ("max_steps", self.max_steps, 1, 100),
            ("token_budget", self.token_budget, 1, 10_000_000),
            ("max_output_tokens", self.max_output_tokens, 1, 64_000),
            ("max_tool_result_bytes", self.max_tool_result_bytes, 256, 6_000_000),
            ("max_request_bytes", self.max_request_bytes, 256, 6_000_000),
            ("memory_size", self.memory_size, 128, 10_240),
        ):
            if not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}, got {value}")
        for spec, price in self.prices.items():
            if len(price) not in (2, 4) or any(value < 0 for value in price):
                raise ValueError(
                    f"prices[{spec!r}] must be (input, output) or (input, output, cache_read, cache_write): USD per "
                    "million tokens, none negative"
                )
        if not self.runtime.name.startswith("python3."):
            raise ValueError(f"runtime must be a Python 3 runtime, got {self.runtime.name}")
        scaling = self.provisioned_scaling
        if scaling is not None:
            if not 1 <= scaling.min_capacity <= scaling.max_capacity:
                raise ValueError("provisioned_scaling needs 1 <= min_capacity <= max_capacity")
            if not 0.1 <= scaling.utilization_target <= 0.9:
                raise ValueError("provisioned_scaling.utilization_target must be between 0.1 and 0.9")
        provisioned = max(self.provisioned_concurrency or 0, scaling.max_capacity if scaling else 0)
        if self.provisioned_concurrency is not None and self.provisioned_concurrency < 1:
            raise ValueError("provisioned_concurrency must be at least 1")
        if self.reserved_concurrent_executions is not None and provisioned > self.reserved_concurrent_executions:
            raise ValueError(
                "reserved_concurrent_executions must be at least the provisioned concurrency "
                f"({provisioned}), or the alias could never use what it pays for"
            )


def bedrock_model_arns(scope: Construct, model_ids: Sequence[str]) -> list[str]:
    """The ARNs ``bedrock:InvokeModel`` is checked on for these Bedrock model ids: a foundation model in this Region;
    an inference profile (``us.``, ``eu.``, ...) and its foundation model in every Region the profile routes to."""
    stack = Stack.of(scope)
    arns: list[str] = []
    for model_id in model_ids:
        if model_id.startswith(contract.INFERENCE_PROFILE_PREFIXES):
            arns.append(stack.format_arn(service="bedrock", resource="inference-profile", resource_name=model_id))
            arns.append(f"arn:{stack.partition}:bedrock:*::foundation-model/{model_id.split('.', 1)[1]}")
        else:
            arns.append(f"arn:{stack.partition}:bedrock:{stack.region}::foundation-model/{model_id}")
    return arns


def companion_options(agent_options: AgentFunctionOptions | None, **overrides: Any) -> AgentFunctionOptions:
    """The options of a function that accompanies an agent but runs none (a notifier, a metrics emitter, a clean-up):
    what it shares with the agent's functions (log level, retention, redaction and key, the metrics namespace,
    OpenTelemetry export, runtime, architecture and deployment), nothing of the agent (models, secrets, prompts,
    guardrail, shadow), then ``overrides``."""
    agent = agent_options or AgentFunctionOptions()
    shared = {
        "log_level": agent.log_level,
        "log_retention": agent.log_retention,
        "log_redaction": agent.log_redaction,
        "log_encryption_key": agent.log_encryption_key,
        "metrics_namespace": agent.metrics_namespace,
        "otel_export": agent.otel_export,
        "runtime": agent.runtime,
        "architecture": agent.architecture,
        "deployment_options": agent.deployment_options,
    }
    return AgentFunctionOptions(**{**shared, **overrides})


@jsii.implements(IAspect)
class _GrantBedrockPrompts:
    """At synth, before the template is written: ``bedrock:GetPrompt`` on the Bedrock prompts the function's agent
    reads. An aspect, because the runtime names them in the same (batched) subprocess that computes the versions."""

    def __init__(self, function: AgentFunction) -> None:
        self._function = function
        self._done = False

    def visit(self, node: IConstruct) -> None:
        if not self._done and node.node.path == self._function.node.path:
            self._done = True
            self._function._grant_agent_prompts()


class AgentFunction(Construct):
    """A Lambda function serving an agentrail handler, published behind a ``live`` alias.

    It carries two layers (the ``agentrail`` runtime and its dependencies, both
    bundled without Docker), active X-Ray tracing, JSON logs into its own log
    group with retention, the Powertools environment, and an explicit memory
    size and timeout. Its role has no managed policies: only the grants made
    through this construct.

    Parameters
    ----------
    handler_code:
        Folder of the handler's code asset. Default: agentrail's stateless handler.
    handler:
        ``module.function`` inside it. Default: ``app.handler``.
    options:
        See :class:`AgentFunctionOptions`.

    Attributes
    ----------
    function, alias, role, log_group, handler_code, service_name (the ``service`` dimension of
    its metrics), agent_version, runtime_layer, dependencies_layer, agent_code_layer, deployment (the
    :class:`CanaryDeployment`, or None), pre_traffic_hook (the hook's AgentFunction, or None), shadow (the
    :class:`ShadowDeployment`: ``shadow.alias``, ``shadow.queue``, ``shadow.dead_letter_queue``, ``shadow.table``; or
    None), shadow_worker (its worker's AgentFunction, or None), bedrock_prompt_arns (the prompts it may read),
    serves_erasure
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler_code: str | Path | None = None,
        handler: str = "app.handler",
        options: AgentFunctionOptions | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.options = options = options or AgentFunctionOptions()
        options.validate()
        self._health_checks: list[dict[str, str]] = []
        code_dir = Path(handler_code) if handler_code is not None else handler_dir("stateless")
        self.handler_code = code_dir
        self.service_name = options.service_name or self._default_service_name()

        self.baseline: SecurityBaseline | None = baseline_for(self)
        baseline = self.baseline
        if baseline is not None and any(
            m.startswith("openai:") for m in (options.model, *options.allowed_models, *options.step_models.values())
        ):
            baseline.require_internet(
                f"{self.node.path} calls an OpenAI-compatible model", "use a bedrock: or local model in this stack"
            )
        self.called_services: set[str] = set()
        self.serves_erasure = False
        """Whether ``POST /erase`` is routed to this function (``serve_erasure``): see :meth:`when_serving_erasure`."""
        self._erasure_grants: list[Callable[[], object]] = []
        self._log_key = options.log_encryption_key or (baseline.key if baseline is not None else None)
        self.log_group = log_group(self, "LogGroup", retention=options.log_retention, encryption_key=self._log_key)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {self.node.path}",
        )
        self.runtime_layer = RuntimeLayer.of(self, runtime=options.runtime)
        self.dependencies_layer = DependenciesLayer.of(self, runtime=options.runtime, architecture=options.architecture)
        layers: list[lambda_.ILayerVersion] = [self.dependencies_layer, self.runtime_layer]
        self.agent_code_layer: lambda_.LayerVersion | None = None
        if options.agent_code:
            self.agent_code_layer = self._build_agent_code_layer(Path(options.agent_code), options.runtime)
            layers.append(self.agent_code_layer)

        self.runs_agent = code_dir.name not in AGENTLESS_HANDLERS
        """Whether this function loads the agent definition: only then does it call the models, read the OpenAI key
        and the tool secrets, read the Bedrock prompts and apply the guardrail."""
        environment = self._environment()
        # The runtime is asked for the version unless it is given and, for a function that runs the agent, for the
        # Bedrock prompts its role must read (one subprocess for every function of the synth).
        stamped = environment.get("AGENT_VERSION") or options.agent_version
        self._version_request: VersionRequest | None = None
        if self.runs_agent or stamped is None:
            self._version_request = queue_request(version_request(environment, agent_code=options.agent_code))
            stamped = stamped or version_token(self._version_request)
        environment["AGENT_VERSION"] = stamped
        self.agent_version: str = stamped
        """The agent version (a token resolved at synth): in the environment and the description of each version."""

        self.function = lambda_.Function(
            self,
            "Function",
            runtime=options.runtime,
            architecture=options.architecture,
            handler=handler,
            code=lambda_.Code.from_asset(str(code_dir), exclude=["__pycache__", "*.pyc", "__init__.py"]),
            layers=layers,
            memory_size=options.memory_size,
            timeout=options.timeout,
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=getattr(lambda_.ApplicationLogLevel, options.log_level),
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            reserved_concurrent_executions=options.reserved_concurrent_executions,
            environment=environment,
            description=f"agentrail {construct_id} ({options.model})",
            # A changed agent version changes the function's configuration, so `live` gets a new published version.
            current_version_options=lambda_.VersionOptions(description=f"agent_version {self.agent_version}"),
            # The stack's SecurityBaseline if any: its private subnets, security group and key (else none of them).
            vpc=baseline.vpc if baseline is not None else None,
            vpc_subnets=baseline.function_subnets if baseline is not None else None,
            security_groups=baseline.security_groups_for(internet=False) if baseline is not None else None,
            environment_encryption=baseline.key if baseline is not None else None,
        )
        if baseline is not None:
            baseline.key.grant_decrypt(self.role)  # Lambda decrypts the environment with the execution role
            self._grant_network_interfaces(baseline)
        if options.runtime.name == DEFAULT_RUNTIME.name:
            acknowledge(
                default_resource(self.function),
                "L1",
                f"{DEFAULT_RUNTIME.name} by design: its layers ship bytecode compiled by that same CPython, and the "
                "newer python3.14 has no interpreter on the build machine to compile it (see README, Layers)",
            )
        self.log_group.grant_write(self.role)
        self._skip_checkov()
        # CDK adds DependsOn on the execution role next to the GetAtt that already orders it (cfn-lint W3005).
        default_resource(self.function).add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        default_resource(self.function).add_metadata("agentrail:handler", code_dir.name)
        initial = options.provisioned_concurrency or (
            options.provisioned_scaling.min_capacity if options.provisioned_scaling else None
        )
        shadow = shadow_options_for(self, options.shadow_options, code_dir.name)
        live_version: lambda_.IVersion = self.function.current_version
        if shadow is not None and shadow.live_version is not None:
            # ``live`` stays on the version the user names; ``shadow`` takes the new one (see ShadowOptions).
            live_version = lambda_.Version.from_version_attributes(
                self, "HeldLiveVersion", lambda_=self.function, version=shadow.live_version
            )
        self.alias = lambda_.Alias(
            self,
            "LiveAlias",
            alias_name="live",
            version=live_version,
            provisioned_concurrent_executions=initial,
        )
        self.scalable_target = None
        if options.provisioned_scaling is not None:
            scaling = options.provisioned_scaling
            self.scalable_target = self.alias.add_auto_scaling(
                min_capacity=scaling.min_capacity, max_capacity=scaling.max_capacity
            )
            self.scalable_target.scale_on_utilization(utilization_target=scaling.utilization_target)

        self.guardrail: BedrockGuardrail | None = None
        """The Bedrock guardrail created from ``guardrail_options``, or None."""
        if self.runs_agent:  # a function that runs no agent calls no model, runs no tool and has nothing to guard
            self._grant_agent(options)
        self._acknowledge_tracing_policy()
        self.otel_layer: lambda_.ILayerVersion | None = None
        if options.otel_export is not None:
            self.export_otel(options.otel_export)
        self.bedrock_prompt_arns: list[str] = []
        """The Bedrock prompts this function may read (``bedrock:GetPrompt``); filled at synth."""
        if self.runs_agent:
            Aspects.of(self).add(_GrantBedrockPrompts(self))
        self.deployment: CanaryDeployment | None = None
        self.pre_traffic_hook: AgentFunction | None = None
        deployment = deployment_options_for(self, options.deployment_options)
        if deployment is not None:
            self._build_deployment(deployment)
        self.shadow: ShadowDeployment | None = None
        self.shadow_worker: AgentFunction | None = None
        if shadow is not None:
            self._build_shadow(shadow)

    def _grant_agent(self, options: AgentFunctionOptions) -> None:
        """What running the agent needs: its Bedrock models, the OpenAI key, the tool secrets and the guardrail."""
        bedrock_models = [
            m.removeprefix("bedrock:")
            for m in dict.fromkeys((options.model, *options.allowed_models, *options.step_models.values()))
            if m.startswith("bedrock:")
        ]
        if bedrock_models:
            self.grant_model_access(*bedrock_models)
        if options.openai_api_key_secret is not None:
            self.grant_secret_read(options.openai_api_key_secret)
        self._build_guardrail(options)
        for secret in options.tool_secrets.values():
            self.grant_tool_secret(secret)

    def _build_guardrail(self, options: AgentFunctionOptions) -> None:
        """Apply the stack's guardrail with ``guardrail_options`` (created once per stack), or the existing one."""
        if options.guardrail_options is not None:
            self.guardrail = BedrockGuardrail.of(self, options=options.guardrail_options)
            self.apply_guardrail(
                self.guardrail.guardrail_id,
                self.guardrail.guardrail_version,
                self.guardrail.guardrail_arn,
                encryption_key=options.guardrail_options.encryption_key,
            )
        elif options.existing_guardrail is not None:
            existing = options.existing_guardrail
            self.apply_guardrail(
                existing.guardrail,
                existing.version,
                guardrail_arn(self, existing.guardrail),
                encryption_key=existing.encryption_key,
            )

    def _build_shadow(self, shadow: ShadowOptions) -> None:
        """The ``shadow`` alias on the new version, the shadow queue, its worker and the comparison table."""
        timeout = Duration.seconds(min(900, int(self.options.timeout.to_seconds()) + 30))
        worker = AgentFunction(
            self,
            "ShadowWorker",
            handler_code=handler_dir(SHADOW_WORKER_HANDLER),
            options=replace(
                self.options,
                deployment_options=None,
                shadow_options=None,
                otel_export=None,
                service_name=f"{self.service_name}-shadow-worker",
                agent_version=self.agent_version,
                timeout=timeout,
                memory_size=256,
                reserved_concurrent_executions=None,
                provisioned_concurrency=None,
                provisioned_scaling=None,
            ),
        )
        # The shadow holds copies of live requests and answers: under the key of the function's own logs by default.
        key = shadow.encryption_key or self._log_key
        self.shadow = ShadowDeployment(
            self,
            "Shadow",
            function=self.function,
            candidate=self.function.current_version,
            worker=worker.function,
            options=shadow,
            encryption_key=key,
        )
        self.shadow_worker = worker
        self.calls_service("sqs", "dynamodb")
        worker.calls_service("lambda", "dynamodb", "sqs")
        if key is not None:
            worker.encrypt_logs(key)
            worker.acknowledge_key_grants()
            self.acknowledge_key_grants()

    def _build_deployment(self, deployment: DeploymentOptions) -> None:
        """The CodeDeploy deployment group of ``live``, with the pre-traffic hook when this function runs an agent."""
        datasets = deployment.datasets() if deployment.pre_traffic_hook else None
        if deployment.pre_traffic_hook and datasets is None:
            Annotations.of(self).add_warning_v2(
                "agentrail:no-evals",
                "no evals/ folder in the CDK app's folder: the canary runs without a pre-traffic hook. Add "
                "evals/<agent>/*.jsonl with cases tagged smoke, or pass DeploymentOptions(evals_dir=...) or "
                "DeploymentOptions(pre_traffic_hook=False)",
            )
        if datasets is not None and self.handler_code.name not in NO_AGENT_HANDLERS:
            hook = AgentFunction(
                self,
                "PreTrafficHook",
                handler_code=handler_dir(PRE_TRAFFIC_HOOK_HANDLER),
                options=replace(
                    self.options,
                    deployment_options=None,
                    service_name=self.service_name,  # EvalScore goes out under the function's service dimension
                    agent_version=self.agent_version,
                    timeout=Duration.minutes(5),
                    reserved_concurrent_executions=None,
                    provisioned_concurrency=None,
                    provisioned_scaling=None,
                    environment={
                        **self.options.environment,
                        "AGENT_CANARY_MIN_EVAL_SCORE": str(deployment.min_eval_score),
                    },
                ),
            )
            hook.function.add_layers(EvalsLayer.of(self, datasets=datasets, runtime=self.options.runtime))
            # The one version this deployment shifts to: the hook reads its AGENT_VERSION, nothing else.
            hook.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["lambda:GetFunctionConfiguration"], resources=[self.function.current_version.function_arn]
                )
            )
            hook.calls_service("codedeploy", "lambda")
            self.pre_traffic_hook = hook
        self.deployment = CanaryDeployment(
            self,
            "Deployment",
            alias=self.alias,
            service_name=self.service_name,
            metrics_namespace=self.options.metrics_namespace,
            timeout=self.options.timeout,
            options=deployment,
            pre_hook=self.pre_traffic_hook.function if self.pre_traffic_hook is not None else None,
        )
        if self.pre_traffic_hook is not None:
            self.pre_traffic_hook.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["codedeploy:GetDeployment"],
                    resources=[self.deployment.deployment_group.deployment_group_arn],
                )
            )

    def export_otel(self, otel: OtelExportOptions) -> None:
        """Add the ADOT Python layer and its ``/opt/otel-instrument`` wrapper (what CDK's ``adot_instrumentation``
        does), and the collector configuration: see :class:`OtelExportOptions`. Once per function."""
        if self.otel_layer is not None:
            raise ValueError(f"{self.node.path} already exports through OpenTelemetry")
        otel.validate()
        arn = otel.layer_version.layer_arn(Stack.of(self), self.options.architecture)
        self.otel_layer = lambda_.LayerVersion.from_layer_version_arn(self, "OtelLayer", arn)
        self.function.add_layers(self.otel_layer)
        for key, value in otel.environment.items():
            self.function.add_environment(key, value)
        self.function.add_environment("AWS_LAMBDA_EXEC_WRAPPER", "/opt/otel-instrument")
        if otel.collector_config_uri:
            self.function.add_environment("OPENTELEMETRY_COLLECTOR_CONFIG_URI", otel.collector_config_uri)

    # -- grants -------------------------------------------------------------------

    def grant_model_access(self, *model_ids: str) -> iam.Grant:
        """Allow Converse (``bedrock:InvokeModel``) on the given Bedrock models and their health probe.

        Inference profile ids (``us.``, ``eu.``, ...) get the profile and the
        foundation model in every Region the profile routes to.
        """
        arns = bedrock_model_arns(self, model_ids)
        grant = iam.Grant.add_to_principal(
            grantee=self.function,
            actions=["bedrock:InvokeModel", "bedrock:GetFoundationModel", "bedrock:GetInferenceProfile"],
            resource_arns=arns,
        )
        for model_id in model_ids:
            if model_id.startswith(contract.INFERENCE_PROFILE_PREFIXES):
                self.acknowledge_policy(
                    f"IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/{model_id.split('.', 1)[1]}]",
                    "A cross-Region inference profile serves a request from the foundation model in any Region of its "
                    "geography, so Bedrock checks InvokeModel on that one model in every Region: one model, nothing else.",
                )
        self.calls_service("bedrock-runtime", "bedrock")
        return grant

    def apply_guardrail(self, guardrail: str, version: str, arn: str, *, encryption_key: kms.IKey | None = None) -> iam.Grant:
        """Have this function apply a Bedrock guardrail: ``AGENT_BEDROCK_GUARDRAIL_ID`` and
        ``AGENT_BEDROCK_GUARDRAIL_VERSION`` in its environment, and ``bedrock:ApplyGuardrail`` on exactly that
        guardrail's ARN (what both ``ApplyGuardrail`` and Converse with a ``guardrailConfig`` are authorized on).
        A guardrail under a customer managed ``encryption_key`` is decrypted with the caller's permissions: the
        function gets ``kms:Decrypt`` on that key."""
        self.function.add_environment(contract.BEDROCK_GUARDRAIL_ID_ENV, guardrail)
        self.function.add_environment(contract.BEDROCK_GUARDRAIL_VERSION_ENV, version)
        self.calls_service("bedrock-runtime")
        if encryption_key is not None:
            encryption_key.grant_decrypt(self.function)
        return iam.Grant.add_to_principal(grantee=self.function, actions=["bedrock:ApplyGuardrail"], resource_arns=[arn])

    def grant_prompt_read(self, *identifiers: str) -> iam.Grant:
        """Allow ``bedrock:GetPrompt`` on exactly these Bedrock Prompt Management prompts (IDs, in this stack's account
        and Region, or ARNs; either may end in ``:<version>``, the ARN of one version). In a stack with a SecurityBaseline the function gets the ``bedrock-agent`` endpoint.

        An agent whose definition's system prompt is ``prompt_from_bedrock(...)`` gets this grant at synth: the
        runtime names its prompts next to its version (nothing calls AWS).
        """
        stack = Stack.of(self)
        arns = [
            identifier
            if identifier.startswith("arn:")
            else stack.format_arn(service="bedrock", resource="prompt", resource_name=identifier)
            for identifier in identifiers
        ]
        grant = iam.Grant.add_to_principal(grantee=self.function, actions=["bedrock:GetPrompt"], resource_arns=arns)
        self.bedrock_prompt_arns.extend(arn for arn in arns if arn not in self.bedrock_prompt_arns)
        self.calls_service("bedrock-agent")
        return grant

    def version_answer(self) -> VersionAnswer | None:
        """What the runtime answers at synth for this function's agent: its version, the Bedrock prompts it reads and
        whether a response cache may serve it (see :class:`~agentrail_constructs.agent_version.VersionAnswer`). Asked
        now, with every function queued so far (one subprocess); None for a function that runs no agent and whose
        version was given."""
        return resolve_answer(self._version_request) if self._version_request is not None else None

    def _grant_agent_prompts(self) -> None:
        """Grant what the runtime reported this function's agent reads at cold start (see :meth:`grant_prompt_read`)."""
        assert self._version_request is not None  # queued for every function that runs the agent
        answer = resolve_answer(self._version_request)
        if answer.prompts is None:
            Annotations.of(self).add_warning_v2(
                "agentrail:prompt-grants-unknown",
                "the runtime could not load this agent's definition at synth, so no Bedrock prompt it may read was "
                "granted: `pip install 'agentrail-aws[runtime]'` in the app's Python, or call grant_prompt_read()",
            )
            return
        # The prompt and the version read: the service authorization reference does not say which of the two ARNs
        # GetPrompt with a promptVersion is authorized on, and both name that one version of that one prompt.
        identifiers = list(
            dict.fromkeys(
                name
                for prompt in answer.prompts
                for name in (str(prompt["bedrock_prompt"]), f"{prompt['bedrock_prompt']}:{prompt['version']}")
            )
        )
        if identifiers:
            self.grant_prompt_read(*identifiers)

    def grant_secret_read(self, secret: secretsmanager.ISecret, *, health_check: bool = True) -> iam.Grant:
        """Allow reading exactly ``secret`` (a secret known by name gets the six-character suffix Secrets Manager
        adds), and decrypting with its customer managed key, if it has one, only through Secrets Manager: the
        secret's own ``grant_read``. Records that this function calls Secrets Manager (its VPC endpoint under a
        SecurityBaseline) and, with ``health_check``, has ``GET /health`` describe the secret. Default: health check."""
        grant = secret.grant_read(self.function)
        self.calls_service("secretsmanager")
        if health_check:
            self.add_health_check("secretsmanager", secret.secret_arn)
        return grant

    def grant_tool_secret(self, secret: secretsmanager.ISecret) -> iam.Grant:
        """Allow reading exactly ``secret``, what a tool's ``context.secret`` calls (see :meth:`grant_secret_read`);
        ``GET /health`` does not probe it."""
        return self.grant_secret_read(secret, health_check=False)

    def when_serving_erasure(self, grant: Callable[[], object]) -> None:
        """Run ``grant`` (what a store lets erasure do: the daily budgets' DeleteItem) once ``POST /erase`` is routed to
        this function: now if it is, else when :meth:`serve_erasure` marks it, so the order of wiring does not matter."""
        if self.serves_erasure:
            grant()
        else:
            self._erasure_grants.append(grant)

    def serve_erasure(self) -> None:
        """Mark this function as the one ``POST /erase`` is routed to, and run the grants waiting for it."""
        self.serves_erasure = True
        for grant in self._erasure_grants:
            grant()
        self._erasure_grants.clear()

    def calls_service(self, *services: str) -> None:
        """Record that this function's code calls these AWS services (``sqs``, ``states``, ``events``, ...): in a
        stack with a SecurityBaseline each gets its VPC endpoint."""
        self.called_services.update(services)
        if self.baseline is not None:
            for service in services:
                self.baseline.add_interface_endpoint(service)

    def allow_internet_egress(self, what: str, fix: str) -> None:
        """This function must reach the internet (webhooks, an OpenAI-compatible API): with a SecurityBaseline, the
        synth fails naming ``fix`` unless the baseline has a NAT gateway, and the function gets HTTPS to anywhere."""
        if self.baseline is None:
            return
        self.baseline.require_internet(what, fix)
        groups = self.baseline.security_groups_for(internet=True)
        for group in groups[1:]:
            self.function.connections.add_security_group(group)
        # lambda.Function renders its VpcConfig when created: name the groups on the resource too.
        default_resource(self.function).add_property_override(
            "VpcConfig.SecurityGroupIds", [group.security_group_id for group in groups]
        )

    def add_health_check(self, kind: contract.HealthCheckKind, name: str) -> None:
        """Have ``GET /health`` prove that this dependency is reachable (the grant must allow the probe)."""
        if kind not in contract.HEALTH_CHECK_KINDS:
            raise ValueError(f"unknown health check kind {kind!r}; known: {', '.join(contract.HEALTH_CHECK_KINDS)}")
        self._health_checks.append({"kind": kind, "name": name})
        self.calls_service(kind)
        self.function.add_environment("AGENT_HEALTH_CHECKS", Stack.of(self).to_json_string(list(self._health_checks)))

    def add_environment(self, key: str, value: str) -> None:
        self.function.add_environment(key, value)

    def encrypt_logs(self, key: kms.IKey) -> None:
        """Encrypt this function's log group, and its pre-traffic hook's and shadow worker's, with the customer
        managed ``key`` (the key of the data it handles)."""
        encrypt_log_group(self.log_group, key)
        for companion in (self.pre_traffic_hook, self.shadow_worker):
            if companion is not None:
                companion.encrypt_logs(key)

    def acknowledge_key_grants(self) -> None:
        """Acknowledge the wildcard KMS actions of CDK's grants on resources under a customer managed key."""
        reason = (
            "CDK's grants on a table, queue or bucket under a customer managed key add kms:GenerateDataKey* and "
            "kms:ReEncrypt* (the data-key variants DynamoDB, SQS and S3 use on the caller's behalf); the statement "
            "names that one key only."
        )
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            self.acknowledge_policy(f"IAM5[Action::{action}]", reason)

    def acknowledge_policy(self, rule: str, reason: str) -> None:
        """Acknowledge a cdk-nag finding on this function's own policy (and nowhere else)."""
        acknowledge(self._default_policy(), rule, reason)

    # -- helpers ------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        o = self.options
        if not self.runs_agent:  # neither the agent's models nor its secrets: the settings load without them
            o = replace(o, model="local", allowed_models=(), step_models={}, openai_api_key_secret=None, tool_secrets={})
        env = {
            "POWERTOOLS_SERVICE_NAME": self.service_name,
            "POWERTOOLS_METRICS_NAMESPACE": o.metrics_namespace,
            "AGENT_MODEL": o.model,
            "AGENT_DEFINITION": o.agent_definition,
            "AGENT_MAX_STEPS": str(o.max_steps),
            "AGENT_TOKEN_BUDGET": str(o.token_budget),
            "AGENT_MAX_OUTPUT_TOKENS": str(o.max_output_tokens),
            "AGENT_MAX_TOOL_RESULT_BYTES": str(o.max_tool_result_bytes),
            "AGENT_MAX_REQUEST_BYTES": str(o.max_request_bytes),
        }
        if o.allowed_models:
            env["AGENT_ALLOWED_MODELS"] = ",".join(o.allowed_models)
        if o.step_models:
            env["AGENT_STEP_MODELS"] = json.dumps(dict(o.step_models), sort_keys=True)
        if o.system_prompt:
            env["AGENT_SYSTEM_PROMPT"] = o.system_prompt
        if o.prices:
            env["AGENT_PRICE_TABLE"] = json.dumps({k: _price(v) for k, v in o.prices.items()}, sort_keys=True)
        if not o.prompt_caching:
            env["AGENT_PROMPT_CACHING"] = "false"
        if o.openai_api_key_secret is not None:
            env["AGENT_OPENAI_API_KEY_SECRET"] = o.openai_api_key_secret.secret_arn
        if o.openai_base_url:
            env["AGENT_OPENAI_BASE_URL"] = o.openai_base_url
        if o.store_redacted:
            env["AGENT_STORE_REDACTED"] = "true"
        if not o.log_redaction:
            env["AGENT_LOG_REDACTION"] = "false"
        if o.tool_secrets:
            env["AGENT_TOOL_SECRETS"] = Stack.of(self).to_json_string(
                {name: secret.secret_arn for name, secret in sorted(o.tool_secrets.items())}
            )
        env.update(o.environment)
        return env

    def _grant_network_interfaces(self, baseline: SecurityBaseline) -> None:
        """What Lambda does with the execution role to attach the function to its subnets: network interfaces in
        exactly those subnets and security groups (AWSLambdaVPCAccessExecutionRole, scoped; Describe* needs ``*``)."""
        stack = Stack.of(self)
        interfaces = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
        subnets = [
            stack.format_arn(service="ec2", resource="subnet", resource_name=subnet.subnet_id)
            for subnet in baseline.vpc.select_subnets(subnet_type=baseline.function_subnets.subnet_type).subnets
        ]
        groups = [
            stack.format_arn(service="ec2", resource="security-group", resource_name=group.security_group_id)
            for group in baseline.security_groups_for(internet=baseline.internet_security_group is not None)
        ]
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["ec2:CreateNetworkInterface"], resources=[interfaces, *subnets, *groups])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
                resources=[interfaces],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"], resources=["*"])
        )
        self.acknowledge_policy(
            f"IAM5[Resource::{nag_arn_prefix(self, 'ec2')}:network-interface/*]",
            "Lambda creates and deletes the function's network interfaces itself; their ids are unknown in advance. "
            "Creating one is allowed only in the SecurityBaseline's subnets and security groups.",
        )

    def _default_service_name(self) -> str:
        """The construct path below the stack in kebab case (``stateless-agent-agent``), unique per function."""
        stack = Stack.of(self)
        ids = [scope.node.id for scope in self.node.scopes if scope is not stack and scope.node.scopes.count(stack)]
        return "-".join(re.sub(r"(?<!^)(?=[A-Z])", "-", part).lower() for part in ids if part)

    def _build_agent_code_layer(self, path: Path, runtime: lambda_.Runtime) -> lambda_.LayerVersion:
        if not path.is_dir():
            raise ValueError(f"agent_code must be a folder, got {path}")
        from aws_cdk import AssetHashType, BundlingOptions, DockerImage

        layer = lambda_.LayerVersion(
            self,
            "AgentCodeLayer",
            description=f"agent code of {self.node.path}",
            compatible_runtimes=[runtime],
            code=lambda_.Code.from_asset(
                str(path),
                asset_hash_type=AssetHashType.SOURCE,
                exclude=["__pycache__", "*.pyc"],
                bundling=BundlingOptions(
                    image=DockerImage.from_registry(f"public.ecr.aws/sam/build-{runtime.name}"),
                    command=["bash", "-c", "mkdir -p /asset-output/python && cp -r /asset-input/. /asset-output/python/"],
                    local=_CopyPackage(path, "."),
                ),
            ),
        )
        default_resource(layer).add_metadata("agentrail:layer", "agent")
        return layer

    def _skip_checkov(self) -> None:
        resource = default_resource(self.function)
        hardened = self.baseline is not None  # the environment is under the stack's key, the function in its VPC
        if not hardened:
            skip_checkov(
                resource,
                "CKV_AWS_173",
                "The environment holds only names, ARNs and settings, never a secret: secrets are read from Secrets "
                "Manager at run time, so a customer managed key here would protect nothing.",
            )
        skip_checkov(
            resource,
            "CKV_AWS_116",
            "Nothing invokes this function asynchronously: API Gateway and Step Functions invoke it synchronously, "
            "and event source mappings poll queues and streams that have their own dead-letter queues. A function "
            "that is an asynchronous target (the webhook notifier) gets a dead-letter queue and loses this skip.",
        )
        if not hardened:
            skip_checkov(
                resource,
                "CKV_AWS_117",
                "The functions call only IAM-authenticated AWS APIs and the model provider over TLS and serve no network "
                "of their own; a VPC would add NAT or interface endpoints billed by the hour while idle.",
            )
        self._skip_reserved_concurrency(resource)

    def _skip_reserved_concurrency(self, resource: CfnResource) -> None:
        if self.options.reserved_concurrent_executions is None:
            skip_checkov(
                resource,
                "CKV_AWS_115",
                "No reservation by default: it fails the deploy in accounts whose concurrency quota is still 10. The "
                "API stage throttle and the SQS event sources' MaximumConcurrency cap load; set "
                "reserved_concurrent_executions to reserve (README, Concurrency).",
            )

    def _default_policy(self) -> CfnResource:
        policy = self.role.node.try_find_child("DefaultPolicy")
        assert policy is not None
        return default_resource(policy)

    def _acknowledge_tracing_policy(self) -> None:
        self.acknowledge_policy(
            "IAM5[Resource::*]",
            "X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level permissions; "
            "CDK adds them with Resource '*' for active tracing."
            + (
                " In the SecurityBaseline's VPC, so do the network interface actions Lambda takes with the execution "
                "role to attach the function to its subnets."
                if self.baseline is not None
                else ""
            ),
        )


#: The price table's keys (``AGENT_PRICE_TABLE``), in the order ``AgentFunctionOptions.prices`` gives them.
_PRICE_KEYS = ("input_per_million", "output_per_million", "cache_read_per_million", "cache_write_per_million")


def _price(values: tuple[float, ...]) -> dict[str, float]:
    """One ``prices`` entry as the runtime's price table reads it."""
    return dict(zip(_PRICE_KEYS, values, strict=False))
