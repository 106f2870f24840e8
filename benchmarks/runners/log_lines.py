"""Log lines through the runtime's redacting formatter, against Powertools' own formatter on the same records.

Usage: ``python log_lines.py COUNT WARMUP BLOCK REPORT.json``.

Three kinds of line, each a side pair (``<kind>`` through ``RedactingFormatter``, ``<kind>_bare`` through
``LambdaPowertoolsFormatter``): ``plain`` (a tool-call line: words, ids and numbers, no digit in a redacted text),
``repeated`` (a reasoning-step line with the function's one model id and a step number: texts with digits that
repeat, as a function's lines do), ``digits`` (the same line with a distinct dated model id and counts in each: the
recognizers run on every line and find nothing; the worst case), ``pii`` (a line whose ``extra`` holds an email and a phone number: the recognizers run and redact). Every
record is different (seeded), so no cache sees the same text twice. The recognizers are loaded before the first
measurement (what one earlier line with a digit does).
"""

import gc
import json
import logging
import random
import sys
import time
import uuid

from alternation import in_alternating_blocks
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from agentrail_runtime.observability import RedactingFormatter

TOOLS = ["lookup_order", "open_refund", "convert_units", "calculator", "search_docs"]


def record(kind: str, rng: random.Random) -> logging.LogRecord:
    task_id = str(uuid.UUID(int=rng.getrandbits(128)))
    if kind == "plain":
        message, extra = "tool call", {"event": "tool_call", "tool": rng.choice(TOOLS), "step": rng.randrange(1, 9)}
        extra |= {"latency_ms": rng.random() * 900, "outcome": "success", "task_id": task_id}
    elif kind == "repeated":
        message = f"reasoning step {rng.randrange(1, 9)}"
        extra = {"event": "reasoning_step", "model": "bedrock:anthropic.claude-3-5-sonnet-20240620-v1:0"}
        extra |= {"input_tokens": rng.randrange(100, 9000), "output_tokens": rng.randrange(10, 900), "task_id": task_id}
    elif kind == "digits":
        message = f"reasoning step {rng.randrange(1, 9)} of {rng.randrange(9, 20)}"
        extra = {"event": "reasoning_step", "model": f"bedrock:anthropic.claude-3-5-sonnet-2024{rng.randrange(1000, 9999)}-v1:0"}
        extra |= {"input_tokens": rng.randrange(100, 9000), "output_tokens": rng.randrange(10, 900), "task_id": task_id}
    else:
        message = "refund requested"
        extra = {
            "email": f"ana.lopez{rng.randrange(10_000, 99_999)}@example.com",
            "phone": f"+1 415 555 {rng.randrange(1000, 9999)}",
        }
        extra |= {"tool": rng.choice(TOOLS), "task_id": task_id}
    line = logging.LogRecord("agentrail", logging.INFO, __file__, 1, message, None, None)
    line.__dict__.update(extra)
    return line


def main() -> int:
    count, warmup, block, report_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    redacting, bare = RedactingFormatter(), LambdaPowertoolsFormatter()
    kinds = ("plain", "repeated", "digits", "pii")
    sides = {**dict.fromkeys(kinds, redacting.format), **{f"{k}_bare": bare.format for k in kinds}}
    records = {name: [record(name.removesuffix("_bare"), random.Random(f"{name}{i}")) for i in range(count)] for name in sides}
    rng = random.Random(100)
    for name, side in sides.items():
        for _ in range(warmup):
            side(record(name.removesuffix("_bare"), rng))
    gc.collect()
    samples: dict[str, list[int]] = {name: [] for name in sides}
    redacted = dict.fromkeys(kinds, 0)

    def measure(name: str, index: int) -> None:
        line = records[name][index]
        started = time.perf_counter_ns()
        written = sides[name](line)
        samples[name].append(time.perf_counter_ns() - started)
        if name in redacted and "[REDACTED:" in written:
            redacted[name] += 1

    in_alternating_blocks(list(sides), count, block, measure)
    with open(report_path, "w") as report:
        json.dump({"samples_ns": samples, "redacted_lines": redacted}, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
