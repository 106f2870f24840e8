"""The batch lane's records: a task as one line of a Bedrock batch inference job's JSONL input, and each task's
outcome read back from the job's output, whatever that output holds.

The jobs use Converse records (``CreateModelInvocationJob`` with ``modelInvocationType="Converse"``): a line of input
is ``{"recordId", "modelInput"}`` where ``modelInput`` is a Converse request without its ``modelId``, and a line of
output adds ``modelOutput`` (a Converse response) or ``error`` (``errorCode``, ``errorMessage``) in its place. The
record id is the task id (a UUID's 32 hex characters), so an output line names its task.

:func:`read_output` never loses a task: a malformed line, a record of another job, a duplicate or an output that is
not a Converse response is skipped and counted, and every task the job was given and whose record did not come back
whole ends with a cause (:class:`RecordOutcome`), so the caller can fail it (or run it again) instead of waiting for it.

:func:`emulate_job` is the job as local mode runs it: the same files, each record answered by a model provider (the
local model).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agentrail_runtime.models.base import Message, ModelError, ModelProvider, ModelResponse, TextBlock, ToolUseBlock
from agentrail_runtime.models.bedrock import from_converse_response, to_converse_message

__all__ = [
    "RecordOutcome",
    "converse_record",
    "emulate_job",
    "input_jsonl",
    "read_output",
    "to_converse_response",
]

#: Longest error message kept on a failed task (a provider's message can be long; the task needs the gist).
MAX_CAUSE_CHARS = 300


def converse_record(*, system: str, message: str, max_tokens: int, temperature: float | None = None) -> dict[str, Any]:
    """The Converse request of one single-step task, as a batch record's ``modelInput`` (no ``modelId``: the job names
    the model; no tools: batch inference runs none)."""
    body: dict[str, Any] = {
        "messages": [to_converse_message(Message.user(message))],
        "inferenceConfig": {"maxTokens": max_tokens},
    }
    if temperature is not None:
        body["inferenceConfig"]["temperature"] = temperature
    if system:
        body["system"] = [{"text": system}]
    return body


def input_jsonl(records: Sequence[tuple[str, dict[str, Any]]]) -> bytes:
    """The job's input file: one ``{"recordId", "modelInput"}`` line per (task id, Converse request)."""
    ids = [record_id for record_id, _ in records]
    if len(set(ids)) != len(ids):
        raise ValueError("a batch job's record ids must be distinct")
    lines = (json.dumps({"recordId": record_id, "modelInput": body}, separators=(",", ":")) for record_id, body in records)
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class RecordOutcome:
    """What became of one task's record: its answer (``response``), or why there is none (``cause``)."""

    record_id: str
    response: ModelResponse | None = None
    cause: str | None = None

    @property
    def ok(self) -> bool:
        return self.response is not None


@dataclass(frozen=True)
class JobOutput:
    """Every expected record's outcome, and how many output lines were skipped (malformed, unexpected, repeated)."""

    outcomes: dict[str, RecordOutcome]
    malformed: int = 0
    unexpected: int = 0
    repeated: int = 0


def _cause(error: Any) -> str:
    if isinstance(error, Mapping):
        code = error.get("errorCode", "unknown")
        text = str(error.get("errorMessage") or "no message")
        return f"the model refused the record ({code}): {text[:MAX_CAUSE_CHARS]}"
    return "the model refused the record"


def read_output(lines: Iterable[str | bytes], expected: Iterable[str], *, model: str) -> JobOutput:
    """Each expected record's outcome from the job's output lines (of every output file, in any order).

    A record answered twice keeps its first answer; a record without an answer (missing from the output, its line
    malformed, its output not a Converse response) gets a cause.
    """
    wanted = list(dict.fromkeys(expected))
    outcomes: dict[str, RecordOutcome] = {}
    malformed = unexpected = repeated = 0
    for raw in lines:
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            malformed += 1
            continue
        record_id = line.get("recordId") if isinstance(line, dict) else None
        if not isinstance(record_id, str):
            malformed += 1
            continue
        if record_id not in wanted:
            unexpected += 1
            continue
        if record_id in outcomes:
            repeated += 1
            continue
        if "error" in line:
            outcomes[record_id] = RecordOutcome(record_id, cause=_cause(line["error"]))
            continue
        try:
            response = from_converse_response(line["modelOutput"], model)
        except (KeyError, TypeError, AttributeError, ValidationError):
            outcomes[record_id] = RecordOutcome(record_id, cause="the job's output for the record is not a Converse response")
            continue
        outcomes[record_id] = RecordOutcome(record_id, response=response)
    for record_id in wanted:
        if record_id not in outcomes:
            outcomes[record_id] = RecordOutcome(record_id, cause="the job's output has no record for the task")
    return JobOutput(outcomes={r: outcomes[r] for r in wanted}, malformed=malformed, unexpected=unexpected, repeated=repeated)


def to_converse_response(response: ModelResponse) -> dict[str, Any]:
    """``response`` as Converse returns it (what a batch job's ``modelOutput`` holds): the inverse of
    :func:`~agentrail_runtime.models.bedrock.from_converse_response`."""
    content: list[dict[str, Any]] = []
    for block in response.message.content:
        if isinstance(block, TextBlock):
            content.append({"text": block.text})
        elif isinstance(block, ToolUseBlock):
            content.append({"toolUse": {"toolUseId": block.id, "name": block.name, "input": block.input}})
    usage = response.usage
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": response.stop_reason,
        "usage": {
            "inputTokens": usage.input_tokens,
            "outputTokens": usage.output_tokens,
            "totalTokens": usage.total_tokens,
            "cacheReadInputTokens": usage.cache_read_tokens,
            "cacheWriteInputTokens": usage.cache_write_tokens,
        },
    }


def emulate_job(lines: Iterable[str | bytes], provider: ModelProvider) -> bytes:
    """Run a batch job's input on ``provider`` as Bedrock would (local mode's ``CreateModelInvocationJob``): one output
    line per readable input line, in order, with ``modelOutput`` or, for a record the provider could not answer (a
    malformed line, a request it refused), ``error``."""
    out: list[str] = []
    for index, raw in enumerate(lines):
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            record_id = str(line.get("recordId") or f"record{index:08d}")
            body = line["modelInput"]
            system = "\n".join(part["text"] for part in body.get("system", []) if "text" in part)
            messages = [Message.user(part["text"]) for m in body["messages"] for part in m["content"] if "text" in part]
            max_tokens = int(body.get("inferenceConfig", {}).get("maxTokens", 1024))
        except (ValueError, KeyError, TypeError, AttributeError):
            out.append(
                json.dumps({"recordId": f"record{index:08d}", "error": {"errorCode": 400, "errorMessage": "malformed record"}})
            )
            continue
        try:
            response = provider.converse(system=system, messages=messages, tools=[], max_tokens=max_tokens)
        except ModelError as error:
            out.append(
                json.dumps({"recordId": record_id, "modelInput": body, "error": {"errorCode": 400, "errorMessage": str(error)}})
            )
            continue
        out.append(json.dumps({"recordId": record_id, "modelInput": body, "modelOutput": to_converse_response(response)}))
    return ("\n".join(out) + "\n").encode() if out else b""
