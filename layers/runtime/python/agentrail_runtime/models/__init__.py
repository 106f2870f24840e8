"""Model providers behind one interface: Bedrock Converse, OpenAI-compatible chat completions, and a deterministic local model."""

from agentrail_runtime.models.base import (
    ContentBlock,
    Message,
    ModelConfigError,
    ModelError,
    ModelProvider,
    ModelRequestError,
    ModelResponse,
    ModelThrottledError,
    ModelUnavailableError,
    TextBlock,
    TextSink,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
)
from agentrail_runtime.models.registry import ModelSpec, ProviderFactory, parse_model_spec

__all__ = [
    "ContentBlock",
    "Message",
    "ModelConfigError",
    "ModelError",
    "ModelProvider",
    "ModelRequestError",
    "ModelResponse",
    "ModelSpec",
    "ModelThrottledError",
    "ModelUnavailableError",
    "ProviderFactory",
    "TextBlock",
    "TextSink",
    "ToolResultBlock",
    "ToolSpec",
    "ToolUseBlock",
    "Usage",
    "parse_model_spec",
]
