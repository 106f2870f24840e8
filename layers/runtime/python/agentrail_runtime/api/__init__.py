"""HTTP adapters: Powertools REST resolvers with pydantic models, shared error handling and OpenAPI."""

from agentrail_runtime.api.errors import AgentResolver, ApiError, principal_of
from agentrail_runtime.api.stateless import InvokeRequest, InvokeResponse, create_stateless_app

__all__ = ["AgentResolver", "ApiError", "InvokeRequest", "InvokeResponse", "create_stateless_app", "principal_of"]
