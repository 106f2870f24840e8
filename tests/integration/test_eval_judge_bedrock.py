"""The eval judge on Bedrock: a real bedrock-runtime client with botocore's Stubber (moto has no Converse)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from botocore.stub import Stubber

from agentrail_runtime.evals import EvalCase, LoadedCase, ModelJudge, Observation, run_datasets
from agentrail_runtime.evals.dataset import Dataset
from agentrail_runtime.evals.judge import JUDGE_SYSTEM_PROMPT
from agentrail_runtime.models.bedrock import BedrockConverseModel, client_config
from agentrail_runtime.models.retry import Retrier

MODEL_ID = "us.amazon.nova-lite-v1:0"
RUBRIC = 'The answer says the order "shipped" with carrier "UPS".'


def verdict(text: str) -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 120, "outputTokens": 20, "totalTokens": 140},
        "metrics": {"latencyMs": 300},
    }


def judge_request(answer: str) -> dict:
    document = {"rubric": RUBRIC, "request": "Where is order A-1001?", "answer": answer}
    return {
        "modelId": MODEL_ID,
        "system": [{"text": JUDGE_SYSTEM_PROMPT}],
        "messages": [{"role": "user", "content": [{"text": json.dumps(document)}]}],
        "inferenceConfig": {"maxTokens": 300},
    }


def test_a_bedrock_judge_grades_each_answer_against_the_rubric_and_its_threshold_gates_the_case():
    client = boto3.client("bedrock-runtime", region_name="us-east-1", config=client_config(read_timeout=5.0))
    answers = {"good": "It shipped with UPS.", "bad": "No idea."}
    cases = tuple(
        LoadedCase(agent="demo", dataset="judged", line=n, case=EvalCase(id=i, input="Where is order A-1001?", expect={"judge": {"rubric": RUBRIC}}))
        for n, i in enumerate(answers, start=1)
    )  # fmt: skip

    def target(case: LoadedCase) -> Observation:
        return Observation(answer=answers[case.id], status="completed", steps=1)

    with Stubber(client) as stub:
        stub.add_response(
            "converse", verdict('{"score": 0.9, "reason": "says shipped with UPS"}'), judge_request(answers["good"])
        )
        stub.add_response("converse", verdict('Here: {"score": 0.2, "reason": "no status"}'), judge_request(answers["bad"]))
        judge = ModelJudge(BedrockConverseModel(MODEL_ID, client=client, retrier=Retrier(max_attempts=1)))
        report = run_datasets(
            [Dataset(path=Path("demo/judged.jsonl"), agent="demo", name="judged", cases=cases)],
            target,
            judge=judge,
            target_name="test",
            workers=1,
        )
        stub.assert_no_pending_responses()

    assert report.judge == f"bedrock:{MODEL_ID}"
    assert [(c.id, c.score, c.passed) for c in report.cases] == [("good", 0.9, True), ("bad", 0.2, False)]
    assert report.cases[1].failures == ["judge 0.2 < 0.7: no status"]
