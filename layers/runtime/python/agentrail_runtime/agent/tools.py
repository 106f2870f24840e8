"""Typed Python functions as agent tools.

A tool's arguments are described by its signature. The loop validates what the
model asked for with a pydantic model built from that signature *before* the
function runs, so a tool body only ever sees well-typed input.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.models.base import ToolSpec

_ANY = TypeAdapter(Any)


class ToolError(Exception):
    """Raise from a tool to report a failure the model should see and may recover from."""


#: What a tool with side effects returns in a shadow run when it declares no ``dry_run`` result.
DRY_RUN_DEFAULT: dict[str, Any] = {"dry_run": True, "note": "not run: this is a shadow run"}


@dataclass(frozen=True)
class DryRunCall:
    """A call of a tool with side effects that a shadow run answered with the tool's dry-run result."""

    tool: str
    arguments: dict[str, Any]
    result: Any


class _ArgsBase(BaseModel):
    model_config = ConfigDict(extra="forbid")


ApprovalRule = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Tool:
    """A callable the agent may use.

    Attributes
    ----------
    name, description:
        What the model sees.
    args_model:
        pydantic model of the arguments, built from the function signature.
    requires_approval:
        ``True``, or a rule over the validated arguments (e.g. ``lambda a: a["amount"] > 100``).
        When it holds, the loop pauses *before* the tool runs.
    local_patterns:
        Regular expressions with named groups. Only the deterministic local model
        reads them: a match selects this tool and the groups become its arguments.
    """

    name: str
    description: str
    function: Callable[..., Any]
    args_model: type[BaseModel]
    requires_approval: bool | ApprovalRule = False
    local_patterns: tuple[re.Pattern[str], ...] = field(default=())
    context_parameter: str | None = None
    #: A successful call ends the run (``handed_off``): used for hand-offs to other agents.
    terminal: bool = False
    #: The tool changes the world (a payment, an email): a checkpointed run records that the call started before
    #: it runs, and never runs it again for the same id; a call that crashed mid-run ends as ``outcome_unknown``.
    side_effects: bool = False
    #: What a tool with side effects returns instead of running, in a shadow run (``None``: :data:`DRY_RUN_DEFAULT`
    #: with the tool's name). The model sees it as the tool's result; the shadow comparison records it.
    dry_run: Any = None
    #: The tool's result depends only on its arguments (and the caller, with ``reads_caller``): an agent whose every
    #: tool is cacheable may serve repeated questions from the response cache. Never with ``side_effects``.
    cacheable: bool = False
    #: The result depends on who calls (the caller's orders, their account): the response cache then keys answers by
    #: the caller's principal too. A tool that takes a :class:`ToolContext` counts as reading the caller.
    reads_caller: bool = False

    @property
    def depends_on_caller(self) -> bool:
        """Whether the tool's result may differ between callers: ``reads_caller``, or a ``ToolContext`` parameter
        (the context carries the caller's principal)."""
        return self.reads_caller or self.context_parameter is not None

    def __post_init__(self) -> None:
        if self.cacheable and self.side_effects:
            raise ValueError(
                f"tool {self.name!r} cannot be both cacheable=True and side_effects=True: a cached answer would skip "
                "its side effect, so drop one of the two"
            )

    @property
    def dry_run_result(self) -> Any:
        """The declared dry-run result, as JSON (the default stub when none was declared)."""
        declared = self.dry_run if self.dry_run is not None else {**DRY_RUN_DEFAULT, "tool": self.name}
        return _ANY.dump_python(declared, mode="json")

    def in_dry_run(self, calls: list[DryRunCall]) -> Tool:
        """This tool as a shadow run uses it: a tool with ``side_effects`` never runs its function, it returns
        :attr:`dry_run_result` and appends what it was asked to ``calls``; any other tool is returned unchanged."""
        if not self.side_effects:
            return self
        result = self.dry_run_result
        hidden = self.context_parameter

        def stub(**kwargs: Any) -> Any:
            arguments = {k: v for k, v in kwargs.items() if k != hidden}
            calls.append(DryRunCall(tool=self.name, arguments=_ANY.dump_python(arguments, mode="json"), result=result))
            return result

        return replace(self, function=stub)

    @cached_property
    def spec(self) -> ToolSpec:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        return ToolSpec(
            name=self.name,
            description=self.description,
            input_schema=schema,
            local_patterns=tuple(p.pattern for p in self.local_patterns),
        )

    def validate(self, arguments: Mapping[str, Any]) -> BaseModel:
        """Validate raw model-provided arguments.

        Raises
        ------
        pydantic.ValidationError
            When the arguments do not fit the signature.
        """
        return self.args_model.model_validate(dict(arguments))

    def needs_approval(self, arguments: BaseModel) -> bool:
        rule = self.requires_approval
        if callable(rule):
            return bool(rule(arguments.model_dump()))
        return bool(rule)

    def invoke(self, arguments: BaseModel, context: ToolContext | None = None) -> Any:
        """Run the tool on validated arguments and return a JSON-compatible result."""
        kwargs = {name: getattr(arguments, name) for name in type(arguments).model_fields}
        if self.context_parameter:
            kwargs[self.context_parameter] = context if context is not None else ToolContext()
        return _ANY.dump_python(self.function(**kwargs), mode="json")


def _args_model(function: Callable[..., Any], name: str) -> tuple[type[BaseModel], str | None]:
    """The arguments model of ``function`` and the name of its ToolContext parameter, if any."""
    hints = get_type_hints(function, include_extras=True)
    fields: dict[str, Any] = {}
    context_parameter = None
    for param in inspect.signature(function).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {name!r}: *args and **kwargs cannot be described to a model")
        annotation = hints.get(param.name, Any)
        if annotation is ToolContext:
            context_parameter = param.name
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    model_name = "".join(part.capitalize() for part in name.split("_")) + "Args"
    return create_model(model_name, __base__=_ArgsBase, **fields), context_parameter


def tool(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    requires_approval: bool | ApprovalRule = False,
    local_patterns: Sequence[str] = (),
    terminal: bool = False,
    side_effects: bool = False,
    dry_run: Any = None,
    cacheable: bool = False,
    reads_caller: bool = False,
) -> Any:
    """Turn a typed function into a :class:`Tool`.

    Usable bare (``@tool``) or with options (``@tool(requires_approval=True)``).
    The description defaults to the first paragraph of the docstring. Declare ``side_effects=True`` on a tool
    that changes the world: it then runs at most once per call id (see :class:`Tool`), and a shadow run returns
    its ``dry_run`` result instead of running it (default: :data:`DRY_RUN_DEFAULT`). Declare ``cacheable=True`` on a
    tool whose result depends only on its arguments, so that its agent may use the response cache, and
    ``reads_caller=True`` when the result depends on who calls too (the cache then keys answers by caller).

    Raises
    ------
    ValueError
        A bad name, no description, a ``dry_run`` without ``side_effects``, or ``cacheable`` with ``side_effects``.
    """

    def wrap(fn: Callable[..., Any]) -> Tool:
        tool_name = name or fn.__name__
        if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_-]{0,63}", tool_name):
            raise ValueError(f"tool name {tool_name!r} must match [a-zA-Z][a-zA-Z0-9_-]{{0,63}}")
        doc = inspect.getdoc(fn) or ""
        text = description or doc.split("\n\n")[0].replace("\n", " ").strip()
        if not text:
            raise ValueError(f"tool {tool_name!r} needs a description or a docstring")
        if dry_run is not None and not side_effects:
            raise ValueError(f"tool {tool_name!r} declares a dry_run result: only a tool with side_effects=True has one")
        args_model, context_parameter = _args_model(fn, tool_name)
        return Tool(
            name=tool_name,
            description=text,
            function=fn,
            args_model=args_model,
            context_parameter=context_parameter,
            requires_approval=requires_approval,
            local_patterns=tuple(re.compile(p, re.IGNORECASE) for p in local_patterns),
            terminal=terminal,
            side_effects=side_effects,
            dry_run=dry_run,
            cacheable=cacheable,
            reads_caller=reads_caller,
        )

    return wrap(function) if function is not None else wrap


def describe_validation_error(error: ValidationError) -> list[dict[str, str]]:
    """Field-level problems without the offending values, safe to show a model or a caller."""
    return [
        {"field": ".".join(str(part) for part in item["loc"]) or "(root)", "problem": item["msg"]}
        for item in error.errors(include_input=False, include_url=False)
    ]
