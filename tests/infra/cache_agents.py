"""Agent definitions the response cache's infra tests synthesize: one with a tool that has side effects (a cache on it
fails the synth), one whose every tool is cacheable."""

from __future__ import annotations

from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.tools import tool


@tool(cacheable=True)
def lookup_rate(currency: str) -> float:
    """The exchange rate of a currency to USD."""
    return 1.0


@tool(side_effects=True)
def send_invoice(customer: str) -> str:
    """Email an invoice to a customer."""
    return "sent"


#: Cacheable: its one tool depends on its arguments only.
rates = AgentDefinition(name="rates", system_prompt="You quote exchange rates.", tools=(lookup_rate,))
#: Not cacheable: ``send_invoice`` has side effects.
billing = AgentDefinition(name="billing", system_prompt="You bill customers.", tools=(lookup_rate, send_invoice))
