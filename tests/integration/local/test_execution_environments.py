"""Execution environments: one subprocess per concurrent execution, with Lambda's timeouts, errors and isolation."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import libfaketime
import pytest

from agentrail_local.awslambda.definitions import FunctionDefinition, Throttled
from agentrail_local.awslambda.environments import ExecutionEnvironments

ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"
DAY = 86_400


def _definition(handlers_dir: Path, name: str, handler: str, **overrides: object) -> FunctionDefinition:
    settings: dict[str, object] = {
        "stack_name": "Tests",
        "logical_id": name.replace("-", "").title(),
        "name": name,
        "arn": ARN.format(name),
        "handler": handler,
        "runtime": "python3.12",
        "code_dir": handlers_dir,
        "environment": {"GREETING": "hello"},
        "memory_size": 256,
        "timeout_seconds": 10.0,
        "log_group": f"/aws/lambda/{name}",
    }
    settings.update(overrides)
    return FunctionDefinition(**settings)  # type: ignore[arg-type]


@pytest.fixture
def environments(tmp_path: Path) -> Iterator[ExecutionEnvironments]:
    lines: list[str] = []
    envs = ExecutionEnvironments(moto_endpoint="http://127.0.0.1:1", log_dir=tmp_path / "logs", console=lines.append)
    envs.console_lines = lines  # type: ignore[attr-defined]
    yield envs
    envs.close()


def test_handler_sees_its_environment_and_a_lambda_context(environments: ExecutionEnvironments, handlers_dir: Path) -> None:
    environments.add_function(_definition(handlers_dir, "describe", "tasks.describe"))
    environments.add_version("describe", "1")
    environments.add_alias("describe", "live", "1")

    result = environments.invoke(ARN.format("describe") + ":live", {"any": "event"})

    body = result.json()
    assert result.ok
    assert body["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": "describe",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/describe",
        "_HANDLER": "tasks.describe",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "GREETING": "hello",
        "OTHER_ONLY": None,
        "AGENTRAIL_RESPONSE_FD": None,
        "AGENT_VERSION": None,
    }
    assert body["cwd"] == str(handlers_dir)
    context = body["context"]
    assert context["invoked_function_arn"] == ARN.format("describe") + ":live"
    assert context["aws_request_id"] == result.request_id
    assert (context["function_name"], context["memory_limit_in_mb"]) == ("describe", 256)
    assert 0 < context["remaining_ms"] <= 10_000


def test_a_clock_moved_with_libfaketime_reaches_the_functions_as_it_reaches_local_mode(
    environments: ExecutionEnvironments, handlers_dir: Path, monkeypatch: pytest.MonkeyPatch, real_time
) -> None:
    _, preload = libfaketime.get_reload_information()
    for name, value in {**preload, "FAKETIME": "+400d", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}.items():
        monkeypatch.setenv(name, value)
    environments.add_function(_definition(handlers_dir, "clock", "tasks.clock"))

    inside = environments.invoke("clock", {}).json()

    assert 399 * DAY < inside["time"] - real_time() < 401 * DAY


def test_a_warm_environment_is_reused_and_keeps_module_state(environments: ExecutionEnvironments, handlers_dir: Path) -> None:
    environments.add_function(_definition(handlers_dir, "describe", "tasks.describe"))

    first = environments.invoke("describe", {}).json()
    second = environments.invoke("describe", {}).json()

    assert second["pid"] == first["pid"]
    assert (first["invocations"], second["invocations"]) == (1, 2)


def test_functions_are_isolated_in_their_own_processes_and_environment(
    environments: ExecutionEnvironments, handlers_dir: Path
) -> None:
    environments.add_function(_definition(handlers_dir, "one", "tasks.describe"))
    environments.add_function(_definition(handlers_dir, "two", "tasks.describe", environment={"OTHER_ONLY": "yes"}))

    one = environments.invoke("one", {}).json()
    two = environments.invoke("two", {}).json()

    assert one["pid"] != two["pid"]
    assert (one["env"]["OTHER_ONLY"], two["env"]["OTHER_ONLY"]) == (None, "yes")
    assert two["env"]["GREETING"] is None


def test_a_handler_exception_is_a_function_error_with_lambdas_error_shape(
    environments: ExecutionEnvironments, handlers_dir: Path
) -> None:
    environments.add_function(_definition(handlers_dir, "fail", "tasks.fail"))

    result = environments.invoke("fail", {})

    error = result.json()
    assert result.function_error == "Unhandled"
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "the order is not valid")
    assert any("tasks.py" in frame for frame in error["stackTrace"])


def test_a_worker_that_exits_reports_runtime_exited_and_the_next_call_gets_a_fresh_one(
    environments: ExecutionEnvironments, handlers_dir: Path
) -> None:
    environments.add_function(_definition(handlers_dir, "crash", "tasks.crash"))
    before = environments.invoke("crash", {}).json()["pid"]

    crashed = environments.invoke("crash", {"exit": True})
    after = environments.invoke("crash", {}).json()["pid"]

    assert crashed.function_error == "Unhandled"
    assert crashed.json()["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: exit status 3" in crashed.json()["errorMessage"]
    assert after != before
    assert environments.pool_size("crash") == 1


def test_a_handler_running_past_its_timeout_is_killed_with_task_timed_out(
    environments: ExecutionEnvironments, handlers_dir: Path
) -> None:
    environments.add_function(_definition(handlers_dir, "slow", "tasks.sleep", timeout_seconds=1.0))

    started = time.monotonic()
    timed_out = environments.invoke("slow", {"seconds": 5})
    elapsed = time.monotonic() - started
    quick = environments.invoke("slow", {"seconds": 0})

    assert timed_out.function_error == "Unhandled"
    assert "Task timed out after 1.00 seconds" in timed_out.json()["errorMessage"]
    assert elapsed < 4
    assert quick.ok and quick.json()["slept"] == 0


def test_invocations_beyond_reserved_concurrency_are_throttled(environments: ExecutionEnvironments, handlers_dir: Path) -> None:
    environments.add_function(_definition(handlers_dir, "single", "tasks.sleep", reserved_concurrency=1))
    environments.invoke("single", {"seconds": 0})  # warm, so the busy window is known
    busy = threading.Thread(target=environments.invoke, args=("single", {"seconds": 1.5}))

    busy.start()
    time.sleep(0.3)
    with pytest.raises(Throttled):
        environments.invoke("single", {"seconds": 0})
    busy.join()

    assert environments.invoke("single", {"seconds": 0}).ok


def test_concurrent_invocations_run_in_separate_environments(environments: ExecutionEnvironments, handlers_dir: Path) -> None:
    environments.add_function(_definition(handlers_dir, "parallel", "tasks.sleep"))
    results: list[dict] = []

    threads = [
        threading.Thread(target=lambda: results.append(environments.invoke("parallel", {"seconds": 0.8}).json()))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({r["pid"] for r in results}) == 2
    assert environments.pool_size("parallel") == 2


def test_function_output_goes_to_its_log_file_and_the_console_with_its_logical_id(
    environments: ExecutionEnvironments, handlers_dir: Path
) -> None:
    environments.add_function(_definition(handlers_dir, "shout", "tasks.shout"))

    result = environments.invoke("shout", {"text": "hey"})

    line = json.dumps({"event": "shout", "text": "hey", "request_id": result.request_id})
    console = environments.console_lines  # type: ignore[attr-defined]

    def written() -> bool:  # the log file first, then the console: a reader thread writes both after the answer
        return line in environments.log_file("shout").read_text() and f"[Shout] {line}" in console

    _eventually(written)
    assert line in environments.log_file("shout").read_text()
    assert f"[Shout] {line}" in console


def _eventually(condition: Callable[[], bool], seconds: float = 5) -> None:
    """Wait until ``condition()`` holds, for at most ``seconds``: a reader thread writes the logs after the answer.
    The caller asserts what it needed, so a wait that runs out fails on that assertion."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def _log_lines(environments: ExecutionEnvironments, name: str, until: str) -> list[str]:
    _eventually(lambda: until in environments.log_file(name).read_text())
    return environments.log_file(name).read_text().splitlines()


def test_library_logs_reach_the_function_log_as_json_at_the_functions_application_log_level(
    environments: ExecutionEnvironments, handlers_dir: Path
) -> None:
    # given: a function with LoggingConfig JSON at DEBUG, whose code logs through a library's logger
    environments.add_function(
        _definition(handlers_dir, "verbose", "tasks.log_levels", application_log_level="DEBUG", log_format="JSON")
    )

    # when: it runs
    result = environments.invoke("verbose", {"text": "hey"})

    # then: as in Lambda, the root logger writes both lines as JSON with the invocation's request id
    records = [json.loads(line) for line in _log_lines(environments, "verbose", "warning hey") if line.startswith("{")]
    assert [(r["level"], r["message"], r["logger"], r["requestId"]) for r in records] == [
        ("DEBUG", "debug detail hey", "some.library", result.request_id),
        ("WARNING", "warning hey", "some.library", result.request_id),
    ]


def test_without_an_application_log_level_library_logs_below_warning_are_dropped(
    environments: ExecutionEnvironments, handlers_dir: Path
) -> None:
    environments.add_function(_definition(handlers_dir, "quiet", "tasks.log_levels"))

    environments.invoke("quiet", {"text": "hey"})

    lines = _log_lines(environments, "quiet", "warning hey")
    assert any(line.startswith("[WARNING]") and line.endswith("warning hey") for line in lines)
    assert not any("debug detail" in line for line in lines)


def test_a_text_log_line_has_lambdas_level_timestamp_request_id_and_message_columns(
    environments: ExecutionEnvironments, handlers_dir: Path
) -> None:
    # given: a function with Lambda's default log format (Text), whose code logs through a library's logger
    environments.add_function(_definition(handlers_dir, "plain", "tasks.log_levels"))

    # when: it runs
    result = environments.invoke("plain", {"text": "hey"})

    # then: the line is Lambda's "[LEVEL]\t<UTC timestamp>\t<request id>\t<message>"
    (line,) = [line for line in _log_lines(environments, "plain", "warning hey") if line.endswith("warning hey")]
    level, timestamp, request_id, message = line.split("\t")
    assert (level, request_id, message) == ("[WARNING]", result.request_id, "warning hey")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", timestamp)


def test_an_unimportable_handler_is_an_import_module_error(environments: ExecutionEnvironments, handlers_dir: Path) -> None:
    environments.add_function(_definition(handlers_dir, "broken", "broken.handler"))

    result = environments.invoke("broken", {})

    assert result.function_error == "Unhandled"
    assert result.json()["errorType"] == "Runtime.ImportModuleError"
    assert "module_that_does_not_exist" in result.json()["errorMessage"]


def test_an_unserializable_result_is_a_marshal_error(environments: ExecutionEnvironments, handlers_dir: Path) -> None:
    environments.add_function(_definition(handlers_dir, "sets", "tasks.unserializable"))

    result = environments.invoke("sets", {})

    assert result.json()["errorType"] == "Runtime.MarshalError"


def test_workers_are_killed_when_the_environments_close(tmp_path: Path, handlers_dir: Path) -> None:
    environments = ExecutionEnvironments(moto_endpoint="http://127.0.0.1:1", log_dir=tmp_path)
    environments.add_function(_definition(handlers_dir, "describe", "tasks.describe"))
    pid = environments.invoke("describe", {}).json()["pid"]

    environments.close()

    def wait_for_exit() -> None:
        for _ in range(50):
            os.kill(pid, 0)  # ProcessLookupError once the process is gone
            time.sleep(0.05)

    with pytest.raises(ProcessLookupError):
        wait_for_exit()


def test_a_published_version_keeps_the_environment_it_was_published_with(
    environments: ExecutionEnvironments, handlers_dir: Path
) -> None:
    first = _definition(handlers_dir, "agent", "tasks.describe", environment={"AGENT_VERSION": "aaaaaaaaaaaa"})
    environments.add_function(first)
    environments.add_version("agent", "1")
    environments.update_function(replace(first, environment={"AGENT_VERSION": "bbbbbbbbbbbb"}))
    environments.add_version("agent", "2")

    old = environments.invoke(ARN.format("agent") + ":1", {}).json()["env"]["AGENT_VERSION"]
    new = environments.invoke(ARN.format("agent") + ":2", {}).json()["env"]["AGENT_VERSION"]
    latest = environments.invoke(ARN.format("agent"), {}).json()["env"]["AGENT_VERSION"]

    assert (old, new, latest) == ("aaaaaaaaaaaa", "bbbbbbbbbbbb", "bbbbbbbbbbbb")


def test_a_seeded_weighted_alias_splits_invocations_between_its_versions_and_reports_the_one_that_ran(
    handlers_dir: Path, tmp_path: Path
) -> None:
    environments = ExecutionEnvironments(moto_endpoint="http://127.0.0.1:1", log_dir=tmp_path / "logs", routing=random.Random(7))
    environments.add_function(_definition(handlers_dir, "agent", "tasks.describe"))
    environments.add_version("agent", "1")
    environments.add_version("agent", "2")
    environments.add_alias("agent", "live", "1", {"2": 0.25})

    try:
        ran = Counter(environments.invoke(ARN.format("agent") + ":live", {}).executed_version for _ in range(200))
    finally:
        environments.close()

    assert set(ran) == {"1", "2"}
    assert abs(ran["2"] - 50) <= 20, ran  # binomial(200, 0.25): 50 ± 20 holds with probability above 99.9%


def test_reloaded_code_drops_the_agent_version_stamped_at_synth_so_the_runtime_computes_the_new_one(
    environments: ExecutionEnvironments, handlers_dir: Path, tmp_path: Path
) -> None:
    environments.add_function(_definition(handlers_dir, "agent", "tasks.describe", environment={"AGENT_VERSION": "old"}))
    environments.add_version("agent", "1")
    environments.add_alias("agent", "live", "1")
    edited = tmp_path / "edited"
    shutil.copytree(handlers_dir, edited)

    environments.replace_code({handlers_dir: edited})

    body = environments.invoke(ARN.format("agent") + ":live", {}).json()
    assert body["cwd"] == str(edited)
    assert body["env"]["AGENT_VERSION"] is None
