"""What a user supplies: a system prompt and tools, importable by reference (``module:attribute``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentrail_runtime.agent.prompts import BedrockPrompt
from agentrail_runtime.agent.tools import Tool
from agentrail_runtime.guardrails.base import DEFAULT_REFUSAL, Guard


@dataclass(frozen=True)
class AgentDefinition:
    """An agent without a model: the model and limits come from configuration.

    Attributes
    ----------
    name:
        Used in logs and metrics dimensions.
    system_prompt:
        Sent with every model call: the text (:func:`prompt_from_file` reads it from a file), or a prompt in Bedrock
        Prompt Management (:func:`~agentrail_runtime.agent.prompts.prompt_from_bedrock`), read at cold start.
    tools:
        The tools the agent may call.
    description:
        What the agent is for; a router shows this to its model.
    input_guards:
        Run, in order, on each user message before the model sees it: a block refuses the request (the API answers
        400 ``input_blocked`` with the reason code), a redaction replaces the message. Default: none.
    tool_result_guards:
        Run on each string of each tool result (indirect injection): a block replaces the result with a notice to
        the model (and counts ``GuardBlocks_tool_result``), a redaction replaces the string. Default: none.
    output_guards:
        Run on the answer: a block replaces it with ``refusal``, a redaction replaces the answer. Default: none.
    refusal:
        The answer given instead of one the output guards blocked. Default: :data:`DEFAULT_REFUSAL`.
    """

    name: str
    system_prompt: str | BedrockPrompt
    tools: Sequence[Tool] = field(default_factory=tuple)
    description: str = ""
    input_guards: Sequence[Guard] = field(default_factory=tuple)
    tool_result_guards: Sequence[Guard] = field(default_factory=tuple)
    output_guards: Sequence[Guard] = field(default_factory=tuple)
    refusal: str = DEFAULT_REFUSAL

    def prompt_text(self, *, client: Any = None) -> str:
        """The system prompt's text: the string itself, or the Bedrock prompt read now (``GetPrompt`` through
        ``client``, default a ``bedrock-agent`` client): call it once, at cold start.

        Raises
        ------
        PromptReferenceError
            The Bedrock prompt gives no text (see :meth:`BedrockPrompt.resolve`).
        """
        if isinstance(self.system_prompt, BedrockPrompt):
            return self.system_prompt.resolve(client=client)
        return self.system_prompt

    @property
    def not_cacheable_because(self) -> str | None:
        """Why the response cache may not serve this agent, in one sentence naming a tool not declared
        ``cacheable=True`` (one with side effects first, else the first by name); None when every tool is cacheable
        (an agent without tools is)."""
        for tool in sorted(self.tools, key=lambda t: (not t.side_effects, t.name)):
            if not tool.cacheable:
                kind = "has side effects" if tool.side_effects else "is not declared cacheable=True"
                return (
                    f"agent {self.name!r} cannot use a response cache: its tool {tool.name!r} {kind}, and a cached "
                    "answer would skip it"
                )
        return None

    @property
    def cacheable(self) -> bool:
        """Whether the response cache may serve this agent: every tool is ``cacheable`` (see
        :attr:`not_cacheable_because`)."""
        return self.not_cacheable_because is None

    @property
    def cache_per_caller(self) -> bool:
        """Whether a cached answer may differ between callers, so its key holds the caller's principal: a tool reads
        the caller (``reads_caller``, or a ``ToolContext`` parameter)."""
        return any(tool.depends_on_caller for tool in self.tools)


def prompt_from_file(path: str | Path, *, beside: str | Path | None = None) -> str:
    """A system prompt kept in a file (Markdown or text, UTF-8), e.g. ``prompts/support.md`` beside the agent's module.

    Read once, when the definition is built (at cold start). The agent version hashes the prompt's text, so editing
    the file gives the agent a new version.

    Parameters
    ----------
    path:
        The file; a relative path is read from the folder of ``beside``.
    beside:
        A file (pass the module's ``__file__``) or folder that a relative ``path`` starts from. Default: the
        current directory.

    Raises
    ------
    FileNotFoundError
        The file does not exist, naming where it was looked for.
    ValueError
        The file is empty.
    """
    file = Path(path)
    if not file.is_absolute() and beside is not None:
        base = Path(beside)
        file = (base if base.is_dir() else base.parent) / file
    if not file.is_file():
        raise FileNotFoundError(f"system prompt file {file} does not exist")
    text = file.read_text(encoding="utf-8").strip()
    if not text:
        raise ValueError(f"system prompt file {file} is empty")
    return text


def load_definition(reference: str) -> AgentDefinition:
    """Import ``module:attribute``; the attribute is a definition or a callable returning one.

    Raises
    ------
    ValueError
        When the reference is malformed or does not name an AgentDefinition.
    """
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"agent definition reference {reference!r} must look like 'package.module:attribute'")
    target = getattr(importlib.import_module(module_name), attribute)
    if isinstance(target, Callable) and not isinstance(target, AgentDefinition):  # type: ignore[arg-type]
        target = target()
    if not isinstance(target, AgentDefinition):
        raise ValueError(f"{reference!r} is a {type(target).__name__}, not an AgentDefinition")
    return target
