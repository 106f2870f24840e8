"""The ``agentrail`` command line: arguments and clear failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentrail_cli.main import main
from agentrail_cli.synth import SynthError, default_state_dir, find_project_dir


def test_local_with_a_folder_that_is_not_an_assembly_fails_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["local", "--assembly", str(tmp_path), "--state-dir", str(tmp_path), "--port", "0"])

    assert code == 2
    assert "cdk synth" in capsys.readouterr().err


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])

    assert exited.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_the_project_folder_is_the_nearest_one_with_cdk_json(tmp_path: Path) -> None:
    (tmp_path / "cdk.json").write_text("{}")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)

    assert find_project_dir(nested) == tmp_path.resolve()


def test_local_state_is_found_from_any_subfolder_of_the_project(tmp_path: Path) -> None:
    (tmp_path / "cdk.json").write_text("{}")
    nested = tmp_path / "tests" / "e2e"
    nested.mkdir(parents=True)

    assert default_state_dir(nested) == tmp_path.resolve() / ".agentrail"


def test_outside_a_project_local_state_is_in_the_current_folder(tmp_path: Path) -> None:
    assert default_state_dir(tmp_path) == tmp_path.resolve() / ".agentrail"


def test_outside_a_project_synthesis_asks_for_an_assembly(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match="--assembly"):
        find_project_dir(tmp_path)


@pytest.mark.parametrize("synth_option", [["-c", "approval_timeout=5"], ["--patterns", "stateless"]], ids=["context", "patterns"])
def test_an_assembly_with_a_synth_option_is_a_usage_error(
    synth_option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["local", "--assembly", str(tmp_path), *synth_option, "--state-dir", str(tmp_path)])

    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("usage: agentrail local")
    assert "--assembly runs an existing cloud assembly as it is; -c/--context and --patterns apply only when" in error
