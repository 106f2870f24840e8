"""Functions run on the Python their template names, with the dependencies layer's pins built for this machine."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentrail_local.awslambda import bootstrap
from agentrail_local.awslambda.definitions import FunctionDefinition, LayerSource
from agentrail_local.awslambda.environments import ExecutionEnvironments
from agentrail_local.awslambda.interpreters import find_interpreter, runtime_version
from agentrail_local.awslambda.layer_packages import canonical_name
from agentrail_local.cloud import LocalCloud
from tests.integration.local.conftest import agent_function

RUNTIME = "python3.13"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"

pytestmark = pytest.mark.slow


def _requirement_pins() -> dict[str, str]:
    """What the dependencies layer pins by hand (its requirements file), by canonical name."""
    from agentrail_constructs.sources import dependencies_requirements

    pins = {}
    for line in dependencies_requirements().read_text().splitlines():
        requirement = line.split("#")[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==")
            pins[canonical_name(name.split("[")[0])] = version.strip()
    return pins


def build_layered_app(outdir: Path, handlers: Path) -> None:
    """One stack: a ``python3.13`` function on the real dependencies layer (arm64 wheels, as it deploys)."""
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from agentrail_constructs.layers import DependenciesLayer

    context = json.loads((Path(__file__).resolve().parents[3] / "cdk.json").read_text())["context"]
    app = cdk.App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True, **context})
    stack = cdk.Stack(app, "Local-Python")
    runtime = lambda_.Runtime.PYTHON_3_13
    layer = DependenciesLayer.of(stack, runtime=runtime, architecture=lambda_.Architecture.ARM_64)
    lambda_.Function(
        stack,
        "Versions",
        runtime=runtime,
        architecture=lambda_.Architecture.ARM_64,
        handler="versions.report",
        code=lambda_.Code.from_asset(str(handlers)),
        layers=[layer],
        timeout=cdk.Duration.seconds(30),
    )
    app.synth()


@pytest.fixture(scope="module")
def layered_assembly(tmp_path_factory: pytest.TempPathFactory, handlers_dir: Path) -> Path:
    output = tmp_path_factory.getbasetemp() / "assembly-local-python"
    if not (output / "manifest.json").is_file():
        build_layered_app(output, handlers_dir)
    return output


@dataclass
class Start:
    """What one start of local mode did and what its function answered."""

    built: list[Path]
    packages_dir: Path | None
    warnings: list[str]
    answer: dict[str, Any]


def _start_and_invoke(assembly: Path, state_dir: Path, **options: Any) -> Start:
    with LocalCloud(assembly, port=0, state_dir=state_dir, warn=lambda _: None, prewarm=False, **options) as cloud:
        assert cloud.environments is not None
        function = agent_function(cloud.deployments[0])
        result = cloud.environments.invoke(function.ref, {})
        assert result.ok, result.payload
        return Start(
            built=list(cloud.environments.runtimes.host_copies.built),
            packages_dir=cloud.environments.runtime(function.ref).packages_dir,
            warnings=list(cloud.warnings),
            answer=result.json(),
        )


@pytest.fixture(scope="module")
def host_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("agentrail-cache")


@pytest.fixture(scope="module")
def first_start(layered_assembly: Path, host_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Start:
    if find_interpreter(runtime_version(RUNTIME) or (0, 0)) is None:
        pytest.skip(f"this machine has no {RUNTIME} on PATH or in pyenv")
    return _start_and_invoke(layered_assembly, tmp_path_factory.mktemp("first"), cache_dir=host_cache)


def test_a_function_runs_on_its_runtimes_python_and_imports_the_layers_pins_built_for_this_machine(
    first_start: Start, host_cache: Path
) -> None:
    pins = _requirement_pins()

    answer = first_start.answer

    assert answer["python"] == [3, 13]
    assert (answer["httpx"], answer["pydantic"]) == (pins["httpx"], pins["pydantic"])
    assert first_start.packages_dir is not None and first_start.packages_dir.is_relative_to(host_cache)
    assert Path(answer["httpx_file"]).is_relative_to(first_start.packages_dir)
    assert first_start.warnings == []


def test_a_second_start_reuses_the_host_copy_instead_of_building_it_again(
    first_start: Start, layered_assembly: Path, host_cache: Path, tmp_path: Path
) -> None:
    assert first_start.built == [first_start.packages_dir]
    assert first_start.packages_dir is not None
    built_at = first_start.packages_dir.stat().st_mtime_ns

    second = _start_and_invoke(layered_assembly, tmp_path, cache_dir=host_cache)

    assert second.built == []
    assert second.packages_dir == first_start.packages_dir
    assert first_start.packages_dir.stat().st_mtime_ns == built_at
    assert second.answer["httpx_file"] == first_start.answer["httpx_file"]


@pytest.fixture
def fallback(tmp_path: Path) -> Iterator[tuple[ExecutionEnvironments, list[str]]]:
    warnings: list[str] = []
    environments = ExecutionEnvironments(
        moto_endpoint="http://127.0.0.1:1",
        log_dir=tmp_path / "logs",
        python=sys.executable,
        cache_dir=tmp_path / "cache",
        warn=warnings.append,
    )
    yield environments, warnings
    environments.close()


def _layer_shipping(folder: Path, versions: dict[str, str]) -> LayerSource:
    """A dependencies layer asset as pip leaves it: one ``<name>-<version>.dist-info/METADATA`` per distribution."""
    for name, version in versions.items():
        info = folder / "python" / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nA package.\n")
    return LayerSource(arn="arn:aws:lambda:us-east-1:123456789012:layer:deps:1", path=folder, kind="dependencies")


@pytest.mark.skipif(sys.version_info[:2] == (3, 13), reason="this interpreter is the runtime's Python")
def test_without_the_runtimes_python_functions_run_on_this_interpreter_and_one_warning_names_what_differs(
    fallback: tuple[ExecutionEnvironments, list[str]], handlers_dir: Path, tmp_path: Path
) -> None:
    environments, warnings = fallback
    here = importlib.metadata.version("httpx")
    layer = _layer_shipping(tmp_path / "layer", {"httpx": "0.0.1", "pydantic": importlib.metadata.version("pydantic")})
    for name in ("first", "second"):
        environments.add_function(
            FunctionDefinition(
                stack_name="Tests", logical_id=name.title(), name=name, arn=ARN.format(name), handler="versions.report",
                runtime=RUNTIME, code_dir=handlers_dir, layers=(layer,), timeout_seconds=30.0,
            )
        )  # fmt: skip

    answer = environments.invoke("second", {}).json()

    assert answer["python"] == list(sys.version_info[:2])
    assert answer["httpx"] == here
    assert environments.runtime("first").packages_dir is None
    assert warnings == [
        f"{RUNTIME} functions run on Python {platform.python_version()} ({sys.executable}) instead of 3.13: "
        "the python argument names that interpreter; "
        f"and import this environment's packages, which differ from the dependencies layer's: httpx: {here} here vs 0.0.1 in the layer"
    ]


@pytest.mark.parametrize("version", [(3, 9), (3, 10)], ids=["python3.9", "python3.10"])
def test_the_bootstrap_loads_and_stamps_log_lines_on_the_oldest_lambda_pythons(version: tuple[int, int]) -> None:
    # Given a Lambda runtime's Python older than local mode's own (a function of Runtime: python3.9 runs on it),
    interpreter = find_interpreter(version)
    if interpreter is None:
        pytest.skip(f"this machine has no python{version[0]}.{version[1]} on PATH or in pyenv")
    # when it loads the bootstrap by path, as local mode starts every function's process,
    probe = "import sys; sys.path.insert(0, sys.argv[1]); import bootstrap; print(bootstrap._timestamp(0))"
    result = subprocess.run(
        [str(interpreter.executable), "-c", probe, str(Path(bootstrap.__file__).parent)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # then it imports and writes Lambda's UTC timestamps.
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1970-01-01T00:00:00.000Z"
