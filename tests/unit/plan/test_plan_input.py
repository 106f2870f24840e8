"""Bad input to ``agentrail plan`` is one clear sentence on stderr and exit status 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentrail_cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["plan", "--no-chart", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_sentence(err: str) -> str:
    (line,) = err.strip().splitlines()
    assert line.startswith("agentrail plan: ")
    sentence = line.removeprefix("agentrail plan: ")
    assert sentence.endswith("."), sentence
    assert "Traceback" not in err
    return sentence


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--requests-per-hour", "-5"], "requests_per_hour must be more than zero, not -5."),
        (["--requests-per-hour", "0"], "requests_per_hour must be more than zero, not 0."),
        (["--requests-per-hour", "lots"], "requests_per_hour must be a number, not 'lots'."),
        (["--task-duration", "400d"], "task_duration is over a year (400 days); the longest the patterns run is one year."),
        (["--approval-wait", "2y"], "approval_wait must be a duration such as 30s, 15m, 2h or 3d, not '2y'."),
        (["--task-duration", "0s"], "task_duration must be more than zero seconds."),
        (["--peak-concurrency", "0"], "peak_concurrency must be at least 1, not 0."),
        (["--state", "forever"], "state must be one of 'none', 'session' or 'multi_step', not 'forever'."),
    ],
)
def test_a_bad_requirement_is_one_sentence_and_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], says: str) -> None:
    status, out, err = run(capsys, *args)

    assert status == 2
    assert out == ""
    assert one_sentence(err) == says


def test_an_unknown_region_names_the_regions_the_price_file_knows(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "--region", "mars-north-1")

    assert status == 2
    sentence = one_sentence(err)
    assert sentence.startswith("unknown region 'mars-north-1'")
    assert "us-east-1" in sentence and "eu-west-1" in sentence


def test_an_unknown_model_is_refused_before_anything_is_priced(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "--model", "bedrock:acme.genius-9000")

    assert status == 2
    assert "bedrock:acme.genius-9000" in one_sentence(err)


def test_a_malformed_yaml_file_names_the_file_and_the_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.yaml"
    requirements.write_text("name: FAQ\nrequests_per_hour: [50\n")

    status, _, err = run(capsys, "--file", str(requirements))

    assert status == 2
    assert one_sentence(err) == f"requirements file {requirements} is not valid YAML at line 3."


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("- 50\n- 60\n", "must be a YAML mapping of requirement: value."),
        ("requests_per_hour: 50\nspeed: fast\n", "unknown requirement 'speed'; the known ones are: name, region, "),
        ("requests_per_hour: 50\ntask_duration: 2 years\n", "task_duration must be a duration such as 30s"),
    ],
)
def test_a_file_of_the_wrong_shape_is_one_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, says: str
) -> None:
    requirements = tmp_path / "requirements.yaml"
    requirements.write_text(text)

    status, _, err = run(capsys, "--file", str(requirements))

    assert status == 2
    assert says in one_sentence(err)


def test_a_missing_file_is_one_sentence(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "--file", str(tmp_path / "absent.yaml"))

    assert status == 2
    assert one_sentence(err).startswith(f"cannot read requirements file {tmp_path / 'absent.yaml'}")
