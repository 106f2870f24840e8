"""The built-in guards on distinct 2 KB messages, against serializing the same message for a model request.

Usage: ``python guard_messages.py COUNT WARMUP BLOCK REPORT.json``.

Sides, alternating A B B A in blocks: ``guards`` (one pipeline: prompt-injection heuristics, PII redaction and a
deny-list of three topics, as the input, tool-result and output stages run them between them), ``baseline``
(``Message.user(text).model_dump_json()``: what the loop does with every message anyway), and each guard alone.
Every message is different (seeded), and so is every email and phone number in it, so no cache sees the same text
or number twice.
"""

import gc
import json
import random
import sys
import time

from alternation import in_alternating_blocks

from agentrail_runtime.guardrails import DenyListGuard, GuardPipeline, PiiGuard, PromptInjectionGuard
from agentrail_runtime.models.base import Message

SENTENCES = [
    "Hello, I ordered a blue kettle last week and it arrived with a cracked lid.",
    "Could you tell me how to return it, and whether the refund goes back to my card?",
    "My previous message about the delivery window can be ignored, it was sorted out.",
    "The instructions in the box say to contact support within 30 days of delivery.",
    "You can reach me at ana.lopez{n}@example.com or on +1 415 555 {m} after six.",
    "The order number is {n} and the parcel was tracked to the depot on Tuesday.",
    "I also tried the chat widget but it kept asking me to sign in again.",
    "Please let me know if you need photos of the damage or the original packaging.",
    "We paid {n} cents for shipping, which seems a lot for a kettle that broke.",
    "Thanks for the help, and sorry for the long message!",
]
TARGET_BYTES = 2048


def messages(count: int, seed: int = 15) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < TARGET_BYTES:
            parts.append(rng.choice(SENTENCES).format(n=rng.randrange(10_000, 99_999), m=rng.randrange(1000, 9999)))
        out.append(" ".join(parts)[:TARGET_BYTES])
    return out


def main() -> int:
    count, warmup, block, report_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    deny = DenyListGuard(topics=["internal roadmap", "competitor pricing", "salary bands"])
    pipeline = GuardPipeline([PromptInjectionGuard(), PiiGuard(), deny])
    sides = {
        "guards": pipeline.check,
        "baseline": lambda text: Message.user(text).model_dump_json(),
        "prompt_injection": PromptInjectionGuard().check,
        "pii": PiiGuard().check,
        "deny_list": deny.check,
    }
    texts = {name: messages(count, seed=index) for index, name in enumerate(sides)}
    for side in sides.values():
        for text in messages(warmup, seed=100):
            side(text)
    gc.collect()
    samples: dict[str, list[int]] = {name: [] for name in sides}
    sizes = sorted(len(t.encode()) for t in texts["guards"])
    actions = dict.fromkeys(("allow", "redact", "block"), 0)

    def measure(name: str, index: int) -> None:
        text = texts[name][index]
        started = time.perf_counter_ns()
        decision = sides[name](text)
        samples[name].append(time.perf_counter_ns() - started)
        if name == "guards":
            actions[decision.action] += 1

    in_alternating_blocks(list(sides), count, block, measure)
    with open(report_path, "w") as report:
        json.dump({"samples_ns": samples, "bytes": [sizes[0], sizes[-1]], "actions": actions}, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
