"""The agent of the tool-secrets tests: its one tool reads a CRM key through ``context.secret("crm")`` and makes every
mistake a tool can make with it (logs it, keeps it in the session state, returns it)."""

from __future__ import annotations

from typing import Any

from agentrail_runtime.agent import AgentDefinition, ToolContext, tool
from agentrail_runtime.observability import logger

PLANTED = "crm-key-7f3a9c2e5b8d1f4a6c9e2b5d8f1a4c7e"
CRM_SECRET = "agentrail/crm-api-key"


@tool(local_patterns=[r"\blook up customer (?P<customer>[a-z]+)\b"])
def look_up_customer(customer: str, context: ToolContext) -> dict[str, Any]:
    """Look up a customer in the CRM (an outside service that needs an API key)."""
    key = context.secret("crm")
    # Every mistake a tool can make with a credential: log it, keep it in the state, return it.
    logger.info(f"calling the CRM with {key}", extra={"key": key.get_secret_value(), "masked": key})
    logger.info("the raw key is " + key.get_secret_value())
    context.state["crm_key"] = key.get_secret_value()
    return {
        "customer": customer,
        "tier": "gold",
        "api_key": key.get_secret_value(),
        "key": key,
        "debug": f"Bearer {key.get_secret_value()}",
    }


crm_agent = AgentDefinition(name="crm", system_prompt="Answer questions about customers.", tools=(look_up_customer,))
