"""The agent loop, typed tools and agent definitions."""

from agentrail.agent.context import ToolContext
from agentrail.agent.definition import AgentDefinition, load_definition
from agentrail.agent.loop import Agent, AgentResult, AgentStatus, PendingToolCall, ToolCallRecord
from agentrail.agent.tools import Tool, ToolError, tool

__all__ = [
    "Agent",
    "AgentDefinition",
    "AgentResult",
    "AgentStatus",
    "PendingToolCall",
    "Tool",
    "ToolCallRecord",
    "ToolContext",
    "ToolError",
    "load_definition",
    "tool",
]
