"""Choose a model provider from configuration: ``local``, ``bedrock:<model-id>`` or ``openai:<model>``."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

from agentrail_runtime.contract import MODEL_SPEC, PROVIDERS, unknown_model_message
from agentrail_runtime.models.base import ModelConfigError, ModelProvider

Provider = Literal["local", "bedrock", "openai"]


@dataclass(frozen=True)
class ModelSpec:
    provider: Provider
    model_id: str = ""

    @property
    def canonical(self) -> str:
        return self.provider if self.provider == "local" else f"{self.provider}:{self.model_id}"


def parse_model_spec(text: str) -> ModelSpec:
    """Parse a model spec.

    Raises
    ------
    ModelConfigError
        When the provider is unknown or a model id is missing.
    """
    spec = text.strip()
    if spec == "local":
        return ModelSpec("local")
    provider, sep, model_id = spec.partition(":")
    if not sep or provider not in PROVIDERS or provider == "local":
        raise ModelConfigError(unknown_model_message(spec))
    if not model_id.strip():
        raise ModelConfigError(f"model spec {spec!r} names no model id")
    if not MODEL_SPEC.match(f"{provider}:{model_id.strip()}"):
        raise ModelConfigError(unknown_model_message(spec))
    return ModelSpec(provider, model_id.strip())  # type: ignore[arg-type]


class ProviderFactory:
    """Creates each configured provider once per execution environment (thread-safe).

    Parameters
    ----------
    openai_api_key_secret:
        Secrets Manager name or ARN of the OpenAI-compatible API key; required for ``openai:`` models.
    openai_base_url:
        Endpoint of the OpenAI-compatible API.
    max_attempts, timeout_seconds:
        Retry budget and read timeout of every model call.
    bedrock_guardrail:
        The guardrail id (or ARN) and version every ``bedrock:`` model sends as ``guardrailConfig``. Default: none.
    prompt_caching:
        ``bedrock:`` models send cache points where the model caches prompts, and the local model simulates a prompt
        cache (:mod:`agentrail_runtime.models.caching`). Default: on.
    bedrock_client:
        The ``bedrock-runtime`` client every ``bedrock:`` model calls (a VPC endpoint's, or a test's). Default: one
        per model, with a single attempt (the providers retry).
    """

    def __init__(
        self,
        *,
        openai_api_key_secret: str | None = None,
        openai_base_url: str = "https://api.openai.com/v1",
        max_attempts: int = 4,
        timeout_seconds: float = 60.0,
        bedrock_guardrail: tuple[str, str] | None = None,
        prompt_caching: bool = True,
        bedrock_client: Any = None,
    ) -> None:
        self._prompt_caching = prompt_caching
        self._bedrock_client = bedrock_client
        self._openai_secret = openai_api_key_secret
        self._openai_base_url = openai_base_url
        self._max_attempts = max_attempts
        self._timeout = timeout_seconds
        self._bedrock_guardrail = bedrock_guardrail
        self._providers: dict[str, ModelProvider] = {}
        self._lock = threading.Lock()

    def get(self, spec: str | ModelSpec) -> ModelProvider:
        parsed = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)
        with self._lock:
            provider = self._providers.get(parsed.canonical)
            if provider is None:
                provider = self._providers[parsed.canonical] = self._create(parsed)
            return provider

    def _create(self, spec: ModelSpec) -> ModelProvider:
        # Providers are imported lazily: a function on the local model never pays for boto3 or httpx.
        if spec.provider == "local":
            from agentrail_runtime.models.caching import SimulatedPromptCache
            from agentrail_runtime.models.local import LocalModel

            return LocalModel(prompt_cache=SimulatedPromptCache() if self._prompt_caching else None)
        from agentrail_runtime.models.retry import Retrier

        if spec.provider == "bedrock":
            from agentrail_runtime.models.bedrock import BedrockConverseModel

            return BedrockConverseModel(
                spec.model_id,
                retrier=Retrier(max_attempts=self._max_attempts),
                read_timeout=self._timeout,
                guardrail=self._bedrock_guardrail,
                prompt_caching=self._prompt_caching,
                client=self._bedrock_client,
            )
        if not self._openai_secret:
            raise ModelConfigError("openai models need AGENT_OPENAI_API_KEY_SECRET (a Secrets Manager name or ARN)")
        from agentrail_runtime.models.openai import OpenAIChatModel

        return OpenAIChatModel(
            spec.model_id,
            api_key_secret=self._openai_secret,
            base_url=self._openai_base_url,
            timeout=self._timeout,
            retrier=Retrier(max_attempts=self._max_attempts),
        )
