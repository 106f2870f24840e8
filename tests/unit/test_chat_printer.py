"""``agentrail chat`` prints a turn's events as they stream: tokens inline, tool calls and the summary on lines of
their own, and the stored answer again when the streamed text is not it."""

from __future__ import annotations

import io

from agentrail_cli.chat import ChatPrinter

USAGE = {"input_tokens": 120, "output_tokens": 9}


def printed(*events: dict) -> str:
    out = io.StringIO()
    printer = ChatPrinter(out)
    for event in events:
        printer.event(event)
    return out.getvalue()


def test_tokens_stream_inline_and_tool_calls_and_the_summary_get_lines_of_their_own():
    text = printed(
        {"type": "step_started", "step": 1},
        {"type": "tool_call", "step": 1, "call_id": "c1", "name": "calculator", "arguments": {"expression": "2 + 2"}},
        {"type": "tool_result", "step": 1, "call_id": "c1", "name": "calculator", "outcome": "success", "content": 4},
        {"type": "token", "step": 2, "text": "The answer ", "deltas": 2},
        {"type": "token", "step": 2, "text": "is 4.", "deltas": 2},
        {"type": "final", "status": "completed", "answer": "The answer is 4.", "steps": 2, "usage": USAGE, "cost_usd": 0.00012},
    )

    assert text.splitlines() == [
        '→ calculator({"expression": "2 + 2"})',
        "← calculator: success",
        "The answer is 4.",
        "[completed: 2 steps, 120 in, 9 out, $0.000120]",
    ]


def test_a_replaced_answer_is_printed_after_what_streamed_and_an_unpriced_model_shows_no_cost():
    text = printed(
        {"type": "token", "step": 1, "text": "my card is 4111", "deltas": 4},
        {
            "type": "final",
            "status": "completed",
            "answer": "my card is [REDACTED:card]",
            "steps": 1,
            "usage": USAGE,
            "cost_usd": None,
            "replaced": True,
        },
    )

    assert text.splitlines() == ["my card is 4111", "my card is [REDACTED:card]", "[completed: 1 steps, 120 in, 9 out]"]
