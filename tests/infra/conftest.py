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
# end-of-life and prints a banner on every call, the pinned Node 22 does not.
if str(NODE_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

import aws_cdk as cdk  # noqa: E402
import pytest  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from agentrail_constructs import PATTERN_STACKS, StatelessAgent  # noqa: E402
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
) -> CloudAssembly:
    """Synthesize ``app.py`` for ``patterns`` (default: every registered pattern) with cdk-nag, as ``cdk synth`` does.

    Returns the cloud assembly folder; its ``report`` is the parsed ``validation-report.json``.
    """
    return run_cdk_app(
        REAL_APP, outdir, context={"patterns": ",".join(patterns)}, bundling=bundling, environment=environment
    )


@pytest.fixture(scope="session")
def real_app(tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    """app.py synthesized once per session with every pattern in ``PATTERN_STACKS``, layers bundled."""
    return synthesize_real_app(tmp_path_factory.mktemp("real-app") / "cdk.out")


@pytest.fixture(scope="session")
def real_app_in_an_account(tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    """app.py as ``cdk deploy`` synthesizes it with credentials: account and Region known (bundling skipped)."""
    return synthesize_real_app(
        tmp_path_factory.mktemp("real-app-env") / "cdk.out",
        bundling=False,
        environment={"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"},
    )


@pytest.fixture(scope="session")
def layer_app(tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    """layer_app.py (one AgentFunction per Lambda architecture) synthesized with real bundling.

    The runtime package's source is byte-compiled first, so its folders hold
    ``__pycache__`` the way a developer's checkout does: tests can then show
    that the bundled layer leaves them out.
    """
    compileall.compile_dir(runtime_package_dir(), quiet=1)
    assembly = run_cdk_app(LAYER_APP, tmp_path_factory.mktemp("layer-app") / "cdk.out")
    assembly.assert_synthesized()
    return assembly
