"""The shared Lambda events (``events/``): each file is a JSON object, and events/README.md documents each one in the
section of its folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
README = (EVENTS_DIR / "README.md").read_text()
EVENT_FILES = sorted(p.relative_to(EVENTS_DIR).as_posix() for p in EVENTS_DIR.rglob("*.json"))


def readme_section(folder: str) -> str:
    """The text of the README section headed ``## `<folder>/` ...``, up to the next section."""
    match = re.search(rf"^## `{re.escape(folder)}/`.*?(?=^## |\Z)", README, flags=re.MULTILINE | re.DOTALL)
    assert match, f"events/README.md has no section for {folder}/: add one with a table of its files"
    return match.group(0)


def test_there_are_shared_events():
    assert len(EVENT_FILES) > 50


@pytest.mark.parametrize("relative", EVENT_FILES)
def test_every_event_file_is_a_json_object(relative):
    assert isinstance(json.loads((EVENTS_DIR / relative).read_text()), dict)


@pytest.mark.parametrize(
    "relative",
    EVENT_FILES,
)
def test_every_event_file_is_named_in_the_readme_section_of_its_folder(relative):
    folder, _, rest = relative.partition("/")
    assert f"`{rest}`" in readme_section(folder), f"events/README.md's {folder}/ section does not name {rest}"
