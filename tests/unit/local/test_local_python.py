"""The pure parts of choosing a function's Python: runtime names, where interpreters live, layer pins and differences."""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import pytest

from agentrail_layers.interpreters import Interpreter, candidates, find_interpreter, runtime_version
from agentrail_local.awslambda import bootstrap
from agentrail_local.awslambda.definitions import FunctionDefinition, LayerSource
from agentrail_local.awslambda.layer_packages import host_copy_key, layer_pins, version_differences
from agentrail_local.awslambda.runtimes import LocalRuntime

PY313 = Interpreter(Path("/opt/python3.13"), "3.13.0", "linux-x86_64")


@pytest.mark.parametrize(
    ("runtime", "version"),
    [
        ("python3.13", (3, 13)),
        ("python3.9", (3, 9)),
        ("python3.14", (3, 14)),
        ("python3", None),
        ("nodejs22.x", None),
        ("", None),
    ],
)
def test_a_lambda_python_runtime_names_its_major_and_minor_version(runtime: str, version: tuple[int, int] | None) -> None:
    assert runtime_version(runtime) == version


def _program(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_interpreters_are_looked_for_on_path_first_then_in_pyenv_newest_release_first(tmp_path: Path) -> None:
    on_path = _program(tmp_path / "bin" / "python3.13")
    _program(tmp_path / "elsewhere" / "python3.12")
    pyenv = tmp_path / "pyenv"
    older = _program(pyenv / "versions" / "3.13.0" / "bin" / "python3.13")
    newer = _program(pyenv / "versions" / "3.13.10" / "bin" / "python3.13")
    _program(pyenv / "versions" / "3.13.1t" / "bin" / "python3.13")
    _program(pyenv / "versions" / "3.12.1" / "bin" / "python3.12")
    search_path = os.pathsep.join([str(tmp_path / "bin"), str(tmp_path / "elsewhere"), str(tmp_path / "missing")])

    found = candidates((3, 13), search_path=search_path, pyenv_root=pyenv)

    assert found == [on_path, newer, older]


def test_without_pyenv_only_the_search_path_is_looked_at(tmp_path: Path) -> None:
    (tmp_path / "python3.13").write_text("not executable\n")

    assert candidates((3, 13), search_path=str(tmp_path), pyenv_root=None) == []


def test_a_virtual_environments_interpreter_is_reported_by_its_base_so_the_venvs_packages_stay_out() -> None:
    venv_bin = str(Path(sys.executable).parent)

    found = find_interpreter(sys.version_info[:2], {"PATH": venv_bin, "PYENV_ROOT": str(Path(venv_bin) / "no-pyenv")})

    assert found is not None
    assert found.minor == sys.version_info[:2]
    assert not found.is_this_process


def _dist_info(python_dir: Path, folder: str, name: str, version: str) -> None:
    (python_dir / folder).mkdir(parents=True)
    (python_dir / folder / "METADATA").write_text(
        f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\nSummary: x\n\nLong text: not a header\n"
    )


def test_a_layers_pins_are_the_names_and_versions_of_its_dist_infos_by_canonical_name(tmp_path: Path) -> None:
    _dist_info(tmp_path, "httpx-0.28.1.dist-info", "httpx", "0.28.1")
    _dist_info(tmp_path, "typing_extensions-4.16.0.dist-info", "typing_extensions", "4.16.0")
    _dist_info(tmp_path, "aws_lambda_powertools-3.37.0.dist-info", "aws_lambda_powertools", "3.37.0")
    (tmp_path / "httpx").mkdir()
    (tmp_path / "broken-1.0.dist-info").mkdir()

    assert layer_pins(tmp_path) == {"httpx": "0.28.1", "typing-extensions": "4.16.0", "aws-lambda-powertools": "3.37.0"}


def test_the_mismatch_report_lists_each_pin_installed_in_another_version_or_missing() -> None:
    pins = {"httpx": "0.28.1", "pydantic": "2.14.4", "wrapt": "2.5.2"}
    installed = {"httpx": "0.29.0", "pydantic": "2.14.4", "wrapt": None}

    assert version_differences(pins, installed) == [
        "httpx: 0.29.0 here vs 0.28.1 in the layer",
        "wrapt: not installed here vs 2.5.2 in the layer",
    ]
    assert version_differences(pins, dict(pins)) == []


def test_the_host_copy_key_changes_with_any_pin_the_interpreters_version_or_its_platform_but_not_the_pins_order() -> None:
    pins = {"httpx": "0.28.1", "pydantic": "2.14.4"}
    key = host_copy_key(pins, PY313)

    assert host_copy_key(dict(reversed(pins.items())), PY313) == key
    assert host_copy_key({**pins, "httpx": "0.28.2"}, PY313) != key
    assert host_copy_key(pins, Interpreter(PY313.executable, "3.13.1", PY313.platform)) != key
    assert host_copy_key(pins, Interpreter(PY313.executable, PY313.version, "linux-aarch64")) != key
    assert host_copy_key(pins, Interpreter(Path("/elsewhere/python3.13"), PY313.version, PY313.platform)) == key


def test_the_host_copy_comes_after_the_code_and_the_loadable_layers_and_the_platform_layer_stays_off(tmp_path: Path) -> None:
    runtime_layer = tmp_path / "runtime"
    (runtime_layer / "python").mkdir(parents=True)
    dependencies = tmp_path / "dependencies"
    (dependencies / "python").mkdir(parents=True)
    definition = FunctionDefinition(
        stack_name="S", logical_id="F", name="f", arn="arn", handler="app.handler", runtime="python3.13", code_dir=tmp_path / "code",
        layers=(
            LayerSource("arn:deps", dependencies, "dependencies"),
            LayerSource("arn:runtime", runtime_layer, "runtime"),
        ),
    )  # fmt: skip

    path = LocalRuntime(PY313, tmp_path / "host").python_path(definition)

    assert path == [str(tmp_path / "code"), str(runtime_layer / "python"), str(tmp_path / "host")]
    assert LocalRuntime(PY313).python_path(definition) == path[:2]


def test_the_bootstrap_imports_only_the_standard_library_and_parses_as_the_oldest_lambda_python() -> None:
    source = Path(bootstrap.__file__).read_text()
    tree = ast.parse(source, feature_version=(3, 9))

    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}

    assert {name.split(".")[0] for name in imported} - {"__future__"} <= sys.stdlib_module_names
