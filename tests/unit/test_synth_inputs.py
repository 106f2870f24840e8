"""``agentrail local`` reuses its last assembly only when nothing the synth reads has changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentrail_cli.synth_inputs import changes_since, forget_record, read_record, synth_inputs, write_record


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "agent").mkdir(parents=True)
    (root / "app.py").write_text("print('app')\n")
    (root / "cdk.json").write_text(json.dumps({"app": "python3 app.py"}))
    (root / "agent" / "tools.py").write_text("ANSWER = 1\n")
    return root


def _synthesized(project: Path, **arguments: object) -> Path:
    output = project / ".agentrail" / "cdk.out"
    output.mkdir(parents=True, exist_ok=True)
    (output / "manifest.json").write_text("{}")
    write_record(output, synth_inputs(project, state_dir=project / ".agentrail", **arguments))  # type: ignore[arg-type]
    return output


def test_nothing_changed_since_the_recorded_synth_means_no_changes(project: Path) -> None:
    output = _synthesized(project, patterns="stateful")

    now = synth_inputs(project, patterns="stateful", state_dir=project / ".agentrail")

    assert changes_since(read_record(output), now) == []


def test_an_edited_file_is_named_as_the_change(project: Path) -> None:
    output = _synthesized(project)
    (project / "agent" / "tools.py").write_text("ANSWER = 2\n")

    changes = changes_since(read_record(output), synth_inputs(project, state_dir=project / ".agentrail"))

    assert changes == ["changed agent/tools.py"]


def test_a_touched_but_identical_file_and_bytecode_caches_are_no_change(project: Path) -> None:
    output = _synthesized(project)
    (project / "agent" / "tools.py").write_text("ANSWER = 1\n")
    (project / "agent" / "__pycache__").mkdir()
    (project / "agent" / "__pycache__" / "tools.cpython-311.pyc").write_bytes(b"\x00")
    (project / ".agentrail" / "logs").mkdir()
    (project / ".agentrail" / "logs" / "Fn.log").write_text("a log line\n")

    assert changes_since(read_record(output), synth_inputs(project, state_dir=project / ".agentrail")) == []


def test_other_patterns_or_context_are_a_change(project: Path) -> None:
    output = _synthesized(project, patterns="stateful", context={"approval_timeout": "5"})

    changes = changes_since(
        read_record(output),
        synth_inputs(project, patterns="async", context={"approval_timeout": "5"}, state_dir=project / ".agentrail"),
    )

    assert changes == ["patterns stateful -> async"]


def test_cdk_json_watch_globs_decide_which_files_feed_the_synth(project: Path) -> None:
    (project / "cdk.json").write_text(
        json.dumps({"app": "python3 app.py", "watch": {"include": ["app.py", "agent/**"], "exclude": ["**/*_test.py"]}})
    )
    (project / "notes.md").write_text("not read by the app\n")
    (project / "agent" / "tools_test.py").write_text("def test(): ...\n")

    files = synth_inputs(project, state_dir=project / ".agentrail").files

    assert {"app.py", "cdk.json", "agent/tools.py"} <= set(files)
    assert "notes.md" not in files and "agent/tools_test.py" not in files


def test_a_new_file_is_an_addition_and_a_missing_record_forces_a_synth(project: Path) -> None:
    output = _synthesized(project)
    (project / "agent" / "billing.py").write_text("RATE = 3\n")

    added = changes_since(read_record(output), synth_inputs(project, state_dir=project / ".agentrail"))
    forget_record(output)

    assert added == ["added agent/billing.py"]
    assert read_record(output) is None
    assert changes_since(None, synth_inputs(project)) == ["no earlier synth recorded in the state folder"]


def test_a_record_without_its_assembly_is_not_reused(project: Path) -> None:
    output = _synthesized(project)
    (output / "manifest.json").unlink()

    assert read_record(output) is None
