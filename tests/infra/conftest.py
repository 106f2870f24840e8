"""Fixtures of the infra tier: CDK apps built with the CLI's context, and the real app synthesized once.

Every CDK call goes through one jsii (Node) process per pytest worker, so the
templates that tests only read are synthesized once per session. Fine-grained
tests skip layer bundling (``aws:cdk:bundling-stacks: []``); tests that read
asset contents opt in to real bundling.
"""

from __future__ import annotations

import compileall
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"

# jsii starts Node from PATH on the first aws_cdk import; the system Node 20 is
# end-of-life and prints a banner on every call, the pinned Node 24 (package.json) does not.
if str(NODE_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

import aws_cdk as cdk  # noqa: E402
import pytest  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from constructs import IConstruct  # noqa: E402

from agentrail_constructs import (  # noqa: E402
    PATTERN_STACKS,
    AsyncOptions,
    MultiAgentOptions,
    SecurityBaselineOptions,
    SessionOptions,
    StatelessAgent,
)
from agentrail_constructs.app_config import AppConfig  # noqa: E402
from agentrail_constructs.sources import runtime_package_dir  # noqa: E402

#: Account and Region of test stacks, so ARNs come out as literal strings.
TEST_ENV = cdk.Environment(account="123456789012", region="us-east-1")
REAL_APP = REPO_ROOT / "app.py"
LAYER_APP = Path(__file__).with_name("layer_app.py")
DEFAULT_STACK_PREFIX = "Agentrail"


def cli_context(*, bundling: bool = False) -> dict[str, Any]:
    """The context ``cdk synth`` gives the app: cdk.json's ``context`` plus asset and path metadata.

    Asset metadata (``aws:asset:path``) is what ``sam local`` reads; path metadata
    (``aws:cdk:path``) ties a template resource to the construct cdk-nag names.

    Parameters
    ----------
    bundling:
        Build the layer assets. Default: false, which skips bundling in every
        stack (the asset then points at the unbundled source).
    """
    context: dict[str, Any] = dict(json.loads((REPO_ROOT / "cdk.json").read_text())["context"])
    context["aws:cdk:enable-asset-metadata"] = True
    context["aws:cdk:enable-path-metadata"] = True
    if not bundling:
        context["aws:cdk:bundling-stacks"] = []
    return context


def new_app(outdir: Path, *, bundling: bool = False, context: Mapping[str, Any] | None = None) -> cdk.App:
    """An in-process ``cdk.App`` with the CLI's context, writing its cloud assembly to ``outdir``."""
    return cdk.App(outdir=str(outdir), context={**cli_context(bundling=bundling), **(context or {})})


@pytest.fixture(scope="session")
def app_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., cdk.App]:
    """Build as many apps as tests need, each with its own output folder (usable from any fixture scope)."""

    def make(*, bundling: bool = False, context: Mapping[str, Any] | None = None) -> cdk.App:
        return new_app(tmp_path_factory.mktemp("cdk.out"), bundling=bundling, context=context)

    return make


@pytest.fixture(scope="session")
def stack_env() -> cdk.Environment:
    """The account and Region of test stacks."""
    return TEST_ENV


@pytest.fixture
def stack(app_factory: Callable[..., cdk.App]) -> cdk.Stack:
    """An empty stack in the test account and Region, bundling skipped."""
    return cdk.Stack(app_factory(), "Test", env=TEST_ENV)


@pytest.fixture(scope="session")
def stateless_template(app_factory: Callable[..., cdk.App]) -> Template:
    """A ``StatelessAgent`` with every default, for the many tests that only read it."""
    stack = cdk.Stack(app_factory(), "Test", env=TEST_ENV)
    StatelessAgent(stack, "Agent")
    return Template.from_stack(stack)


# -- the real app and other apps run the way the CLI runs them -----------------------


@dataclass(frozen=True)
class CloudAssembly:
    """What a CDK app run wrote into ``outdir``, with its exit code and stderr.

    A failed synth still leaves ``validation-report.json``, so cdk-nag tests
    can name the findings; reading a template asserts that the synth passed.
    """

    outdir: Path
    returncode: int
    stderr: str

    def assert_synthesized(self) -> None:
        assert self.returncode == 0, f"synth failed (exit {self.returncode}):\n{self.stderr[-4000:]}"

    @property
    def report(self) -> dict[str, Any]:
        """The parsed ``validation-report.json`` of the policy-validation plugins (cdk-nag)."""
        path = self.outdir / "validation-report.json"
        assert path.is_file(), f"no validation report; did the app register cdk-nag?\n{self.stderr[-4000:]}"
        return json.loads(path.read_text())

    def template_path(self, stack_name: str) -> Path:
        self.assert_synthesized()
        return self.outdir / f"{stack_name}.template.json"

    def template(self, stack_name: str) -> dict[str, Any]:
        return json.loads(self.template_path(stack_name).read_text())

    @staticmethod
    def pattern_stack_name(pattern: str) -> str:
        """The stack name app.py gives ``pattern`` with the default ``stack_prefix``."""
        config = AppConfig(patterns=(pattern,), stack_prefix=DEFAULT_STACK_PREFIX, model="local", auth="iam")
        return config.stack_name(pattern)


def run_cdk_app(
    script: Path,
    outdir: Path,
    *,
    context: Mapping[str, Any] | None = None,
    bundling: bool = True,
    environment: Mapping[str, str] | None = None,
) -> CloudAssembly:
    """Run a CDK app as ``cdk synth`` does: a child process told its context and output folder by environment.

    ``CDK_DOCKER=/bin/false`` makes any attempt to bundle in a container fail
    the synth, so a passing run proves that every asset was built locally.
    ``environment`` adds variables, e.g. the ``CDK_DEFAULT_ACCOUNT`` and
    ``CDK_DEFAULT_REGION`` the CLI sets when it has credentials.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("CDK_")}
    env.update(
        {
            "CDK_OUTDIR": str(outdir),
            "CDK_CONTEXT_JSON": json.dumps({**cli_context(bundling=bundling), **(context or {})}),
            "CDK_DOCKER": "/bin/false",
            **(environment or {}),
        }
    )
    result = subprocess.run(
        [sys.executable, str(script)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    return CloudAssembly(outdir=outdir, returncode=result.returncode, stderr=result.stderr)


def synthesize_real_app(
    outdir: Path,
    *,
    patterns: Iterable[str] = tuple(PATTERN_STACKS),
    bundling: bool = True,
    environment: Mapping[str, str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> CloudAssembly:
    """Synthesize ``app.py`` for ``patterns`` (default: every registered pattern) with cdk-nag, as ``cdk synth`` does.

    ``context`` adds ``-c`` values (``{"session_concurrency": "enqueue"}``).
    Returns the cloud assembly folder; its ``report`` is the parsed ``validation-report.json``.
    """
    return run_cdk_app(
        REAL_APP,
        outdir,
        context={**(context or {}), "patterns": ",".join(patterns)},
        bundling=bundling,
        environment=environment,
    )


@pytest.fixture(scope="session")
def real_app(tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    """app.py synthesized once per session with every pattern in ``PATTERN_STACKS``, layers bundled."""
    return synthesize_real_app(tmp_path_factory.mktemp("real-app") / "cdk.out")


@pytest.fixture(scope="session")
def real_app_strict(tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    """app.py with every pattern, every DeprecationWarning an error: our own app uses no deprecated name (bundling skipped)."""
    return synthesize_real_app(
        tmp_path_factory.mktemp("real-app-strict") / "cdk.out",
        bundling=False,
        environment={"PYTHONWARNINGS": "error::DeprecationWarning"},
    )


@pytest.fixture(scope="session")
def real_app_in_an_account(tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    """app.py as ``cdk deploy`` synthesizes it with credentials: account and Region known (bundling skipped)."""
    return synthesize_real_app(
        tmp_path_factory.mktemp("real-app-env") / "cdk.out",
        bundling=False,
        environment={"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"},
    )


def synthesize_layer_app(outdir: Path, cache_dir: Path) -> CloudAssembly:
    """layer_app.py synthesized with real bundling, its dependencies layers built into the layer cache ``cache_dir``.

    The runtime package's source is byte-compiled first (by this, the host's,
    interpreter), so its folders hold ``__pycache__`` the way a developer's
    checkout does: tests can then show that the layer ships only bytecode of
    the function's runtime.
    """
    compileall.compile_dir(runtime_package_dir(), quiet=1)
    assembly = run_cdk_app(LAYER_APP, outdir, environment={"AGENTRAIL_CACHE_DIR": str(cache_dir)})
    assembly.assert_synthesized()
    return assembly


@pytest.fixture(scope="session")
def layer_app(tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    """layer_app.py (one AgentFunction per Lambda architecture) synthesized from an empty layer cache."""
    return synthesize_layer_app(tmp_path_factory.mktemp("layer-app") / "cdk.out", tmp_path_factory.mktemp("layer-cache"))


@pytest.fixture(scope="session")
def layer_app_rebuilt(tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    """layer_app.py synthesized again, from another empty layer cache."""
    return synthesize_layer_app(
        tmp_path_factory.mktemp("layer-app-rebuilt") / "cdk.out", tmp_path_factory.mktemp("layer-cache-rebuilt")
    )


#: Variants of the real app worth their own cdk-nag and cfn-lint run: name -> (pattern, extra ``-c`` context).
REAL_APP_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "stateful-enqueue": ("stateful", {"session_concurrency": "enqueue"}),
    "stateless-shadow": ("stateless", {"shadow_percent": "10"}),
    "stateless-guardrail": ("stateless", {"bedrock_guardrail": "true"}),
    "async-budgets": ("async", {"budget_tenant_daily_usd": "5", "budget_agent_daily_tokens": "2000000"}),
    "multiagent-budgets": ("multiagent", {"budget_tenant_daily_usd": "5", "budget_agent_daily_tokens": "2000000"}),
    "hierarchical-budgets": ("hierarchical", {"budget_tenant_daily_usd": "5", "budget_agent_daily_tokens": "2000000"}),
}


@pytest.fixture(scope="session")
def real_app_variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, CloudAssembly]]:
    """Each of ``REAL_APP_VARIANTS`` synthesized once with cdk-nag (bundling skipped): name -> (pattern, assembly)."""
    return {
        name: (
            pattern,
            synthesize_real_app(
                tmp_path_factory.mktemp(f"real-app-{name}") / "cdk.out", patterns=(pattern,), bundling=False, context=context
            ),
        )
        for name, (pattern, context) in REAL_APP_VARIANTS.items()
    }


#: ``-c`` values that turn app.py into the delivery pipeline (a connection ARN of the test account).
PIPELINE_CONNECTION_ARN = "arn:aws:codeconnections:us-east-1:123456789012:connection/0f1e2d3c-aaaa-bbbb-cccc-000011112222"
PIPELINE_CONTEXT: dict[str, Any] = {"pipeline": "acme/agents", "pipeline_connection_arn": PIPELINE_CONNECTION_ARN}
#: The patterns the pipeline fixture deploys: one whose scenarios the OpenAPI document names, one it cannot tell apart.
PIPELINE_PATTERNS = ("stateless", "hierarchical")
PIPELINE_STACK_NAME = f"{DEFAULT_STACK_PREFIX}-Pipeline"


@pytest.fixture(scope="session")
def real_app_pipeline(tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    """app.py with ``-c pipeline=acme/agents -c pipeline_connection_arn=...`` in the test account, with cdk-nag
    (bundling skipped): one pipeline stack whose Staging and Production stages hold the stateless and hierarchical
    stacks."""
    return synthesize_real_app(
        tmp_path_factory.mktemp("real-app-pipeline") / "cdk.out",
        patterns=PIPELINE_PATTERNS,
        bundling=False,
        environment=IN_TEST_ACCOUNT,
        context=PIPELINE_CONTEXT,
    )


#: What ``cdk synth`` with credentials puts in ``cdk.context.json`` for the test account in us-east-1: the AZs the
#: VPC spreads over, and the S3 and DynamoDB prefix lists (AWS's ids there) the hardened profile's egress names.
HARDENED_LOOKUPS: dict[str, Any] = {
    f"availability-zones:account={TEST_ENV.account}:region={TEST_ENV.region}": ["us-east-1a", "us-east-1b", "us-east-1c"],
    **{
        f"cc-api-provider:account={TEST_ENV.account}:expectedMatchCount=exactly-one:propertiesToReturn.0=PrefixListId:"
        f"propertyMatch.PrefixListName=com.amazonaws.{TEST_ENV.region}.{service}:region={TEST_ENV.region}:"
        "typeName=AWS$:$:EC2$:$:PrefixList": [{"PrefixListId": prefix_list}]
        for service, prefix_list in (("s3", "pl-63a5400a"), ("dynamodb", "pl-02cd2c6b"))
    },
}
#: The hardened profile as the suite synthesizes it: no egress path, so no webhooks (they would fail the synth).
HARDENED_CONTEXT: dict[str, Any] = {"security": "hardened", "webhooks": "false", **HARDENED_LOOKUPS}
IN_TEST_ACCOUNT = {"CDK_DEFAULT_ACCOUNT": str(TEST_ENV.account), "CDK_DEFAULT_REGION": str(TEST_ENV.region)}


@pytest.fixture(scope="session")
def hardened_lookups() -> dict[str, Any]:
    """``HARDENED_LOOKUPS``: the context values a hardened stack in the test account looks up."""
    return dict(HARDENED_LOOKUPS)


@pytest.fixture(scope="session")
def real_app_hardened(tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    """app.py with every pattern under ``-c security=hardened -c webhooks=false`` in the test account, with cdk-nag.

    Bundling is skipped: the layers are the standard profile's, bundled once by ``real_app``.
    """
    return synthesize_real_app(
        tmp_path_factory.mktemp("real-app-hardened") / "cdk.out",
        bundling=False,
        environment=IN_TEST_ACCOUNT,
        context=HARDENED_CONTEXT,
    )


# -- constructs synthesized in process, read through one helper ----------------------


def token_text(value: Any) -> str:
    """A resource reference as a comparable string: a literal as is, an intrinsic as sorted JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def listed(value: Any) -> list[Any]:
    """An IAM ``Action``/``Resource`` (a string or a list) as a list."""
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


class SynthesizedStack:
    """A stack and its synthesized template, with the lookups construct tests share.

    Lookups take constructs (``agent.worker``, ``agent.queue``), not logical
    ids, so a test names what it means and survives logical-id changes.
    """

    def __init__(self, stack: cdk.Stack) -> None:
        self.stack = stack
        self.template = Template.from_stack(stack)
        self.resources: dict[str, dict[str, Any]] = self.template.to_json()["Resources"]

    def logical_id(self, construct: IConstruct) -> str:
        """The logical id of a CloudFormation resource, or of an L2 construct's default resource."""
        element = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
        return self.stack.resolve(self.stack.get_logical_id(element))  # type: ignore[arg-type]

    def properties(self, construct: IConstruct) -> dict[str, Any]:
        return self.resources[self.logical_id(construct)].get("Properties", {})

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Logical id -> properties of every resource of ``resource_type``."""
        return {lid: r.get("Properties", {}) for lid, r in self.resources.items() if r["Type"] == resource_type}

    def environment(self, agent_function: Any) -> dict[str, Any]:
        """The environment variables of an AgentFunction."""
        return self.properties(agent_function.function)["Environment"]["Variables"]

    def grants(self, agent_function: Any) -> set[tuple[str, str]]:
        """Every (action, resource) pair an AgentFunction's role policy allows; resources as :func:`token_text`.

        ``@aws-cdk/aws-iam:minimizePolicies`` merges statements, so tests compare pairs, not statements.
        """
        return self._pairs(agent_function, "Allow")

    def denials(self, agent_function: Any) -> set[tuple[str, str]]:
        """Every (action, resource) pair an AgentFunction's role policy explicitly denies."""
        return self._pairs(agent_function, "Deny")

    def _pairs(self, agent_function: Any, effect: str) -> set[tuple[str, str]]:
        policy = agent_function.role.node.find_child("DefaultPolicy")
        pairs = set()
        for statement in self.properties(policy)["PolicyDocument"]["Statement"]:
            assert statement["Effect"] in ("Allow", "Deny")
            if statement["Effect"] != effect:
                continue
            for action in listed(statement["Action"]):
                for resource in listed(statement["Resource"]):
                    pairs.add((action, token_text(resource)))
        return pairs

    def policy_statements(self) -> list[dict[str, Any]]:
        """Every statement of every ``AWS::IAM::Policy`` in the stack."""
        return [
            statement for props in self.of_type("AWS::IAM::Policy").values() for statement in props["PolicyDocument"]["Statement"]
        ]

    def statements_on(self, construct: IConstruct) -> list[dict[str, Any]]:
        """Every IAM policy statement of the stack whose ``Resource`` references ``construct``."""
        logical_id = self.logical_id(construct)
        return [s for s in self.policy_statements() if refers_to(s["Resource"], logical_id)]

    def routes(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``(HTTP method, path)`` -> the ``AWS::ApiGateway::Method`` properties, for every method of the stack."""
        parts = {lid: (props["ParentId"], props["PathPart"]) for lid, props in self.of_type("AWS::ApiGateway::Resource").items()}

        def path(reference: Any) -> str:
            if isinstance(reference, dict) and reference.get("Ref") in parts:
                parent, part = parts[reference["Ref"]]
                return f"{path(parent).rstrip('/')}/{part}"
            return "/"  # the root resource is a GetAtt of the RestApi

        methods = self.of_type("AWS::ApiGateway::Method").values()
        return {(props["HttpMethod"], path(props["ResourceId"])): props for props in methods}

    def render(self, value: Any) -> Any:
        """``value`` with ``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Select`` and ``Fn::Split`` resolved.

        References become placeholders shaped like what CloudFormation returns
        (an alias's ``Ref`` is its ARN, a queue's is its URL), so a rendered
        state machine definition or environment can be parsed and loaded.
        """
        if isinstance(value, list):
            return [self.render(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self._ref(argument)
            if function == "Fn::GetAtt":
                return self._get_att(*argument)
            if function == "Fn::Join":
                return argument[0].join(str(self.render(part)) for part in argument[1])
            if function == "Fn::Select":
                return self.render(argument[1])[int(argument[0])]
            if function == "Fn::Split":
                return str(self.render(argument[1])).split(argument[0])
        return {key: self.render(item) for key, item in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": TEST_ENV.region,
            "AWS::AccountId": TEST_ENV.account,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack.stack_name,
        }
        if name in pseudo:
            return pseudo[name]
        region, account = TEST_ENV.region, TEST_ENV.account
        return {
            "AWS::Lambda::Alias": f"arn:aws:lambda:{region}:{account}:function:{name}:live",
            "AWS::SQS::Queue": f"https://sqs.{region}.amazonaws.com/{account}/{name}",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{region}:{account}:stateMachine:{name}",
            "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
        }.get(self.resources[name]["Type"], name)

    def _get_att(self, name: str, attribute: str) -> str:
        region, account = TEST_ENV.region, TEST_ENV.account
        resource_type = self.resources[name]["Type"]
        if attribute == "StreamArn":
            return f"arn:aws:dynamodb:{region}:{account}:table/{name}/stream/2026-01-01T00:00:00.000"
        if attribute != "Arn":
            return f"{name}.{attribute}"
        service = resource_type.split("::")[1].lower()
        return {
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{account}:{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region}:{account}:table/{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name.lower()}",
            "AWS::IAM::Role": f"arn:aws:iam::{account}:role/{name}",
            "AWS::Events::EventBus": f"arn:aws:events:{region}:{account}:event-bus/{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{name}:*",
            "AWS::KMS::Key": f"arn:aws:kms:{region}:{account}:key/{name}",
        }.get(resource_type, f"arn:aws:{service}:{region}:{account}:{name}")

    @staticmethod
    def acknowledgements(construct: IConstruct) -> dict[str, str]:
        """cdk-nag rule -> reason acknowledged on ``construct`` (or on its default resource)."""
        target = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
        found: dict[str, str] = {}
        for entry in target.node.metadata:  # type: ignore[union-attr]
            if entry.type == "aws:cdk:acknowledged-rules":
                found.update({rule.split("::")[-1].removeprefix("AwsSolutions-"): reason for rule, reason in entry.data.items()})
        return found


@pytest.fixture(scope="session")
def synthesize(app_factory: Callable[..., cdk.App]) -> Callable[[Callable[[cdk.Stack], Any]], tuple[Any, SynthesizedStack]]:
    """``synthesize(build)``: run ``build(stack)`` on a new stack in the test account, return its result and the synth.

    Bundling is skipped; each call is a new app, so tests do not share constructs.
    """

    def run(build: Callable[[cdk.Stack], Any]) -> tuple[Any, SynthesizedStack]:
        stack = cdk.Stack(app_factory(), "Test", env=TEST_ENV)
        built = build(stack)
        return built, SynthesizedStack(stack)

    return run


#: Every pattern stack, and variants of them, as the construct tests synthesize them: name -> (pattern, stack options).
PATTERN_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    **{pattern: (pattern, {}) for pattern in PATTERN_STACKS},
    "stateful-enqueue": ("stateful", {"session_options": SessionOptions(concurrency="enqueue")}),
}


@pytest.fixture(scope="session")
def pattern_stacks(app_factory: Callable[..., cdk.App]) -> dict[str, SynthesizedStack]:
    """Each of ``PATTERN_VARIANTS`` synthesized once, in one app (bundling skipped): name -> stack."""
    app = app_factory()
    stacks = {
        name: PATTERN_STACKS[pattern](app, f"Pattern-{name}", env=TEST_ENV, **options)
        for name, (pattern, options) in PATTERN_VARIANTS.items()
    }
    return {name: SynthesizedStack(stack) for name, stack in stacks.items()}


def hardened_stack_options(pattern: str) -> dict[str, Any]:
    """Keyword arguments of ``pattern``'s stack under the hardened profile, webhooks off (no egress path)."""
    webhooks_off: dict[str, dict[str, Any]] = {
        "async": {"options": AsyncOptions(webhooks=False)},
        "multiagent": {"options": MultiAgentOptions(webhooks=False)},
        "hierarchical": {"task_options": AsyncOptions(webhooks=False)},
    }
    return {"security": "hardened", **webhooks_off.get(pattern, {})}


#: Hardened variants beyond one per pattern: name -> (pattern, stack options).
HARDENED_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    **{pattern: (pattern, hardened_stack_options(pattern)) for pattern in PATTERN_STACKS},
    "stateful-enqueue": ("stateful", {"security": "hardened", "session_options": SessionOptions(concurrency="enqueue")}),
    "async-nat": ("async", {"security": "hardened", "security_options": SecurityBaselineOptions(egress="nat")}),
}


@pytest.fixture(scope="session")
def hardened_stacks(app_factory: Callable[..., cdk.App]) -> dict[str, SynthesizedStack]:
    """Each of ``HARDENED_VARIANTS`` synthesized once, in one app in the test account (bundling skipped)."""
    app = app_factory(context=HARDENED_LOOKUPS)
    stacks = {
        name: PATTERN_STACKS[pattern](app, f"Hardened-{name}", env=TEST_ENV, **options)
        for name, (pattern, options) in HARDENED_VARIANTS.items()
    }
    return {name: SynthesizedStack(stack) for name, stack in stacks.items()}


#: Every pattern behind an HTTP API (payload 2.0) instead of a REST API, as ``cdk synth -c api=http`` makes it.
HTTP_API_CONTEXT: dict[str, Any] = {"api": "http"}


@pytest.fixture(scope="session")
def real_app_http(tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    """app.py with every pattern under ``-c api=http``, with cdk-nag.

    Bundling is skipped: the layers are the standard profile's, bundled once by ``real_app``.
    """
    return synthesize_real_app(tmp_path_factory.mktemp("real-app-http") / "cdk.out", bundling=False, context=HTTP_API_CONTEXT)
