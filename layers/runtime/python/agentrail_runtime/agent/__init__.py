"""The agent loop, typed tools and agent definitions."""

from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.agent.definition import AgentDefinition, load_definition, prompt_from_file
from agentrail_runtime.agent.loop import Agent, AgentResult, AgentStatus, PendingToolCall, ToolCallRecord
from agentrail_runtime.agent.prompts import BedrockPrompt, PromptReferenceError, prompt_from_bedrock
from agentrail_runtime.agent.secrets import SecretNotGranted, read_tool_secret
from agentrail_runtime.agent.tools import DryRunCall, Tool, ToolError, tool

__all__ = [
    "Agent",
    "AgentDefinition",
    "AgentResult",
    "AgentStatus",
    "BedrockPrompt",
    "DryRunCall",
    "PendingToolCall",
    "PromptReferenceError",
    "SecretNotGranted",
    "Tool",
    "ToolCallRecord",
    "ToolContext",
    "ToolError",
    "load_definition",
    "prompt_from_bedrock",
    "prompt_from_file",
    "read_tool_secret",
    "tool",
]
