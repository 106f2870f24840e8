"""Token economics: fixed workloads on the local model, each saving on and off, priced at real models' list prices.

Usage: ``python token_workloads.py TASKS REPORT.json``.

The local model drives the loop (its tool calls and answers are deterministic) and estimates tokens at one per four
characters. With prompt caching on, its :class:`SimulatedPromptCache` follows a Bedrock model's own rules
(:data:`BEDROCK_CACHE_RULES`: minimum tokens per cache point, the fields that take one, the 5-minute TTL), so the split
into plain, cache-read and cache-write tokens is what that model would report for the same prompts; the price table
prices each kind. Workloads:

- ``tool_run``: TASKS tasks of a 5-step tool run (four tool calls, then the answer), one every 10 seconds;
- ``session``: one 20-turn session (each turn a run with the whole history), one turn every 30 seconds;
- ``routed``: TASKS requests to the demo support team (the router's run, then the billing specialist's), without
  prompt caching: ``off`` runs both on Claude Sonnet 4, ``on`` gives the router's ``routing`` steps Nova Micro.

The report holds, per workload, model and side (``off``/``on``), the tokens of each kind and the USD, in all.
"""

import json
import sys

from agentrail_runtime import demo_team
from agentrail_runtime.agent.loop import Agent
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.metering.pricing import PriceTable
from agentrail_runtime.models.base import Message, Usage
from agentrail_runtime.models.caching import SimulatedPromptCache, rules_for
from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.multiagent.models import SpecialistSpec
from agentrail_runtime.multiagent.routing import Router, handoff_tool

MODELS = ("anthropic.claude-sonnet-4-20250514-v1:0", "amazon.nova-lite-v1:0")
#: A support agent's instructions: about 2,000 tokens, as production prompts with policies and examples are.
POLICY = " ".join(
    f"Rule {n}: when a customer asks about an order, check its status, its stock, its invoice and any refund before "
    "you answer; quote each figure exactly, never guess, and say which tool each figure came from."
    for n in range(1, 41)
)
TURNS = 20


@tool(local_patterns=[r"order (?P<order_id>\d+)"])
def order_status(order_id: str) -> dict:
    """The shipping status of an order."""
    return {"order_id": order_id, "status": "shipped", "carrier": "DHL"}


@tool(local_patterns=[r"stock (?P<sku>\d+)"])
def stock_level(sku: str) -> dict:
    """Units in stock of a product."""
    return {"sku": sku, "units": 12}


@tool(local_patterns=[r"invoice (?P<invoice_id>\d+)"])
def invoice(invoice_id: str) -> dict:
    """An invoice's total and whether it is paid."""
    return {"invoice_id": invoice_id, "total": "84.00 EUR", "paid": True}


@tool(local_patterns=[r"refund (?P<order_id>\d+)"])
def refund_status(order_id: str) -> dict:
    """Whether a refund was requested for an order, and its state."""
    return {"order_id": order_id, "refund": "none requested"}


TOOLS = [order_status, stock_level, invoice, refund_status]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def agent(model_id: str, caching: bool, clock: Clock, tools: list = TOOLS) -> Agent:
    cache = SimulatedPromptCache(rules_for(model_id), clock=clock) if caching else None  # type: ignore[arg-type]
    return Agent(model=LocalModel(prompt_cache=cache), tools=tools, system_prompt=POLICY, max_steps=8, token_budget=200_000)


def tool_runs(model_id: str, caching: bool, tasks: int) -> tuple[Usage, int]:
    clock = Clock()
    runner = agent(model_id, caching, clock)
    usage, steps = Usage(), 0
    for task in range(tasks):
        n = 1000 + task
        result = runner.run(f"For order {n}: status of order {n}, stock {n}, invoice {n} and refund {n}?")
        if result.steps != 5:
            raise SystemExit(f"a tool run took {result.steps} steps, not 5")
        usage, steps = usage + result.usage, steps + result.steps
        clock.now += 10
    return usage, steps


def session(model_id: str, caching: bool) -> tuple[Usage, int]:
    clock = Clock()
    runner = agent(model_id, caching, clock, tools=[])
    history: list[Message] = []
    usage, steps = Usage(), 0
    for turn in range(TURNS):
        message = f"My note is about the delivery window of chair number {turn} and my city is Lyon."
        result = runner.run(message, history=history)
        history += result.new_messages
        usage, steps = usage + result.usage, steps + result.steps
        clock.now += 30
    return usage, steps


STRONG, CHEAP = "bedrock:anthropic.claude-sonnet-4-20250514-v1:0", "bedrock:amazon.nova-micro-v1:0"


def routed(tasks: int, prices: PriceTable) -> dict[str, dict]:
    """The demo team's router and billing specialist on ``tasks`` billing requests: the router on the strong model
    (``off``) or on a cheap one for its routing steps (``on``); the specialist on the strong model."""
    specialists = [demo_team.billing, demo_team.technical, demo_team.account]
    handoffs = [handoff_tool(SpecialistSpec(name=d.name, description=d.description)) for d in specialists]
    definition = Router.definition()
    router = Agent(model=LocalModel(), tools=handoffs, system_prompt=str(definition.system_prompt))
    billing = Agent(model=LocalModel(), tools=list(demo_team.billing.tools), system_prompt=str(demo_team.billing.system_prompt))
    route_usage, answer_usage, steps = Usage(), Usage(), 0
    for task in range(tasks):
        request = f"Why was I charged twice on invoice INV-{1000 + task}?"
        routed_to = router.run(request)
        if routed_to.handoff != "handoff_to_billing":
            raise SystemExit(f"the router handed {request!r} to {routed_to.handoff}")
        answered = billing.run(request)
        route_usage, answer_usage = route_usage + routed_to.usage, answer_usage + answered.usage
        steps += routed_to.steps + answered.steps
    total = route_usage + answer_usage
    sides = {}
    for side, routing_model in (("off", STRONG), ("on", CHEAP)):
        usd = (prices.cost(routing_model, route_usage) or 0.0) + (prices.cost(STRONG, answer_usage) or 0.0)
        sides[side] = {**total.model_dump(), "steps": steps, "usd": usd, "routing_model": routing_model}
    return {"tasks": tasks, f"{STRONG} (routing on {CHEAP})": sides}


def main() -> int:
    tasks, report_path = int(sys.argv[1]), sys.argv[2]
    prices = PriceTable()
    report: dict[str, dict] = {"routed": routed(tasks, prices)}
    for workload, count in (("tool_run", tasks), ("session", 1)):  # prompt caching off and on
        for model_id in MODELS:
            spec = f"bedrock:{model_id}"
            sides = {}
            for side, caching in (("off", False), ("on", True)):
                usage, steps = tool_runs(model_id, caching, tasks) if workload == "tool_run" else session(model_id, caching)
                sides[side] = {**usage.model_dump(), "steps": steps, "usd": prices.cost(spec, usage)}
            report.setdefault(workload, {"tasks": count})[spec] = sides
    with open(report_path, "w") as out:
        json.dump(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
