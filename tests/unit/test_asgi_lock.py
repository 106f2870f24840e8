"""The ASGI layer's lock: it pins what its requirements.in asks for, hashes every package, ships nothing the
dependencies layer ships already, and matches the versions the venv tests with."""

from __future__ import annotations

import re

from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.unit.test_dependencies_lock import LOCKED as DEPENDENCIES_LOCKED
from tests.unit.test_dependencies_lock import PYPROJECT, REPO_ROOT, pins, requirement_lines

ASGI = REPO_ROOT / "layers" / "agentrail_layers" / "asgi"
LOCK = ASGI / "requirements.lock"
LOCKED = pins(LOCK)


def test_mangum_and_fastapi_are_locked_at_the_versions_requirements_in_pins() -> None:
    top_level = pins(ASGI / "requirements.in")

    assert set(top_level) == {"mangum", "fastapi"}
    assert {name: LOCKED.get(name) for name in top_level} == top_level


def test_every_locked_package_has_sha256_hashes_and_the_lock_says_how_to_regenerate_it() -> None:
    for line in requirement_lines(LOCK):
        hashes = re.findall(r"--hash=(\w+):([0-9a-f]+)", line)
        assert hashes and all(algorithm == "sha256" and len(digest) == 64 for algorithm, digest in hashes), line
    assert "#    make lock\n" in LOCK.read_text()


def test_no_package_is_in_both_layers() -> None:
    # A function carries both layers: a package in each would be two copies, and the first on sys.path wins.
    assert set(LOCKED) & set(DEPENDENCIES_LOCKED) == set()
    assert {"pydantic", "anyio", "typing-extensions"} <= set(DEPENDENCIES_LOCKED)


def test_the_venv_tests_the_locked_mangum_and_fastapi() -> None:
    dev: dict[str, Version] = {}
    for line in (REPO_ROOT / "requirements-dev.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line)
        if match:
            dev[canonicalize_name(match.group(1))] = Version(match.group(2))

    assert {name: dev.get(name) for name in ("mangum", "fastapi")} == {name: LOCKED[name] for name in ("mangum", "fastapi")}


def test_the_wheel_ships_the_lock_as_package_data() -> None:
    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]

    assert sorted(package_data["agentrail_layers.asgi"]) == ["requirements.in", "requirements.lock"]
