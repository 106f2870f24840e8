"""The dependencies layer's lock: it pins what requirements.in asks for, hashes every package, and the venv gets the same versions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPENDENCIES = REPO_ROOT / "layers" / "agentrail_layers" / "dependencies"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def requirement_lines(path: Path) -> list[str]:
    """Each requirement of a requirements file, its ``\\``-continued lines joined and comments left out."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    return [line.split(" #", 1)[0].strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def pins(path: Path) -> dict[str, Version]:
    """Package name -> the exact version that ``path`` pins."""
    found = {}
    for line in requirement_lines(path):
        requirement = Requirement(line.split(" --hash", 1)[0])
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{path.name}: {line!r} is not an exact pin"
        found[canonicalize_name(requirement.name)] = Version(specifier.version)
    return found


LOCK = DEPENDENCIES / "requirements.lock"
LOCKED = pins(LOCK)


def test_every_top_level_pin_is_locked_at_the_same_version() -> None:
    top_level = pins(DEPENDENCIES / "requirements.in")

    assert top_level, "given: requirements.in pins the layer's packages"
    assert {name: LOCKED.get(name) for name in top_level} == top_level


def test_every_locked_package_is_an_exact_pin_with_sha256_hashes() -> None:
    lines = requirement_lines(LOCK)

    assert len(lines) == len(LOCKED) > len(pins(DEPENDENCIES / "requirements.in")), "the lock holds the transitive packages too"
    for line in lines:
        hashes = re.findall(r"--hash=(\w+):([0-9a-f]+)", line)
        assert hashes, f"{line.split()[0]} has no --hash, so pip --require-hashes would refuse the lock"
        assert all(algorithm == "sha256" and len(digest) == 64 for algorithm, digest in hashes), line


def test_the_lock_says_how_to_regenerate_it() -> None:
    assert "#    make lock\n" in LOCK.read_text()


def test_the_venv_constraints_are_the_locked_versions_without_hashes() -> None:
    constraints = DEPENDENCIES / "constraints.txt"

    assert "--hash" not in constraints.read_text(), "hashes in a constraints file switch pip to hash-checking for the whole venv"
    assert pins(constraints) == LOCKED


def test_the_venv_installs_the_top_level_pins_under_the_lock_as_constraints() -> None:
    lines = requirement_lines(REPO_ROOT / "requirements.txt")

    assert "-r layers/agentrail_layers/dependencies/requirements.in" in lines
    assert "-c layers/agentrail_layers/dependencies/constraints.txt" in lines


@pytest.mark.parametrize("declared", PYPROJECT["project"]["optional-dependencies"]["runtime"])
def test_the_runtime_extra_admits_the_locked_version(declared: str) -> None:
    requirement = Requirement(declared)

    assert LOCKED[canonicalize_name(requirement.name)] in requirement.specifier


def test_a_wheel_carries_the_pins_and_the_lock() -> None:
    assert set(PYPROJECT["tool"]["setuptools"]["package-data"]["agentrail_layers.dependencies"]) >= {
        "requirements.in",
        "requirements.lock",
    }
