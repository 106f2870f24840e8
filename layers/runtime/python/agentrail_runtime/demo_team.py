"""The built-in multi-agent demo: support specialists (billing, technical, account) and a research worker.

The tools answer from small, fixed data so the local model's runs are
reproducible. ``research_topic`` fails on the first attempt for a topic
containing "flaky": it exists to show the supervisor's review re-running a
subtask.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.tools import ToolError, tool
from agentrail_runtime.demo import issue_refund

_INVOICES = {
    "INV-1001": {"amount_usd": 42.5, "status": "paid", "charges": 2, "note": "duplicate charge refunded on 2026-11-21"},
    "INV-1002": {"amount_usd": 129.0, "status": "open", "charges": 1, "note": None},
}
_SERVICES = {
    "api": "degraded: elevated error rate in us-east-1",
    "dashboard": "operational",
    "email": "operational",
    "login": "operational",
}

BILLING_DESCRIPTION = "Billing questions: invoices, charges, payments, refunds and receipts."
TECHNICAL_DESCRIPTION = "Technical problems: errors, outages, the api, the dashboard, performance and bugs."
ACCOUNT_DESCRIPTION = "Account questions: profile, login, password, email address and account owner."


@tool(local_patterns=[r"\binvoice\s+#?(?P<invoice_id>INV-\d{4})\b"])
def lookup_invoice(invoice_id: Annotated[str, Field(pattern=r"^INV-\d{4}$")]) -> dict[str, object]:
    """Look up an invoice's amount, status and charges by id (e.g. 'INV-1001')."""
    invoice = _INVOICES.get(invoice_id.upper())
    if invoice is None:
        raise ToolError("no invoice with this id")
    return {"invoice_id": invoice_id.upper(), **invoice}


@tool(local_patterns=[r"\b(?P<service>api|dashboard|email|login)\b[^.?!]*\b(?:down|not working|broken|slow|failing|errors?)\b"])
def check_service_status(service: Annotated[str, Field(pattern=r"^(api|dashboard|email|login)$")]) -> dict[str, str]:
    """Current status of one of our services: api, dashboard, email or login."""
    return {"service": service, "status": _SERVICES[service]}


@tool(local_patterns=[r"\bchange my email to (?P<email>[^\s@]+@[^\s@]+\.[a-z]{2,})"])
def update_contact_email(
    email: Annotated[str, Field(pattern=r"^[^\s@]+@[^\s@]+\.[a-zA-Z]{2,}$", max_length=254)],
) -> dict[str, str]:
    """Change the account's contact email address (a confirmation is sent to the new address)."""
    return {"status": "confirmation sent", "email": email}


billing = AgentDefinition(
    name="billing",
    description=BILLING_DESCRIPTION,
    system_prompt="You are the billing specialist. Use the tools; hand off what is not about billing.",
    tools=(lookup_invoice, issue_refund),
)
technical = AgentDefinition(
    name="technical",
    description=TECHNICAL_DESCRIPTION,
    system_prompt="You are the technical support specialist. Check service status before answering.",
    tools=(check_service_status,),
)
account = AgentDefinition(
    name="account",
    description=ACCOUNT_DESCRIPTION,
    system_prompt="You are the account specialist. Hand off billing questions.",
    tools=(update_contact_email,),
)

_NOTES = {
    "lambda": "AWS Lambda runs code without servers; it bills per request and per GB-second.",
    "step functions": "Step Functions coordinates services as state machines; Standard workflows can run for a year.",
    "dynamodb": "DynamoDB is a key-value and document database with single-digit millisecond latency.",
    "sqs": "SQS is a managed message queue; FIFO queues keep order within a message group.",
}


@tool(local_patterns=[r"(?i)^\s*(?:research|analy[sz]e|compare|summari[sz]e|find|list|explain|describe)\s+(?P<topic>.+?)\s*$"])
def research_topic(topic: Annotated[str, Field(min_length=1, max_length=500)], context: ToolContext) -> dict[str, object]:
    """Notes on a topic from the team's knowledge base."""
    if "flaky" in topic.lower() and int(context.state.get("attempt", 1)) < 2:
        raise ToolError("the source did not answer; try again")
    notes = [text for key, text in _NOTES.items() if key in topic.lower()]
    return {"topic": topic, "notes": notes or [f"No notes about {topic!r} yet; consider it an open question."]}


research_worker = AgentDefinition(
    name="worker",
    description="Researches one subtask with the knowledge base.",
    system_prompt="You research one subtask and report the facts you found, briefly.",
    tools=(research_topic,),
)
