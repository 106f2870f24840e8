"""The example ASGI agent: FastAPI routes over agentrail's Agent, with the demo agent's tools on the local model.

Run it on a laptop (from the repository's root)::

    uvicorn --app-dir examples/fastapi_agent fastapi_agent.main:app --port 8000

or deploy it unchanged: ``agentrail local --patterns asgi`` / ``cdk deploy -c patterns=asgi`` (``AsgiAgent``). The
agent reads the runtime's settings (``AGENT_MODEL``, ``AGENT_DEFINITION``, ``AGENT_MAX_STEPS``...), which the construct
writes on Lambda and which default to the demo agent on the local model anywhere else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from agentrail_runtime import AgentResult
from agentrail_runtime.budgets import BudgetExceeded
from agentrail_runtime.config import load_settings
from agentrail_runtime.guardrails import GuardBlocked
from agentrail_runtime.observability import logger
from agentrail_runtime.service import AgentService

# Built once per process (a Lambda cold start, a uvicorn worker), as every agentrail handler builds its service.
settings = load_settings()
service = AgentService.from_settings(settings)

app = FastAPI(title="agentrail FastAPI agent", version="1.0.0", description="An agentrail Agent behind FastAPI routes.")


class InvokeBody(BaseModel):
    """What ``POST /invoke`` takes."""

    model_config = {"extra": "forbid"}

    message: Annotated[str, Field(min_length=1, max_length=4000, description="What to ask the agent.")]

    @field_validator("message")
    @classmethod
    def not_blank(cls, message: str) -> str:
        # A rule JSON Schema does not carry: API Gateway lets a blank message through, and FastAPI answers 422.
        if not message.strip():
            raise ValueError("the message is blank")
        return message


class InvokeAnswer(BaseModel):
    """What ``POST /invoke`` answers."""

    answer: str | None
    status: str
    steps: int
    tools: list[str]
    input_tokens: int
    output_tokens: int
    correlation_id: str | None = Field(description="API Gateway's request id (None under uvicorn).")


@app.get("/health")
def health() -> dict[str, str]:
    """Liveness, and the agent's version."""
    return {"status": "ok", "agent_version": service.version}


@app.exception_handler(GuardBlocked)
def input_blocked(request: Request, error: GuardBlocked) -> JSONResponse:
    """An input guard (prompt injection, a denied topic) blocked the message: its reason, never the message."""
    return JSONResponse({"error": "input_blocked", "reason": error.reason}, status_code=400)


@app.exception_handler(BudgetExceeded)
def budget_exceeded(request: Request, error: BudgetExceeded) -> JSONResponse:
    return JSONResponse({"error": "budget_exceeded", "message": str(error)}, status_code=429)


@app.post("/invoke")
def invoke(body: InvokeBody, request: Request) -> InvokeAnswer:
    """Run the agent once on ``message``: the runtime's agent loop under the daily budgets and the input guards, with
    its metrics (tokens, cost, steps) emitted."""
    correlation_id = getattr(request.state, "correlation_id", None)
    result: AgentResult = service.run(body.message)
    logger.info("answered", extra={"status": result.status, "steps": result.steps})
    return InvokeAnswer(
        answer=result.answer,
        status=result.status,
        steps=result.steps,
        tools=[call.tool for call in result.tool_calls],
        input_tokens=result.usage.input_tokens,
        output_tokens=result.usage.output_tokens,
        correlation_id=correlation_id,
    )
