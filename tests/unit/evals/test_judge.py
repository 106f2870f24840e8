"""The LLM judge: the offline judge separates a good answer from a bad one; a model judge's reply is parsed strictly."""

from __future__ import annotations

from collections.abc import Sequence

from agentrail_runtime.evals import JudgeVerdict, LocalJudge, ModelJudge
from agentrail_runtime.evals.judge import JUDGE_SYSTEM_PROMPT, parse_verdict
from agentrail_runtime.models.base import Message, ModelProvider, ModelResponse, TextBlock, ToolSpec, Usage

RUBRIC = 'The answer says order A-1001 has "shipped" with carrier "UPS" and an eta of 2026-12-02.'
GOOD = 'lookup_order returned {"carrier": "UPS", "eta": "2026-12-02", "order_id": "A-1001", "status": "shipped"}.'
BAD = "I could not find anything about your order; please contact support."


def test_the_local_judge_scores_a_good_answer_above_the_default_threshold_and_a_bad_one_below_it():
    judge = LocalJudge()

    good = judge.score(prompt="Where is order A-1001?", answer=GOOD, rubric=RUBRIC)
    bad = judge.score(prompt="Where is order A-1001?", answer=BAD, rubric=RUBRIC)

    assert good.score >= 0.9 and bad.score < 0.3
    assert "missing" in bad.reason and '"UPS"' in bad.reason


def test_the_local_judge_is_deterministic_and_wants_quoted_phrases_verbatim():
    judge = LocalJudge()
    rubric = 'It says "refund issued" for order A-1003.'

    first = judge.score(prompt="", answer="the refund was issued for order A-1003", rubric=rubric)
    again = judge.score(prompt="", answer="the refund was issued for order A-1003", rubric=rubric)
    verbatim = judge.score(prompt="", answer="refund issued for order A-1003", rubric=rubric)

    assert first == again and first.score < 1.0
    assert verbatim.score == 1.0


def test_the_local_judge_gives_zero_to_a_rubric_with_nothing_to_look_for():
    verdict = LocalJudge().score(prompt="", answer="anything", rubric="The answer should be correct.")

    assert verdict.score == 0.0 and "nothing" in verdict.reason


class ScriptedModel(ModelProvider):
    """Answers every call with ``reply`` and keeps what it was sent."""

    name = "bedrock:amazon.nova-lite-v1:0"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.calls: list[tuple[str, list[Message]]] = []

    def check(self) -> None:
        return None

    def converse(self, *, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int) -> ModelResponse:
        self.calls.append((system, list(messages)))
        return ModelResponse(
            message=Message(role="assistant", content=[TextBlock(text=self.reply)]),
            stop_reason="end_turn",
            usage=Usage(input_tokens=10, output_tokens=5),
            model=self.name,
        )


def test_a_model_judge_sends_the_rubric_request_and_answer_as_data_and_reads_its_json_verdict():
    model = ScriptedModel('Sure. {"score": 0.8, "reason": "mentions the carrier"}')

    verdict = ModelJudge(model).score(prompt="Where is A-1001?", answer=GOOD, rubric=RUBRIC)

    assert verdict == JudgeVerdict(score=0.8, reason="mentions the carrier")
    system, messages = model.calls[0]
    assert system == JUDGE_SYSTEM_PROMPT and RUBRIC.replace('"', '\\"') in messages[0].text


def test_a_model_judge_reply_without_a_valid_verdict_scores_zero():
    assert parse_verdict("I think it is fine").score == 0.0
    assert parse_verdict('{"score": 7}').score == 0.0
    assert parse_verdict('{"note": 1} then {"score": 1, "reason": "ok"}').score == 0.0
    assert parse_verdict('{"score": 1, "reason": "ok"}').score == 1.0
