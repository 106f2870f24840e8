"""Prompt-injection heuristics: scored patterns per category, read through normalization, decoded payloads and
the hidden parts of markup."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Literal

from agentrail_runtime.guardrails.base import Guard, GuardDecision
from agentrail_runtime.guardrails.normalize import Normalized, decoded_payloads, normalize

#: ``compact`` patterns read the text without spaces or punctuation; ``words`` patterns read it case-folded, spaced.
Form = Literal["compact", "words"]

_VERBS_IGNORE = r"(?:ignore|disregard|forget|skip|bypass|override|overrule|nevermind|dismiss|drop)"
_QUALIFIER = r"(?:previous|prior|above|earlier|preceding|original|initial|system|existing|old|current|default)"
_RULES = r"(?:instructions?|prompts?|directions?|rules|guidelines|directives|commands|programming|context|constraints)"
_EXTRACT = r"(?:print|show|reveal|repeat|output|display|dump|tell|give|share|leak|write|list|translate|expose|recite)"
_TO_WHOM = r"(?:me|us)?(?:back)?(?:the(?:text|contents|words)of)?"
_WHOLE = r"(?:full|entire|exact|complete|whole)?"
_PROMPT = r"(?:prompts?|messages?|instructions|rules)"


@dataclass(frozen=True)
class Signal:
    """One scored pattern of a category."""

    pattern: str
    weight: float = 1.0
    form: Form = "compact"
    #: Substrings one of which every match holds: the pattern only runs on a text that has one (a scan is dear).
    hints: tuple[str, ...] = ()

    @cached_property
    def regex(self) -> re.Pattern[str]:
        """The compiled pattern, on first use: most signals run only on a text with one of their hints, and compiling
        every one at import is a cold-start cost most requests never need."""
        return re.compile(self.pattern)

    def found(self, text: Normalized) -> bool:
        read = text.compact if self.form == "compact" else text.words
        if self.hints and not any(hint in read for hint in self.hints):
            return False
        return self.regex.search(read) is not None


@dataclass(frozen=True)
class Category:
    """A kind of injection: its signals' weights add up (each counts once) and it fires at ``threshold``."""

    name: str
    signals: tuple[Signal, ...]
    threshold: float = 1.0

    def score(self, text: Normalized) -> float:
        return sum(signal.weight for signal in self.signals if signal.found(text))


INSTRUCTION_OVERRIDE = Category(
    "instruction_override",
    (
        Signal(
            rf"{_VERBS_IGNORE}(?:all|any|every)?(?:of)?(?:the|your|my|these|those|its)?(?:above)?{_QUALIFIER}{_RULES}",
            hints=(
                "instruction",
                "prompt",
                "direction",
                "rules",
                "guideline",
                "directive",
                "command",
                "programming",
                "context",
                "constraint",
            ),
        ),
        Signal(
            r"(?:forget|ignore|disregard)(?:everything|allthat|all)(?:that)?(?:you)?(?:were|was|havebeen|ve been|vebeen)?(?:told|said|given|instructed|taught)",
            hints=("told", "said", "given", "instructed", "taught"),
        ),
        Signal(rf"(?:stop|quit)(?:following|obeying)(?:your|the|these|all|any)?{_RULES}", hints=("following", "obeying")),
        Signal(
            rf"(?:override|overrule|bypass)(?:your|the|all|any)?(?:system)?{_RULES}", hints=("override", "overrule", "bypass")
        ),
        Signal(
            rf"(?:donot|dont)(?:follow|obey)(?:the|your|any)?{_QUALIFIER}?{_RULES}(?:you(?:were|have been|havebeen)given|earlier|above|before)",
            hints=("donot", "dont"),
        ),
        Signal(r"(?:your|the)?(?:real|actual|true)instructionsare", 0.7, hints=("instructionsare",)),
        Signal(r"newinstructions", 0.5),
        Signal(
            r"(?:override|overrides|supersede|supersedes|replace|replaces)(?:all|any)?(?:the)?(?:earlier|previous|prior|old|system)",
            0.6,
            hints=("override", "supersede", "replace"),
        ),
        Signal(r"yournew(?:task|job|role|goal|purpose)is", 0.6),
        Signal(r"(?:answer|respond|reply)withoutany(?:restrictions|rules|limits|filters)", 0.6, hints=("withoutany",)),
    ),
)
ROLEPLAY_JAILBREAK = Category(
    "roleplay_jailbreak",
    (
        Signal(r"youarenow(?:dan|evil|an?unfiltered|an?unrestricted|an?uncensored|jailbroken|free)"),
        Signal(r"doanythingnow"),
        Signal(r"\bdan\b", 0.5, "words", hints=("dan",)),
        Signal(
            r"(?:no|without(?:any)?|freefrom(?:all|any)?)(?:ethical|moral|safety|content)?(?:restrictions|rules|limits|limitations|filters|contentpolicy|guidelines|policies|censorship)",
            0.6,
            hints=("restriction", "rules", "limit", "filter", "policy", "guideline", "policies", "censorship"),
        ),
        Signal(
            r"(?:pretendyouare|pretendtobe|actas|roleplayas|imagineyouhave|imagineyouare|youarenolonger|behaveas)",
            0.5,
            hints=("pretend", "actas", "roleplay", "imagine", "nolonger", "behaveas"),
        ),
        Signal(r"stayincharacter", 0.5),
        Signal(
            r"(?:developermode|jailbreak|jailbroken|godmode|unfiltered|uncensored)",
            0.5,
            hints=("developermode", "jailb", "godmode", "unfiltered", "uncensored"),
        ),
        Signal(
            r"(?:never|not|wont)refuse|complywith(?:every|any|all)request|answereverything|outputanything",
            0.5,
            hints=("refuse", "complywith", "answereverything", "outputanything"),
        ),
        Signal(
            r"(?:ignore|bypass|disable|turnoff)(?:all|any|your|its|the)?(?:safety|content|ethical)(?:policies|policy|filters|guardrails|restrictions|guidelines)",
            0.7,
            hints=("safety", "content", "ethical"),
        ),
        Signal(r"(?:grandma|grandmother)whousedto", 0.6),
    ),
)
PROMPT_EXTRACTION = Category(
    "prompt_extraction",
    (
        # "your system prompt" is this agent's; "the system prompt" is often a question about prompts, so only the
        # hidden, secret or initial one counts here.
        Signal(
            rf"{_EXTRACT}{_TO_WHOM}your{_WHOLE}(?:hidden|secret|original|initial|system|internal|confidential)(?:system)?{_PROMPT}",
            hints=("prompt", "message", "instructions", "rules"),
        ),
        Signal(
            rf"{_EXTRACT}{_TO_WHOM}the{_WHOLE}(?:hidden|secret|original|initial|internal|confidential)(?:system)?{_PROMPT}",
            hints=("prompt", "message", "instructions", "rules"),
        ),
        Signal(r"what(?:is|are|were|s)your(?:system|hidden|initial|secret)(?:prompt|message|instructions)", hints=("what",)),
        Signal(
            r"(?:whatwere|whatare|repeat|list)(?:all)?(?:the|your)?(?:exact)?(?:instructions|rules)you(?:were|have been|havebeen|got)?given",
            hints=("given",),
        ),
        Signal(
            r"(?:repeat|print|output|show|write)(?:everything|allthetext|thetext|all)(?:above|before)(?:this)?",
            hints=("above", "before"),
        ),
        Signal(r"your(?:system|hidden|initial)(?:prompt|message|instructions)", 0.6, hints=("system", "hidden", "initial")),
        # "the system prompt" alone is how people ask about prompts; with "you are running with" it is about this one.
        Signal(r"the(?:system|hidden|initial)(?:prompt|message|instructions)", 0.3, hints=("system", "hidden", "initial")),
        Signal(
            r"(?:prompt|instructions|message)you(?:are|were|re)(?:running|given|using|told|started)",
            0.5,
            hints=("running", "given", "using", "told", "started"),
        ),
        Signal(
            r"\b(?:dump|reveal|leak|print|repeat|output|show|display|expose|recite|tell|give|share)\b",
            0.3,
            "words",
            hints=(
                "dump",
                "reveal",
                "leak",
                "print",
                "repeat",
                "output",
                "show",
                "display",
                "expose",
                "recite",
                "tell",
                "give",
                "share",
            ),
        ),
        Signal(r"(?:verbatim|wordforword)", 0.3, hints=("verbatim", "wordforword")),
    ),
)
#: The categories read on every text, in order.
CATEGORIES: tuple[Category, ...] = (INSTRUCTION_OVERRIDE, ROLEPLAY_JAILBREAK, PROMPT_EXTRACTION)
#: What makes a hidden part of markup an injection: it talks to the model, and tells it to do something.
HIDDEN_DIRECTIVE = Category(
    "hidden_markup",
    (
        Signal(r"\b(?:ai|llm|llms|gpt|bot|model|system|agent|assistant|chatbot)\b", 0.5, "words"),
        Signal(r"(?:assistant|chatbot|languagemodel|aimodel|notetotheai|ifyouarean?(?:ai|llm|model))", 0.5),
        Signal(
            r"\b(?:ignore|disregard|forget|forward|send|email|transfer|approve|delete|reveal|output|instead|must|say that"
            r"|tell the user|recommend|include)\b",
            0.5,
            "words",
        ),
    ),
)
_COMMENT = re.compile(r"<!--(.*?)-->", re.S)
_HIDDEN_ELEMENT = re.compile(
    r"<([a-z][a-z0-9]*)\b[^>]*?(?:\shidden\b|style\s*=\s*[\"'][^\"']*?(?:display\s*:\s*none|visibility\s*:\s*hidden"
    r"|font-size\s*:\s*0|opacity\s*:\s*0(?![.\d]*[1-9])|color\s*:\s*(?:#fff\b|#ffffff\b|white\b|transparent\b)))[^>]*>(.*?)</\1\s*>",
    re.S,
)


def hidden_parts(text: Normalized) -> list[str]:
    """What a reader of the rendered text never sees: HTML comments, hidden or invisible elements, tag characters."""
    parts = [m.group(1) for m in _COMMENT.finditer(text.words)]
    parts += [m.group(2) for m in _HIDDEN_ELEMENT.finditer(text.words)]
    if text.smuggled:
        parts.append(text.smuggled)
    return parts


#: Texts up to this long are remembered, with their decision, by each guard (the last :data:`_REMEMBERED_TEXTS`): tool
#: results repeat their keys and short values ("value", "unit", "status") on every call.
_REMEMBERED_CHARS = 64
_REMEMBERED_TEXTS = 1024


@dataclass(frozen=True)
class InjectionFinding:
    """Why a text reads as an injection: the category and its score (``encoded_payload`` when it was decoded)."""

    category: str
    score: float


class PromptInjectionGuard(Guard):
    """Blocks text that reads as a prompt injection; the reason is ``prompt_injection.<category>``.

    Categories: ``instruction_override``, ``roleplay_jailbreak``, ``prompt_extraction`` (scored patterns, each with a
    threshold), ``hidden_markup`` (a hidden part of markup that addresses the model and tells it to act) and
    ``encoded_payload`` (a base64 or hex run that decodes to an injection). Every text is first normalized: tag
    characters decoded, zero-width characters removed, NFKC, Cyrillic and Greek look-alikes folded to Latin, and
    spacing and punctuation ignored.

    Parameters
    ----------
    thresholds:
        Per category, the score at which it blocks. Default: 1.0 each.
    categories:
        The scored categories. Default: :data:`CATEGORIES`.
    decode_depth:
        How many times an encoded payload inside a decoded one is decoded again. Default: 2.
    """

    name = "prompt_injection"

    def __init__(
        self,
        *,
        thresholds: Mapping[str, float] | None = None,
        categories: Sequence[Category] = CATEGORIES,
        decode_depth: int = 2,
    ) -> None:
        self.thresholds = dict(thresholds or {})
        self.categories = tuple(categories)
        self.decode_depth = decode_depth
        self._remember()

    def _remember(self) -> None:
        # The decisions on short texts, kept across requests (keys and units of tool results repeat). Bound to this
        # guard's settings: a copy or an unpickled guard starts a memory of its own (see __getstate__).
        self._short = lru_cache(maxsize=_REMEMBERED_TEXTS)(self._decide)

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "_short"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._remember()

    def _threshold(self, category: Category) -> float:
        return self.thresholds.get(category.name, category.threshold)

    def find(self, text: str, *, depth: int | None = None) -> InjectionFinding | None:
        """The first category ``text`` crosses the threshold of, or ``None``."""
        normalized = normalize(text)
        for category in self.categories:
            score = category.score(normalized)
            if score >= self._threshold(category):
                return InjectionFinding(category.name, score)
        for part in hidden_parts(normalized):
            hidden = normalize(part)
            score = max([HIDDEN_DIRECTIVE.score(hidden)] + [c.score(hidden) for c in self.categories])
            if score >= self._threshold(HIDDEN_DIRECTIVE):
                return InjectionFinding(HIDDEN_DIRECTIVE.name, score)
        remaining = self.decode_depth if depth is None else depth
        if remaining > 0:
            for payload in decoded_payloads(normalized.plain):
                inner = self.find(payload, depth=remaining - 1)
                if inner is not None:
                    return InjectionFinding("encoded_payload", inner.score)
        return None

    def check(self, text: str) -> GuardDecision:
        return self._short(text) if len(text) <= _REMEMBERED_CHARS else self._decide(text)

    def _decide(self, text: str) -> GuardDecision:
        finding = self.find(text)
        if finding is None:
            return GuardDecision.allow(text)
        return GuardDecision.block(text, f"prompt_injection.{finding.category}")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "thresholds": {c.name: self._threshold(c) for c in (*self.categories, HIDDEN_DIRECTIVE)},
            "categories": {c.name: [[s.pattern, s.weight, s.form] for s in c.signals] for c in self.categories},
            "decode_depth": self.decode_depth,
        }


__all__ = [
    "CATEGORIES",
    "HIDDEN_DIRECTIVE",
    "INSTRUCTION_OVERRIDE",
    "PROMPT_EXTRACTION",
    "ROLEPLAY_JAILBREAK",
    "Category",
    "InjectionFinding",
    "PromptInjectionGuard",
    "Signal",
    "hidden_parts",
]
