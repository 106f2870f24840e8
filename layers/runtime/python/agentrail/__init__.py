"""agentrail runtime: the agent loop, model providers, tools and metering, shipped as a Lambda layer."""

from agentrail.agent.context import ToolContext
from agentrail.agent.definition import AgentDefinition
from agentrail.agent.loop import Agent, AgentResult, AgentStatus, ToolCallRecord
from agentrail.agent.tools import Tool, ToolError, tool
from agentrail.models.base import (
    Message,
    ModelError,
    ModelProvider,
    ModelRequestError,
    ModelResponse,
    ModelThrottledError,
    ModelUnavailableError,
    ToolSpec,
    Usage,
)

__all__ = [
    "Agent",
    "AgentDefinition",
    "AgentResult",
    "AgentStatus",
    "Message",
    "ModelError",
    "ModelProvider",
    "ModelRequestError",
    "ModelResponse",
    "ModelThrottledError",
    "ModelUnavailableError",
    "Tool",
    "ToolCallRecord",
    "ToolContext",
    "ToolError",
    "ToolSpec",
    "Usage",
    "tool",
]
