"""What a guard answers, and the pipeline that runs guards in order: the first block wins, redactions compose."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from agentrail_runtime.observability import logger

GuardAction = Literal["allow", "redact", "block"]
#: What an agent answers instead of an answer its output guards blocked (``AgentDefinition.refusal``).
DEFAULT_REFUSAL = "I can't share that answer. Please rephrase your request or contact support."
#: Where a pipeline runs in the agent loop: the user's message, each tool result, the answer.
GuardStage = Literal["input", "tool_result", "output"]


@dataclass(frozen=True)
class GuardDecision:
    """One guard's answer about one text.

    Attributes
    ----------
    action:
        ``allow`` (the text passes as it is), ``redact`` (``text`` is the redacted text) or ``block``.
    text:
        The text after this guard: the input for ``allow`` and ``block``, the redacted text for ``redact``.
    reason:
        A stable code: why it blocked (``prompt_injection.instruction_override``) or what it redacted
        (``pii.email``, several joined by ``,``); ``None`` for ``allow``.
    """

    action: GuardAction
    text: str
    reason: str | None = None

    @classmethod
    def allow(cls, text: str) -> GuardDecision:
        return cls("allow", text)

    @classmethod
    def redact(cls, text: str, reason: str) -> GuardDecision:
        return cls("redact", text, reason)

    @classmethod
    def block(cls, text: str, reason: str) -> GuardDecision:
        return cls("block", text, reason)


class Guard(ABC):
    """A cheap, deterministic check of one text; subclass it for a guard of your own.

    A guard must not call a model or the network on the hot path: it runs on every message, tool result and answer.
    """

    #: Names the guard in decisions, logs and the agent version.
    name: str = "guard"

    @abstractmethod
    def check(self, text: str) -> GuardDecision:
        """Allow, redact or block ``text``."""

    def describe(self) -> dict[str, Any]:
        """What the agent version hashes of this guard (plain JSON): its name and the settings that change what it
        does. Override it when a guard has settings; the default is the name and the class."""
        return {"name": self.name, "class": f"{type(self).__module__}.{type(self).__qualname__}"}


class GuardEvent(BaseModel):
    """A guard that blocked or redacted something during a run (never the text itself)."""

    stage: GuardStage
    guard: str
    action: Literal["redact", "block"]
    reason: str


#: Bedrock's guardrail intervened in a model call (Converse's ``stopReason`` ``guardrail_intervened``): the run's
#: answer is the guardrail's blocked message.
BEDROCK_GUARDRAIL_INTERVENED = GuardEvent(
    stage="output", guard="bedrock_guardrail", action="block", reason="bedrock_guardrail.intervened"
)


@dataclass(frozen=True)
class PipelineDecision:
    """What a pipeline decided about one text.

    Attributes
    ----------
    action:
        ``block`` when a guard blocked; else ``redact`` when any guard redacted; else ``allow``.
    text:
        The text with every redaction applied (the original text when blocked).
    events:
        The redactions made, in order, and the block (last) if any.
    """

    action: GuardAction
    text: str
    events: tuple[GuardEvent, ...] = ()

    @property
    def blocked_by(self) -> GuardEvent | None:
        return self.events[-1] if self.action == "block" else None


class GuardBlocked(Exception):
    """A guard blocked a text; the API answers a blocked user message with 400 and the reason code.

    Attributes
    ----------
    stage, guard, reason:
        Where the pipeline ran, the guard's name and its reason code (e.g. ``prompt_injection.instruction_override``).
    """

    def __init__(self, event: GuardEvent) -> None:
        super().__init__(f"the {event.stage} guard {event.guard!r} blocked the text: {event.reason}")
        self.event = event
        self.stage = event.stage
        self.guard = event.guard
        self.reason = event.reason


class GuardPipeline:
    """Guards run in order on one text: a redaction hands the redacted text to the next guard; the first block
    stops the pipeline and wins.

    Parameters
    ----------
    guards:
        The guards, in the order they run. Default: none (everything is allowed).
    stage:
        Where the pipeline runs; recorded in its events. Default: ``input``.
    """

    def __init__(self, guards: Iterable[Guard] = (), *, stage: GuardStage = "input") -> None:
        self.guards: tuple[Guard, ...] = tuple(guards)
        self.stage: GuardStage = stage

    def __bool__(self) -> bool:
        return bool(self.guards)

    def check(self, text: str) -> PipelineDecision:
        """Run every guard on ``text`` (until one blocks)."""
        events: list[GuardEvent] = []
        current = text
        for guard in self.guards:
            decision = guard.check(current)
            if decision.action == "allow":
                continue
            event = GuardEvent(stage=self.stage, guard=guard.name, action=decision.action, reason=decision.reason or guard.name)
            events.append(event)
            if decision.action == "block":
                return PipelineDecision("block", text, tuple(events))
            current = decision.text
        return PipelineDecision("redact" if events else "allow", current, tuple(events))

    def enforce(self, text: str) -> PipelineDecision:
        """:meth:`check`, with each event logged (:func:`log_guard_event`), raising when a guard blocks.

        Raises
        ------
        GuardBlocked
            A guard blocked ``text``.
        """
        decision = self.check(text)
        for event in decision.events:
            log_guard_event(event)
        if decision.blocked_by is not None:
            raise GuardBlocked(decision.blocked_by)
        return decision


def log_guard_event(event: GuardEvent) -> None:
    """One log line per guard that blocked or redacted: its stage, name, action and reason code, never the text."""
    logger.info(
        "guard",
        extra={"event": "guard", "stage": event.stage, "guard": event.guard, "action": event.action, "reason": event.reason},
    )


def describe_guards(guards: Sequence[Guard]) -> list[dict[str, Any]]:
    """The version inputs of ``guards``, in order (their order changes what they do)."""
    return [guard.describe() for guard in guards]


__all__ = [
    "BEDROCK_GUARDRAIL_INTERVENED",
    "DEFAULT_REFUSAL",
    "Guard",
    "GuardAction",
    "GuardBlocked",
    "GuardDecision",
    "GuardEvent",
    "GuardPipeline",
    "GuardStage",
    "PipelineDecision",
    "describe_guards",
    "log_guard_event",
]
