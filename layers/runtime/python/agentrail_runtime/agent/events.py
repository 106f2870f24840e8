"""What a run streams while it runs: its steps, tool calls and results, the answer's tokens, and the final answer.

A caller passes an :data:`EventSink` (any callable taking one event) to :meth:`Agent.run` or :meth:`Agent.advance`
(``on_event=``); the loop calls it on the run's own thread, in this order for each model call: ``step_started``,
``token`` events (the model's text as it arrives), then per tool call ``tool_call`` and ``tool_result``; the run ends
with one ``final``. Every event is a pydantic model with a ``type`` field: ``event.model_dump(mode="json")`` is its
JSON form and :func:`parse_event` reads it back.

Token batching
    Text deltas are sent in batches, never one event per delta: a ``token`` event goes out when its batch holds
    :data:`TOKEN_BATCH_DELTAS` deltas, or when a delta arrives :data:`TOKEN_BATCH_SECONDS` or more after the previous
    ``token`` event of the run (or after the start of the model call, so the first delta of a slow model goes out at
    once); what is left goes out when the model call ends. Time is read from :mod:`agentrail_runtime.clock`. There is
    no timer thread: a batch waits for the next delta or the end of the call.

Output guards
    When the agent has output guards, no text reaches the sink before they judged it: the text of a model call is
    held until the call ends; the text of the answer is then sent (in batches) only when the guards let it through
    unchanged, and the text a model writes before asking for tools is never sent (the guards judge answers only).
    ``final.answer`` is always the answer the run stored; ``final.replaced`` is ``True`` when the token events of the
    run's last model call are not that answer (the guards redacted or blocked it, Bedrock's guardrail intervened, or
    the run ended without an answer): a client then shows ``final.answer`` instead of what it streamed.

A sink that raises never fails the run: the error is logged (once per run) and the run goes on; the answer the run
returns and stores is the same with or without a sink. The sink is called synchronously, so it should return
quickly: wrap a slow one (a network call per event) in :class:`BackgroundSink`. Without a sink the loop calls the
model's non-streaming ``converse`` and builds no event at all.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from contextlib import suppress
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agentrail_runtime import clock
from agentrail_runtime.models.base import Usage
from agentrail_runtime.observability import logger

#: A batch of token deltas is sent once it holds this many deltas.
TOKEN_BATCH_DELTAS = 20
#: ... or once a delta arrives this many seconds after the previous token event (or the start of the model call).
TOKEN_BATCH_SECONDS = 0.05


class StepStarted(BaseModel):
    """A model call begins: ``step`` counts the run's model calls from 1 (across the invocations of a long run)."""

    model_config = ConfigDict(frozen=True)
    type: Literal["step_started"] = "step_started"
    step: int


class TokenEvent(BaseModel):
    """A batch of the model's text: ``text`` is the concatenation of ``deltas`` deltas, in order."""

    model_config = ConfigDict(frozen=True)
    type: Literal["token"] = "token"
    step: int
    text: str
    deltas: int


class ToolCallEvent(BaseModel):
    """The loop handles a tool call the model asked for; ``arguments`` are the model's, with every fetched secret
    masked (``**********``)."""

    model_config = ConfigDict(frozen=True)
    type: Literal["tool_call"] = "tool_call"
    step: int
    call_id: str
    name: str
    arguments: dict[str, Any]


class ToolResultEvent(BaseModel):
    """A tool call's outcome and ``content``, exactly as the model is shown it: secrets masked, cut to the cap,
    through the tool-result guards (a withheld notice when they blocked it). ``content`` is ``None`` for
    ``pending_approval``."""

    model_config = ConfigDict(frozen=True)
    type: Literal["tool_result"] = "tool_result"
    step: int
    call_id: str
    name: str
    outcome: str
    content: Any = None


class FinalEvent(BaseModel):
    """The run ended: its status, its answer as stored (after the output guards), usage and cost.

    ``replaced`` is ``True`` when the token events of the run's last model call are not ``answer``: show ``answer``.
    """

    model_config = ConfigDict(frozen=True)
    type: Literal["final"] = "final"
    status: str
    answer: str | None
    model: str
    steps: int
    usage: Usage
    cost_usd: float | None
    replaced: bool = False


AgentEvent = Annotated[StepStarted | TokenEvent | ToolCallEvent | ToolResultEvent | FinalEvent, Field(discriminator="type")]

#: Receives the events of a run (see the module's docstring): a plain callable, e.g. ``queue.put`` or a publisher.
EventSink = Callable[[AgentEvent], None]


@cache
def _events() -> TypeAdapter[AgentEvent]:
    # Built on first use: it costs milliseconds, and only a reader of stored events needs it (never a cold start).
    return TypeAdapter(AgentEvent)


def parse_event(data: dict[str, Any] | str | bytes) -> AgentEvent:
    """An event from its JSON form (``event.model_dump(mode="json")``, or that dumped to a string).

    Raises
    ------
    pydantic.ValidationError
        When ``data`` is no event.
    """
    if isinstance(data, dict):
        return _events().validate_python(data)
    return _events().validate_json(data)


def deliver(sink: EventSink, event: AgentEvent) -> bool:
    """Call ``sink`` with ``event``; ``False`` (and a warning in the log) when it raised instead of failing the caller."""
    try:
        sink(event)
    except Exception as error:
        logger.warning(
            "an event sink failed; the run goes on",
            extra={"event": "event_sink_failed", "event_type": event.type, "error": type(error).__name__},
        )
        return False
    return True


class BackgroundSink:
    """Hands the events to ``sink`` on a thread of its own, in order, so that a slow sink (a network call per event)
    never holds up the run.

    Call :meth:`close` before the invocation returns (Lambda freezes threads between invocations): it waits until
    the events handed over so far were delivered. Errors of ``sink`` are logged and ignored, as the loop does.

    Parameters
    ----------
    sink:
        Receives the events, on the background thread.
    """

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink
        self._queue: queue.SimpleQueue[AgentEvent | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drain, name="agentrail-events", daemon=True)
        self._thread.start()

    def __call__(self, event: AgentEvent) -> None:
        self._queue.put(event)

    def close(self, timeout: float | None = None) -> bool:
        """Stop taking events and wait up to ``timeout`` seconds (default: as long as it takes) for the rest to be
        delivered; ``False`` when some were still waiting at the timeout. Events handed over after it are dropped."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _drain(self) -> None:
        while (event := self._queue.get()) is not None:
            deliver(self._sink, event)


class FinalAfterRelease:
    """Passes every event on to ``sink`` at once, except ``final``, kept until :meth:`release`: a caller that stores
    the run's result sends ``final`` once it is stored, so ``final`` always means "stored"."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self.final: FinalEvent | None = None

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, FinalEvent):
            self.final = event
        else:
            self.sink(event)

    def release(self) -> None:
        """Send the kept ``final`` event (if the run sent one); errors of ``sink`` are logged, never raised."""
        if self.final is not None:
            deliver(self.sink, self.final)


class RunEvents:
    """The events of one run (one invocation of the loop), batched and guarded as the module's docstring says.

    Parameters
    ----------
    sink:
        Receives the events; its errors are logged once and never raised.
    hold_text:
        Hold each model call's text until the run decides it is the answer (the agent has output guards).
    """

    def __init__(self, sink: EventSink, *, hold_text: bool) -> None:
        self._sink = sink
        self._hold = hold_text
        self._failed = False
        self._step = 0
        self._step_text: list[str] = []
        self._sent: list[str] = []
        self._pending: list[str] = []
        self._last_sent = 0.0

    def emit(self, event: AgentEvent) -> None:
        if not self._failed:
            self._failed = not deliver(self._sink, event)
            return
        # Logged once: a sink gone bad (a closed connection) would otherwise add a line per event.
        with suppress(Exception):
            self._sink(event)

    def step_started(self, step: int) -> None:
        self._step = step
        self._step_text = []
        self._sent = []
        self._pending = []
        self._last_sent = clock.now()
        self.emit(StepStarted(step=step))

    def text(self, delta: str) -> None:
        """A text delta from the model (the ``on_text`` of :meth:`ModelProvider.stream`)."""
        if not delta:
            return
        self._step_text.append(delta)
        if self._hold:
            return
        self._pending.append(delta)
        now = clock.now()
        if len(self._pending) >= TOKEN_BATCH_DELTAS or now - self._last_sent >= TOKEN_BATCH_SECONDS:
            self._send(self._pending, now)
            self._pending = []

    def model_call_ended(self) -> None:
        """Send what is left of the call's batch (held text stays held)."""
        if self._pending:
            self._send(self._pending, clock.now())
            self._pending = []

    def tool_call(self, step: int, call_id: str, name: str, arguments: dict[str, Any]) -> None:
        self.emit(ToolCallEvent(step=step, call_id=call_id, name=name, arguments=arguments))

    def tool_result(self, step: int, call_id: str, name: str, outcome: str, content: Any) -> None:
        self.emit(ToolResultEvent(step=step, call_id=call_id, name=name, outcome=outcome, content=content))

    def final(
        self, *, status: str, answer: str | None, model: str, steps: int, usage: Usage, cost_usd: float | None
    ) -> FinalEvent:
        """Send the ``final`` event, after the held text of the answer when the guards left it unchanged."""
        self.model_call_ended()
        if self._hold and answer and answer == "".join(self._step_text):
            for start in range(0, len(self._step_text), TOKEN_BATCH_DELTAS):
                self._send(self._step_text[start : start + TOKEN_BATCH_DELTAS], clock.now())
        event = FinalEvent(
            status=status,
            answer=answer,
            model=model,
            steps=steps,
            usage=usage,
            cost_usd=cost_usd,
            replaced="".join(self._sent) != (answer or ""),
        )
        self.emit(event)
        return event

    def _send(self, deltas: list[str], now: float) -> None:
        text = "".join(deltas)
        self._sent.append(text)
        self._last_sent = now
        self.emit(TokenEvent(step=self._step, text=text, deltas=len(deltas)))


__all__ = [
    "TOKEN_BATCH_DELTAS",
    "TOKEN_BATCH_SECONDS",
    "AgentEvent",
    "BackgroundSink",
    "EventSink",
    "FinalAfterRelease",
    "FinalEvent",
    "RunEvents",
    "StepStarted",
    "TokenEvent",
    "ToolCallEvent",
    "ToolResultEvent",
    "deliver",
    "parse_event",
]
