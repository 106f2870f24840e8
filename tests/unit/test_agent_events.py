"""The loop's event stream: order, token batching, output guards, masking, a failing sink, and streaming that is real."""

from __future__ import annotations

import json
import queue
import threading
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from agentrail_runtime.agent.events import (
    TOKEN_BATCH_DELTAS,
    TOKEN_BATCH_SECONDS,
    BackgroundSink,
    FinalEvent,
    StepStarted,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
    parse_event,
)
from agentrail_runtime.agent.loop import Agent, AgentStatus, ApprovalDecision
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.demo import calculator
from agentrail_runtime.guardrails.deny import DenyListGuard
from agentrail_runtime.guardrails.pii import PiiGuard
from agentrail_runtime.models.base import Message, ModelProvider, ModelResponse, ToolSpec
from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.observability import never_log
from tests.streaming_models import HAND_OFF_TIMEOUT, HeldStreamModel, ScriptedStreamingModel, answer, asks, words


def types(events: list[Any]) -> list[str]:
    return [event.type for event in events]


def streamed_text(events: list[Any]) -> str:
    return "".join(event.text for event in events if isinstance(event, TokenEvent))


# -- order and content ----------------------------------------------------------------


def test_a_tool_run_streams_its_steps_tool_call_result_tokens_and_final_in_order(clock):
    # given: the local model and the calculator
    agent = Agent(model=LocalModel(), tools=[calculator])
    events: list[Any] = []
    # when: it runs with a sink
    result = agent.run("What is (12 + 30) * 2?", on_event=events.append)
    # then: step 1 asks for the tool, step 2 streams the answer, and final closes the run with its usage and cost
    assert types(events) == ["step_started", "tool_call", "tool_result", "step_started", "token", "final"]
    step1, call, outcome, step2, _, final = events
    assert (step1.step, step2.step) == (1, 2)
    assert (call.name, call.arguments, call.step) == ("calculator", {"expression": "(12 + 30) * 2"}, 1)
    assert (outcome.call_id, outcome.outcome, outcome.content) == (call.call_id, "success", 84)
    assert streamed_text(events) == result.answer == "calculator returned 84."
    assert final == FinalEvent(
        status="completed",
        answer=result.answer,
        model="local",
        steps=2,
        usage=result.usage,
        cost_usd=result.cost_usd,
        replaced=False,
    )


def test_every_event_is_json_with_a_type_and_reads_back_as_the_same_event(clock):
    # given: the events of a tool run
    events: list[Any] = []
    Agent(model=LocalModel(), tools=[calculator]).run("What is 6 * 7?", on_event=events.append)
    # when: each is dumped to JSON and parsed back
    dumped = [json.dumps(event.model_dump(mode="json")) for event in events]
    # then: each carries its type and reads back equal, from a string or from a dict
    assert [json.loads(line)["type"] for line in dumped] == types(events)
    assert [parse_event(line) for line in dumped] == events
    assert [parse_event(json.loads(line)) for line in dumped] == events


def test_without_a_sink_the_loop_calls_converse_and_never_stream():
    # given: a model that counts its streaming and non-streaming calls
    model = ScriptedStreamingModel(answer("Hello there."))
    # when: a run without a sink answers
    result = Agent(model=model).run("hi")
    # then: only converse was called
    assert (model.conversed, model.streamed, result.answer) == (1, 0, "Hello there.")


def test_a_provider_without_streaming_gives_its_whole_text_as_one_token_event(clock):
    # given: a provider that only implements converse
    class Plain(ModelProvider):
        name = "plain"

        def converse(self, *, system: str, messages: Any, tools: Any, max_tokens: int) -> ModelResponse:
            return answer("All of it at once.")

        def check(self) -> None:
            return None

    events: list[Any] = []
    # when: a run with a sink answers
    Agent(model=Plain()).run("hi", on_event=events.append)
    # then: its text arrives whole, in one token event
    assert [(e.text, e.deltas) for e in events if isinstance(e, TokenEvent)] == [("All of it at once.", 1)]


def test_the_local_model_streams_its_answer_word_by_word_and_the_pieces_make_the_answer():
    pieces: list[str] = []
    # when: the local model streams an answer
    response = LocalModel().stream(
        system="", messages=[Message.user("my name is Ada")], tools=[], max_tokens=200, on_text=pieces.append
    )
    # then: one piece per word, and joined they are the response's text
    assert len(pieces) == len(response.message.text.split()) > 3
    assert "".join(pieces) == response.message.text


# -- token batching -------------------------------------------------------------------


def test_token_deltas_are_sent_in_batches_of_twenty_when_no_time_passes(clock):
    # given: an answer of 45 deltas streamed while the clock stands still
    deltas = [f"w{i} " for i in range(45)]
    model = ScriptedStreamingModel((answer("".join(deltas)), deltas))
    events: list[Any] = []
    # when: the run streams it
    Agent(model=model).run("hi", on_event=events.append)
    # then: two full batches, then the rest when the model call ends
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert [t.deltas for t in tokens] == [TOKEN_BATCH_DELTAS, TOKEN_BATCH_DELTAS, 5]
    assert streamed_text(events) == "".join(deltas)


def test_a_delta_arriving_over_fifty_ms_after_the_previous_token_event_goes_out_at_once_with_its_batch(clock):
    # given: a model whose first delta comes 60 ms after the call starts, then two at once, then one 60 ms later
    later = TOKEN_BATCH_SECONDS + 0.01
    delays = {0: later, 3: later}
    model = ScriptedStreamingModel(
        (answer("a b c d e"), ["a ", "b ", "c ", "d ", "e"]), between=lambda index: clock.advance(delays.get(index, 0.0))
    )
    events: list[Any] = []
    # when: the run streams it
    Agent(model=model).run("hi", on_event=events.append)
    # then: the first delta alone, the next three when the time is up again, the last at the end of the call
    assert [e.text for e in events if isinstance(e, TokenEvent)] == ["a ", "b c d ", "e"]


def test_the_first_token_event_arrives_while_the_model_call_is_still_running(clock):
    # given: a model that streams one batch of deltas (the clock stands still: the batch is full at 20), then holds
    # its stream open at a barrier
    model = HeldStreamModel(" ".join(f"word{i}" for i in range(30)), first=TOKEN_BATCH_DELTAS)
    received: queue.Queue[Any] = queue.Queue()
    agent = Agent(model=model)
    results: list[Any] = []
    runner = threading.Thread(target=lambda: results.append(agent.run("hi", on_event=received.put)))
    # when: the run starts on its own thread, and the test waits for its first token event
    runner.start()
    first = received.get(timeout=HAND_OFF_TIMEOUT)
    token = received.get(timeout=HAND_OFF_TIMEOUT)
    still_running = not model.finished.is_set()
    model.barrier.wait()  # only now may the model finish its stream
    runner.join(timeout=HAND_OFF_TIMEOUT)
    # then: the token event came while the model call had not returned; the run then finished normally
    assert isinstance(first, StepStarted) and isinstance(token, TokenEvent)
    assert still_running
    assert token.text == "".join(words(model.text)[:TOKEN_BATCH_DELTAS])
    rest = []
    while not received.empty():
        rest.append(received.get())
    assert rest[-1].type == "final" and rest[-1].answer == model.text == results[0].answer
    assert token.text + streamed_text(rest) == model.text


# -- output guards --------------------------------------------------------------------


def test_with_output_guards_an_answer_they_block_never_reaches_the_sink_and_final_carries_the_refusal(clock):
    # given: an agent whose output guards deny a topic the model's answer mentions
    model = ScriptedStreamingModel(answer("Our internal roadmap says we ship in May."))
    agent = Agent(model=model, output_guards=[DenyListGuard(topics=["internal roadmap"])])
    events: list[Any] = []
    # when: it runs with a sink
    result = agent.run("When do you ship?", on_event=events.append)
    # then: no token event at all; final carries the refusal the run stored, marked replaced
    assert types(events) == ["step_started", "final"]
    assert "roadmap" not in json.dumps([e.model_dump(mode="json") for e in events])
    assert events[-1].answer == result.answer == agent.refusal
    assert events[-1].replaced is True


def test_with_output_guards_a_redacted_answer_streams_no_tokens_and_final_carries_the_redacted_text(clock):
    # given: an agent whose output guards redact personal data, and an answer with an email address
    model = ScriptedStreamingModel(answer("Write to ada@example.com for a refund."))
    agent = Agent(model=model, output_guards=[PiiGuard()])
    events: list[Any] = []
    # when: it runs with a sink
    result = agent.run("Who do I write to?", on_event=events.append)
    # then: the address is in no event; final's answer is the redacted one
    assert "ada@example.com" not in json.dumps([e.model_dump(mode="json") for e in events])
    assert types(events) == ["step_started", "final"]
    assert events[-1].answer == result.answer and "[REDACTED:email]" in result.answer and events[-1].replaced


def test_with_output_guards_an_answer_they_pass_is_streamed_after_they_ran_and_before_final(clock):
    # given: output guards that pass the answer, and a model that records whether its stream has returned
    finished = threading.Event()
    model = ScriptedStreamingModel(answer("The order ships on Monday."))
    agent = Agent(model=model, output_guards=[DenyListGuard(topics=["internal roadmap"])])
    seen_during_the_call: list[Any] = []

    def sink(event: Any) -> None:
        if isinstance(event, TokenEvent) and not finished.is_set():
            seen_during_the_call.append(event)

    class Recording(ModelProvider):
        name = "recording"

        def converse(self, **_: Any) -> ModelResponse:
            raise AssertionError("streams")

        def stream(self, **kwargs: Any) -> ModelResponse:
            response = model.stream(**kwargs)
            finished.set()
            return response

        def check(self) -> None:
            return None

    agent.model = Recording()
    events: list[Any] = []
    # when: it runs
    result = agent.run("When does it ship?", on_event=lambda e: (sink(e), events.append(e)))
    # then: no token while the model streamed (held for the guards); the whole answer afterwards, then final
    assert seen_during_the_call == []
    assert types(events) == ["step_started", "token", "final"]
    assert streamed_text(events) == result.answer == "The order ships on Monday."
    assert events[-1].replaced is False


def test_with_output_guards_the_text_a_model_writes_before_calling_a_tool_is_never_streamed(clock):
    # given: a model that says something before asking for a tool, then answers
    model = ScriptedStreamingModel(
        asks("call-1", "calculator", {"expression": "2 + 2"}, text="Let me see the internal roadmap first."),
        answer("It is 4."),
    )
    agent = Agent(model=model, tools=[calculator], output_guards=[DenyListGuard(topics=["internal roadmap"])])
    events: list[Any] = []
    # when: it runs
    agent.run("What is 2 + 2?", on_event=events.append)
    # then: only the answer's text was streamed
    assert streamed_text(events) == "It is 4."
    assert types(events) == ["step_started", "tool_call", "tool_result", "step_started", "token", "final"]


def test_without_output_guards_the_text_before_a_tool_call_streams_live_and_final_says_it_was_not_the_answer(clock):
    # given: no output guards, a model that speaks before a tool call, and a run that stops after that step
    model = ScriptedStreamingModel(asks("call-1", "calculator", {"expression": "2 + 2"}, text="Let me compute."))
    events: list[Any] = []
    # when: the run ends on the step limit
    result = Agent(model=model, tools=[calculator], max_steps=1).run("2 + 2?", on_event=events.append)
    # then: the text was streamed, and final (without an answer) says the tokens were not the answer
    assert result.status is AgentStatus.MAX_STEPS_EXCEEDED
    assert streamed_text(events) == "Let me compute."
    assert events[-1].answer is None and events[-1].replaced is True


# -- a sink that fails ------------------------------------------------------------------


def test_a_sink_that_raises_on_every_event_changes_nothing_in_the_run_and_is_logged_once(clock, stdout_records):
    # given: a sink that always raises
    def broken(event: Any) -> None:
        raise ConnectionError("gone")

    agent = Agent(model=LocalModel(), tools=[calculator])
    stdout_records()
    # when: the same request runs with it and without a sink
    streamed = agent.run("What is (12 + 30) * 2?", on_event=broken)
    failures = [r for r in stdout_records() if r.get("event") == "event_sink_failed"]
    plain = agent.run("What is (12 + 30) * 2?")
    # then: the same answer, status, usage and transcript; one warning naming the first event's type
    assert streamed.model_dump(exclude={"step_latencies_ms", "tool_calls"}) == plain.model_dump(
        exclude={"step_latencies_ms", "tool_calls"}
    )
    assert [(r["event_type"], r["error"]) for r in failures] == [("step_started", "ConnectionError")]


def test_a_slow_sink_behind_a_background_sink_never_holds_up_the_run_and_gets_every_event_in_order(clock):
    # given: a sink that blocks on its first event until the test lets it go, behind a BackgroundSink
    release = threading.Event()
    delivered: list[Any] = []

    def slow(event: Any) -> None:
        release.wait(HAND_OFF_TIMEOUT)
        delivered.append(event)

    background = BackgroundSink(slow)
    agent = Agent(model=LocalModel(), tools=[calculator])
    # when: the run ends while the sink is still stuck on its first event
    result = agent.run("What is (12 + 30) * 2?", on_event=background)
    stuck = delivered == []
    release.set()
    drained = background.close(timeout=HAND_OFF_TIMEOUT)
    # then: the run did not wait for the sink; closing delivered every event, in order
    assert stuck and drained
    assert types(delivered) == ["step_started", "tool_call", "tool_result", "step_started", "token", "final"]
    assert delivered[-1].answer == result.answer


def test_closing_a_background_sink_whose_sink_is_stuck_says_so_instead_of_waiting_for_ever():
    # given: a background sink whose sink blocks until released
    release = threading.Event()
    background = BackgroundSink(lambda event: release.wait(HAND_OFF_TIMEOUT))
    background(StepStarted(step=1))
    # when: it is closed without waiting
    drained = background.close(timeout=0)
    release.set()
    # then: it reports the events it could not deliver, and finishes once the sink returns
    assert drained is False
    assert background.close(timeout=HAND_OFF_TIMEOUT) is True


# -- masking and approval ---------------------------------------------------------------


def test_a_fetched_secret_in_tool_arguments_or_results_is_masked_in_the_events(clock):
    # given: a secret fetched in this environment, a model that passes it as an argument, and a tool that returns it
    secret = "tok-7f3e91c2a8"
    never_log(secret)

    @tool
    def lookup(query: str) -> dict[str, Any]:
        """Look a customer up."""
        return {"token": SecretStr(secret), "echo": query}

    model = ScriptedStreamingModel(asks("call-1", "lookup", {"query": f"key {secret}"}), answer("Found."))
    events: list[Any] = []
    # when: it runs with a sink
    Agent(model=model, tools=[lookup]).run("look up", on_event=events.append)
    # then: the secret is in no event; the masked forms are
    dumped = json.dumps([e.model_dump(mode="json") for e in events])
    assert secret not in dumped
    call = next(e for e in events if isinstance(e, ToolCallEvent))
    result = next(e for e in events if isinstance(e, ToolResultEvent))
    assert call.arguments == {"query": "key **********"}
    assert result.content == {"token": "**********", "echo": "key **********"}


def test_a_call_that_needs_approval_streams_a_pending_result_and_the_approved_run_streams_the_rest(clock):
    # given: a refund tool that needs approval over 100 USD
    @tool(requires_approval=lambda arguments: arguments["amount_usd"] > 100)
    def refund(order_id: str, amount_usd: float) -> str:
        """Refund an order."""
        return f"refunded {amount_usd} on {order_id}"

    agent = Agent(model=LocalModel(), tools=[refund])
    spec: ToolSpec = refund.spec
    model = ScriptedStreamingModel(asks("call-1", spec.name, {"order_id": "A-1", "amount_usd": 250}), answer("Refunded."))
    agent.model = model
    paused_events: list[Any] = []
    # when: the run pauses, then continues after an approval
    paused = agent.run("refund A-1", on_event=paused_events.append)
    assert paused.checkpoint is not None
    resumed_events: list[Any] = []
    agent.advance(paused.checkpoint, decision=ApprovalDecision(approved=True), on_event=resumed_events.append)
    # then: the pause streams the call, a pending result and final awaiting_approval; the continuation streams the
    # approved call, its result, the answer and final
    assert types(paused_events) == ["step_started", "tool_call", "tool_result", "final"]
    assert (paused_events[2].outcome, paused_events[2].content) == ("pending_approval", None)
    assert paused_events[-1].status == "awaiting_approval"
    assert types(resumed_events) == ["tool_call", "tool_result", "step_started", "token", "final"]
    assert [e.step for e in resumed_events[:3]] == [1, 1, 2]
    assert resumed_events[1].content == "refunded 250.0 on A-1"
    assert resumed_events[-1].status == "completed" and resumed_events[-1].steps == 2


@pytest.mark.parametrize("bad", [{"type": "nope"}, {"type": "token", "step": 1}], ids=["unknown type", "missing field"])
def test_parse_event_refuses_what_is_no_event(bad):
    with pytest.raises(ValidationError, match="validation error"):
        parse_event(bad)
