"""Local mode's functions inherit a clock moved with libfaketime, and nothing else of the caller's environment."""

from __future__ import annotations

from agentrail_local.awslambda.workers import moved_clock_environment

MOVED = {
    "FAKETIME": "+400d",
    "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    "FAKETIME_NO_CACHE": "1",
    "DONT_FAKE_MONOTONIC": "1",
    "LD_PRELOAD": "libfaketime.so.1",
    "LD_LIBRARY_PATH": "/venv/site-packages/libfaketime/vendor/libfaketime/src",
}


def test_a_moved_clock_passes_on_libfaketimes_variables_only():
    environ = {**MOVED, "AWS_PROFILE": "production", "HOME": "/root", "AGENT_MODEL": "bedrock:x"}

    assert moved_clock_environment(environ) == MOVED


def test_without_faketime_no_preload_reaches_the_functions():
    environ = {name: value for name, value in MOVED.items() if name != "FAKETIME"}

    assert moved_clock_environment(environ) == {}
    assert moved_clock_environment({**environ, "FAKETIME": ""}) == {}
