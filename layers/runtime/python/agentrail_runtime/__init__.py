"""agentrail runtime: the agent loop, model providers, tools and metering, shipped as a Lambda layer."""

from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.loop import Agent, AgentResult, AgentStatus, ToolCallRecord
from agentrail_runtime.agent.tools import Tool, ToolError, tool
from agentrail_runtime.models.base import (
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
