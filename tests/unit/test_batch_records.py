"""The batch lane's records: the JSONL a Bedrock batch job reads, and every task's outcome read back from what the job
wrote, whatever that holds."""

from __future__ import annotations

import json

import pytest

from agentrail_runtime.batch.records import (
    converse_record,
    emulate_job,
    input_jsonl,
    read_output,
    to_converse_response,
)
from agentrail_runtime.contract import BatchModel, batch_model
from agentrail_runtime.models.base import Message, ModelRequestError, ModelResponse, Usage
from agentrail_runtime.models.bedrock import from_converse_response
from agentrail_runtime.models.local import LocalModel

IDS = [f"{n:032x}" for n in range(1, 6)]
MODEL = "bedrock:amazon.nova-lite-v1:0"


def job_input() -> bytes:
    return input_jsonl(
        [
            (task_id, converse_record(system="Be brief.", message=f"My city is Lyon number {n}.", max_tokens=200))
            for n, task_id in enumerate(IDS)
        ]
    )


def test_a_record_is_a_converse_request_without_model_id_or_tools() -> None:
    [line] = input_jsonl(
        [(IDS[0], converse_record(system="Be brief.", message="Hi", max_tokens=64, temperature=0.2))]
    ).splitlines()

    assert json.loads(line) == {
        "recordId": IDS[0],
        "modelInput": {
            "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
            "inferenceConfig": {"maxTokens": 64, "temperature": 0.2},
            "system": [{"text": "Be brief."}],
        },
    }


def test_record_ids_must_be_distinct() -> None:
    body = converse_record(system="", message="Hi", max_tokens=64)

    with pytest.raises(ValueError, match="distinct"):
        input_jsonl([(IDS[0], body), (IDS[0], body)])


def test_the_emulated_job_answers_every_record_and_the_answers_read_back() -> None:
    output = emulate_job(job_input().splitlines(), LocalModel())

    read = read_output(output.splitlines(), IDS, model="local")

    assert all(outcome.ok for outcome in read.outcomes.values())
    assert read.outcomes[IDS[3]].response.message.text == "Noted: your city is Lyon number 3."  # type: ignore[union-attr]
    assert read.outcomes[IDS[3]].response.usage.total_tokens > 0  # type: ignore[union-attr]
    assert (read.malformed, read.unexpected, read.repeated) == (0, 0, 0)


def test_malformed_missing_repeated_and_foreign_lines_lose_no_task() -> None:
    lines = emulate_job(job_input().splitlines(), LocalModel()).decode().splitlines()
    answered = {json.loads(line)["recordId"]: line for line in lines}
    output = [
        answered[IDS[0]],
        answered[IDS[0]].replace("Lyon", "Paris"),  # a repeat: the first answer stands
        '{"recordId": "' + IDS[1] + '", "modelOutput": {"output": "truncated',  # cut mid-line
        json.dumps({"recordId": IDS[2], "modelInput": {}, "error": {"errorCode": 429, "errorMessage": "Too many tokens"}}),
        json.dumps({"recordId": IDS[3], "modelOutput": {"unexpected": True}}),  # not a Converse response
        json.dumps({"recordId": "f" * 32, "modelOutput": {}}),  # another job's record
        "[1, 2, 3]",
        "",
    ]  # IDS[4] is missing altogether

    read = read_output(output, IDS, model=MODEL)

    assert list(read.outcomes) == IDS  # every task the job was given has an outcome
    assert read.outcomes[IDS[0]].ok and "Lyon" in read.outcomes[IDS[0]].response.message.text  # type: ignore[union-attr]
    causes = {task_id: read.outcomes[task_id].cause for task_id in IDS[1:]}
    assert causes == {
        IDS[1]: "the job's output has no record for the task",
        IDS[2]: "the model refused the record (429): Too many tokens",
        IDS[3]: "the job's output for the record is not a Converse response",
        IDS[4]: "the job's output has no record for the task",
    }
    assert (read.malformed, read.unexpected, read.repeated) == (2, 1, 1)


def test_a_long_error_message_is_cut() -> None:
    line = json.dumps({"recordId": IDS[0], "error": {"errorCode": 500, "errorMessage": "x" * 5000}})

    cause = read_output([line], [IDS[0]], model=MODEL).outcomes[IDS[0]].cause

    assert cause is not None and len(cause) < 400


def test_a_converse_response_survives_the_round_trip() -> None:
    response = ModelResponse(
        message=Message.assistant("Shipped."),
        stop_reason="end_turn",
        usage=Usage(input_tokens=12, output_tokens=3, cache_read_tokens=100),
        model=MODEL,
    )

    assert from_converse_response(to_converse_response(response), MODEL) == response


def test_the_emulated_job_answers_a_record_it_cannot_read_or_the_model_refuses_with_an_error_line() -> None:
    class Refusing(LocalModel):
        def converse(self, **kwargs):  # type: ignore[no-untyped-def]
            raise ModelRequestError("Model 'local' rejected the request (ValidationException).", model="local")

    refused = json.loads(emulate_job([job_input().splitlines()[0]], Refusing()))
    broken = json.loads(emulate_job(["{not json"], LocalModel()))

    assert refused["recordId"] == IDS[0] and refused["error"]["errorCode"] == 400
    assert broken["error"] == {"errorCode": 400, "errorMessage": "malformed record"}


@pytest.mark.parametrize(
    ("model", "support"),
    [
        ("bedrock:us.amazon.nova-lite-v1:0", BatchModel()),
        ("bedrock:anthropic.claude-3-5-haiku-20241022-v1:0", BatchModel()),
        ("local", BatchModel(min_records=1)),
        ("bedrock:cohere.command-r-v1:0", None),
        ("openai:gpt-4o-mini", None),
    ],
)
def test_which_models_take_batch_jobs(model: str, support: BatchModel | None) -> None:
    assert batch_model(model) == support


def test_a_jobs_name_is_the_same_for_the_same_tasks_in_any_order_and_fits_bedrocks_pattern() -> None:
    import re

    from agentrail_runtime.tasks.batch_lane import job_name

    ids = [f"{n:032x}" for n in range(100)]
    name = job_name(ids, 1_796_000_000)

    assert name == job_name(list(reversed(ids)), 1_796_000_000)
    assert name != job_name(ids[:-1], 1_796_000_000)
    assert len(f"{name}-r1") <= 63
    assert re.fullmatch(r"[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}", f"{name}-r1")


def test_a_model_without_batch_inference_is_named_in_one_sentence() -> None:
    from agentrail_runtime.contract import batch_model_problem

    problem = batch_model_problem("openai:gpt-4o")

    assert problem is not None and problem.startswith("The model openai:gpt-4o does not take Bedrock batch inference jobs;")
    assert problem.endswith(".") and problem.count(". ") == 0
    assert batch_model_problem("bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0") is None
