"""The prompt-injection heuristics, measured on the corpus and on seeded mutations of it: the detection rate of
each injection category and the false-positive rate of each look-alike category, with the targets of issue 15
(at least 90% detection, at most 5% false positives) overall and the README's figures kept true."""

from __future__ import annotations

import base64
import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentrail_runtime.guardrails import PromptInjectionGuard

CORPUS = Path(__file__).parent / "guard_corpus" / "corpus.jsonl"
README = Path(__file__).resolve().parents[2] / "README.md"
SEED = 15
#: Look-alikes the mutations draw from (a table of their own, not the guard's).
LOOK_ALIKES = {
    "a": "\u0430\u03b1",
    "e": "\u0435\u03b5",
    "o": "\u043e\u03bf",
    "p": "\u0440",
    "c": "\u0441",
    "i": "\u0456\u03b9",
    "x": "\u0445",
    "y": "\u0443",
    "s": "\u0455",
}
FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}


@dataclass(frozen=True)
class Sample:
    text: str
    category: str
    expected: str
    variant: str


def _case(text: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


def _spacing(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    spaced = [" ".join(w) if len(w) >= 5 and w.isalpha() and rng.random() < 0.3 else w for w in words]
    return "".join(w + rng.choice([" ", "  ", "\t", "\n", " \u00a0"]) for w in spaced).rstrip()


def _homoglyphs(text: str, rng: random.Random) -> str:
    out = []
    for c in text:
        if c in LOOK_ALIKES and rng.random() < 0.4:
            out.append(rng.choice(LOOK_ALIKES[c]))
        elif c in FULLWIDTH and c.isalpha() and rng.random() < 0.1:
            out.append(FULLWIDTH[c])
        else:
            out.append(c)
    return "".join(out)


def _encoded(text: str, rng: random.Random) -> str:
    raw = text.encode()
    if rng.random() < 0.5:
        return f"{rng.choice(['Note', 'Attachment', 'Data'])}: {base64.b64encode(raw).decode()}"
    return f"{rng.choice(['Ref', 'Payload', 'Hex'])}: {raw.hex()}"


def samples() -> list[Sample]:
    """The corpus, and four seeded mutations of each line (an already encoded line is only encoded again: changing
    its case or spacing would break its payload)."""
    rng = random.Random(SEED)
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    out: list[Sample] = []
    for row in rows:
        variants = {"original": row["text"]}
        if not row["category"].startswith("encoded_"):
            variants |= {
                "case": _case(row["text"], rng),
                "spacing": _spacing(row["text"], rng),
                "homoglyph": _homoglyphs(row["text"], rng),
            }
        variants["encoded"] = _encoded(row["text"], rng)
        out += [Sample(text, row["category"], row["expected"], name) for name, text in variants.items()]
    return out


def rates(guard: PromptInjectionGuard) -> tuple[dict[str, dict[str, float]], list[Sample]]:
    """Per expected label and category: the share blocked; and the samples the guard got wrong."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    wrong = []
    for sample in samples():
        blocked = guard.check(sample.text).action == "block"
        for category in (sample.category, "overall"):
            counts[(sample.expected, category)][0] += blocked
            counts[(sample.expected, category)][1] += 1
        if blocked != (sample.expected == "block"):
            wrong.append(sample)
    table: dict[str, dict[str, float]] = defaultdict(dict)
    for (expected, category), (hits, total) in counts.items():
        table[expected][category] = hits / total
    return table, wrong


@pytest.fixture(scope="module")
def measured() -> tuple[dict[str, dict[str, float]], list[Sample]]:
    table, wrong = rates(PromptInjectionGuard())
    for expected, label in (("block", "detection"), ("allow", "false positives")):
        print(f"\n{label}:", ", ".join(f"{c} {r:.1%}" for c, r in sorted(table[expected].items())))
    return table, wrong


def test_the_mutations_are_seeded_so_every_run_measures_the_same_samples() -> None:
    assert samples() == samples()
    assert len(samples()) > 4 * 120


def test_the_heuristics_detect_at_least_90_percent_of_injections_in_every_category(measured) -> None:
    table, wrong = measured
    missed = [(s.category, s.variant, s.text[:80]) for s in wrong if s.expected == "block"]

    assert table["block"]["overall"] >= 0.90, missed
    assert min(table["block"].values()) >= 0.90, (table["block"], missed)


def test_the_heuristics_block_at_most_5_percent_of_benign_look_alikes(measured) -> None:
    table, wrong = measured
    flagged = [(s.category, s.variant, s.text[:80]) for s in wrong if s.expected == "allow"]

    assert table["allow"]["overall"] <= 0.05, flagged


def test_the_readme_states_the_measured_detection_and_false_positive_rates(measured) -> None:
    table, _ = measured
    text = README.read_text(encoding="utf-8")

    stated = re.search(r"detect\s+([\d.]+)%\s+of\s+the\s+attempts\s+and\s+block\s+([\d.]+)%", text)

    assert stated is not None, "the README's Guardrails section states the corpus rates"
    assert float(stated.group(1)) == round(table["block"]["overall"] * 100, 1)
    assert float(stated.group(2)) == round(table["allow"]["overall"] * 100, 1)


def test_the_repositorys_own_documentation_reads_as_benign_in_at_least_99_percent_of_its_paragraphs() -> None:
    # Prose about prompts, instructions and tools, never written for the corpus: a false-positive check at scale.
    root = README.parent
    paragraphs = [
        paragraph
        for name in ("README.md", "ARCHITECTURE.md", "benchmarks/README.md")
        for paragraph in (root / name).read_text(encoding="utf-8").split("\n\n")
        if len(paragraph) > 40
    ]
    guard = PromptInjectionGuard()

    blocked = [paragraph[:80] for paragraph in paragraphs if guard.check(paragraph).action == "block"]

    assert len(paragraphs) > 150
    assert len(blocked) <= len(paragraphs) // 100, blocked
