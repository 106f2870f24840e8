"""A deterministic model for offline use and tests.

It really drives the loop: it reads the latest request, picks tools by the
patterns they declare (``local_patterns``) or, failing that, by the words of
their descriptions, calls them one step at a time, and answers from their
results. It also recalls facts stated earlier in the conversation ("my name is
Ada" ... "what is my name?"). Token usage is counted as one token per four
characters, so budgets and costs behave like a real provider's. With a
:class:`~agentrail_runtime.models.caching.SimulatedPromptCache`, the input is
split into plain, cache-read and cache-write tokens as Bedrock reports them:
simulated, deterministically, so tests and local mode show what caching saves.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from agentrail_runtime.models.base import (
    Message,
    ModelProvider,
    ModelResponse,
    StopReason,
    TextBlock,
    TextSink,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
)
from agentrail_runtime.models.caching import SimulatedPromptCache
from agentrail_runtime.models.tokens import count_tokens, estimate_input_tokens

_WORD = re.compile(r"[a-z][a-z0-9]+")
#: The pieces the local model streams: a word and the spaces after it (leading spaces alone); joined, the whole text.
_PIECE = re.compile(r"\S+\s*|\s+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "please",
        "the",
        "this",
        "to",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "you",
        "your",
        "tool",
        "tools",
        "use",
        "uses",
        "using",
        "return",
        "returns",
    ]
)
_FACT = re.compile(
    r"\bmy (?P<key>[a-z][a-z ]{0,40}?) (?:is|are) (?P<value>[^.?!,;\n]+?)(?=\s+and\s+my\s|[.?!,;\n]|$)", re.IGNORECASE
)
_QUESTION = re.compile(r"\bwhat(?:'s| is| are) my (?P<key>[a-z][a-z ]{0,40}?)\s*\??\s*$", re.IGNORECASE)


def _stem(word: str) -> str:
    """Crude suffix stripping, so "charged", "charges" and "charge" meet."""
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def _render(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"result"}:
        value = value["result"]
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(", ", ": "))


class LocalModel(ModelProvider):
    """The offline default (``AGENT_MODEL=local``).

    Parameters
    ----------
    prompt_cache:
        Splits each request's input into plain, cache-read and cache-write tokens (simulated); default: none, all
        input is plain.
    """

    name = "local"
    prompt_cache: SimulatedPromptCache | None = None
    _last_plan: tuple[str, tuple[ToolSpec, ...], list[tuple[str, dict[str, Any]]]] | None = None

    def __init__(self, *, prompt_cache: SimulatedPromptCache | None = None) -> None:
        self.prompt_cache = prompt_cache
        #: The last request planned, its tools (by identity) and its plan: each step of a run plans the same request.
        self._last_plan = None

    def _plan(self, request: str, tools: Sequence[ToolSpec]) -> list[tuple[str, dict[str, Any]]]:
        last = self._last_plan
        if (
            last is not None
            and last[0] == request
            and len(last[1]) == len(tools)
            and all(kept is tool for kept, tool in zip(last[1], tools, strict=True))
        ):
            return last[2]
        plan = plan_tool_calls(request, tools)
        self._last_plan = (request, tuple(tools), plan)
        return plan

    def check(self) -> None:
        return None

    def converse(
        self,
        *,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        max_tokens: int,
    ) -> ModelResponse:
        request_index = _last_request_index(messages)
        request = messages[request_index].text if request_index is not None else ""
        plan = self._plan(request, tools)
        done = sum(len(m.tool_uses) for m in messages[(request_index or 0) + 1 :] if m.role == "assistant")
        if done < len(plan):
            name, arguments = plan[done]
            call_id = "tooluse_" + hashlib.sha256(f"{request_index}:{done}:{name}".encode()).hexdigest()[:16]
            block = ToolUseBlock(id=call_id, name=name, input=arguments)
            return self._respond(system, messages, tools, [block], "tool_use", max_tokens)
        results = [r for m in messages[(request_index or 0) + 1 :] for r in m.tool_results]
        if results:
            text = _answer_from_results(messages, results)
        else:
            text = _answer_without_tools(request, messages[: request_index or 0], tools)
        return self._respond(system, messages, tools, [TextBlock(text=text)], "end_turn", max_tokens)

    def stream(
        self,
        *,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        max_tokens: int,
        on_text: TextSink,
    ) -> ModelResponse:
        """As :meth:`converse`, its text given to ``on_text`` word by word (each word with the spaces after it)."""
        response = self.converse(system=system, messages=messages, tools=tools, max_tokens=max_tokens)
        for piece in _PIECE.findall(response.message.text):
            on_text(piece)
        return response

    def _respond(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        content: list[Any],
        stop_reason: StopReason,
        max_tokens: int,
    ) -> ModelResponse:
        output = json.dumps([block.model_dump(mode="json") for block in content])
        output_tokens = count_tokens(output)
        if output_tokens > max_tokens and stop_reason == "end_turn":
            truncated = content[0].text[: max(0, max_tokens * 4 - 40)]
            content, stop_reason, output_tokens = [TextBlock(text=truncated)], "max_tokens", max_tokens
        input_tokens = estimate_input_tokens(system, messages, tools)
        if self.prompt_cache is None:
            usage = Usage(input_tokens=input_tokens)
        else:
            usage = self.prompt_cache.account(input_tokens, system=system, messages=messages, tools=tools)
        return ModelResponse(
            message=Message(role="assistant", content=content),
            stop_reason=stop_reason,
            usage=usage.model_copy(update={"output_tokens": output_tokens}),
            model=self.name,
        )


def _last_request_index(messages: Sequence[Message]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role == "user" and message.text:
            return index
    return None


def plan_tool_calls(request: str, tools: Sequence[ToolSpec]) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls the local model makes for ``request``, in the order the request mentions them."""
    found: list[tuple[int, str, dict[str, Any]]] = []
    for spec in tools:
        for pattern in spec.local_patterns:
            for match in re.finditer(pattern, request, re.IGNORECASE):
                arguments = {k: v.strip() for k, v in match.groupdict().items() if v is not None}
                found.append((match.start(), spec.name, arguments))
    if not found:
        choice = _best_by_description(request, tools)
        if choice is not None:
            found.append((0, *choice))
    found.sort(key=lambda item: item[0])
    plan: list[tuple[str, dict[str, Any]]] = []
    for _, name, arguments in found:
        if (name, arguments) not in plan:
            plan.append((name, arguments))
    return plan


def _best_by_description(request: str, tools: Sequence[ToolSpec]) -> tuple[str, dict[str, Any]] | None:
    """Pick the tool whose name and description share most words with the request.

    Only tools without ``local_patterns`` that take one required string argument
    qualify (a hand-off to a specialist, a search query): the whole request is
    passed as that argument. Ties go to the tool listed first.
    """
    words = _words(request)
    best: tuple[int, str, str] | None = None
    for spec in tools:
        if spec.local_patterns:
            continue
        required = spec.input_schema.get("required", [])
        properties = spec.input_schema.get("properties", {})
        if len(required) != 1 or properties.get(required[0], {}).get("type") != "string":
            continue
        score = len(words & (_words(spec.description) | _words(spec.name.replace("_", " "))))
        if score and (best is None or score > best[0]):
            best = (score, spec.name, required[0])
    if best is None:
        return None
    return best[1], {best[2]: request}


def _tool_names(messages: Sequence[Message]) -> dict[str, str]:
    return {tu.id: tu.name for m in messages for tu in m.tool_uses}


def _answer_from_results(messages: Sequence[Message], results: list[ToolResultBlock]) -> str:
    names = _tool_names(messages)
    parts = []
    for result in results:
        name = names.get(result.tool_use_id, "tool")
        content = result.content if isinstance(result.content, dict) else {"result": result.content}
        if result.status == "error":
            detail = content.get("error", "failed")
            reason = content.get("reason")
            parts.append(f"{name} was not completed: {detail}" + (f" (reason: {reason})" if reason else ""))
        else:
            parts.append(f"{name} returned {_render(content)}")
    return "; ".join(parts) + "."


def _answer_without_tools(request: str, earlier: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
    question = _QUESTION.search(request)
    if question:
        key = question.group("key").strip().lower()
        for message in reversed(earlier):
            if message.role != "user":
                continue
            for fact in _FACT.finditer(message.text):
                if fact.group("key").strip().lower() == key:
                    return f"Your {key} is {fact.group('value').strip()}."
        return f"I don't know your {key} yet."
    facts = [(f.group("key").strip().lower(), f.group("value").strip()) for f in _FACT.finditer(request)]
    if facts:
        return "Noted: " + "; ".join(f"your {k} is {v}" for k, v in facts) + "."
    if tools:
        listing = "; ".join(f"{t.name}: {t.description}" for t in tools)
        return f"I could not match your request to a tool. I can use: {listing}"
    return "I could not match your request to anything I can do."
