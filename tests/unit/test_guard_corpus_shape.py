"""The prompt-injection corpus holds enough of each kind to measure a detection and a false-positive rate."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

CORPUS = Path(__file__).parent / "guard_corpus" / "corpus.jsonl"
INJECTION_CATEGORIES = {
    "instruction_override",
    "roleplay_jailbreak",
    "prompt_extraction",
    "encoded_base64",
    "encoded_hex",
    "homoglyph",
    "html_comment",
    "zero_width",
    "invisible_css",
}


def test_the_corpus_has_at_least_60_attempts_and_60_look_alikes_covering_every_injection_category() -> None:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]

    expected = Counter(row["expected"] for row in rows)
    attempted = {row["category"] for row in rows if row["expected"] == "block"}
    looked_alike = {row["category"] for row in rows if row["expected"] == "allow"}

    assert set(expected) == {"block", "allow"}
    assert expected["block"] >= 60 and expected["allow"] >= 60
    assert attempted == INJECTION_CATEGORIES
    assert looked_alike >= INJECTION_CATEGORIES
    assert len({row["text"] for row in rows}) == len(rows), "every message is different"
