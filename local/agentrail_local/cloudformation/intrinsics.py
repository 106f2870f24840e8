"""CloudFormation's intrinsic functions (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``, conditions...), evaluated locally."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentrail_local.account import ACCOUNT_ID, PARTITION, REGION, URL_SUFFIX
from agentrail_local.cloudformation.resources.base import DeployedResource, TemplateError

AVAILABILITY_ZONES = tuple(f"{REGION}{letter}" for letter in "abcdef")


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class Scope:
    """What intrinsic functions can see while one stack deploys."""

    stack_name: str
    parameters: Mapping[str, Any]
    conditions: Mapping[str, Any]
    mappings: Mapping[str, Any]
    resources: Mapping[str, DeployedResource]
    exports: Mapping[str, Any] = field(default_factory=dict)
    stack_outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    skipped: frozenset[str] = frozenset()
    region: str = REGION
    account_id: str = ACCOUNT_ID

    def pseudo_parameters(self) -> dict[str, Any]:
        return {
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::Partition": PARTITION,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local",
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }


class Resolver:
    """Evaluates intrinsic functions (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, conditions...) in a :class:`Scope`."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._pseudo = scope.pseudo_parameters()
        self._condition_values: dict[str, bool] = {}

    # -- public ---------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic replaced by its result; ``AWS::NoValue`` entries removed."""
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, argument),) = value.items()
                if key == "Ref":
                    return self.ref(argument)
                if key.startswith("Fn::"):
                    return self._function(key, argument)
            resolved = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        return value

    def condition(self, name: str) -> bool:
        if name not in self._condition_values:
            if name not in self.scope.conditions:
                raise TemplateError(f"condition {name!r} is not defined in Conditions")
            self._condition_values[name] = bool(self._evaluate_condition(self.scope.conditions[name]))
        return self._condition_values[name]

    def ref(self, name: str) -> Any:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self.scope.parameters:
            return self.scope.parameters[name]
        if name in self.scope.resources:
            return self.scope.resources[name].ref
        if name in self.scope.skipped:
            raise TemplateError(f"Ref to {name}, which its Condition left out of the stack")
        raise TemplateError(f"Ref to {name!r}: no such parameter, pseudo parameter or resource")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.scope.resources.get(logical_id)
        if resource is None:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute}: no such resource")
        value = resource.get_att(attribute)
        if value is None:
            if resource.placeholder:
                return resource.attributes["Arn"] if attribute.endswith("Arn") else resource.physical_id
            raise TemplateError(
                f"Fn::GetAtt {logical_id}.{attribute}: local mode does not know this attribute of {resource.type}"
            )
        return value

    # -- functions ------------------------------------------------------------------

    def _function(self, name: str, argument: Any) -> Any:
        handler = getattr(self, "_fn_" + name.removeprefix("Fn::").lower(), None)
        if handler is None:
            raise TemplateError(f"{name} is not supported by local mode")
        return handler(argument)

    def _fn_getatt(self, argument: Any) -> Any:
        if isinstance(argument, str):
            logical_id, _, attribute = argument.partition(".")
        else:
            logical_id, attribute = argument[0], self.resolve(argument[1])
        return self.get_att(logical_id, attribute)

    def _fn_join(self, argument: Any) -> str:
        delimiter, items = argument
        values = self.resolve(items)
        return str(delimiter).join(_text(v) for v in values)

    def _fn_sub(self, argument: Any) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, variables = argument[0], self.resolve(argument[1])

        def substitute(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return _text(variables[expression])
            if "." in expression and expression.split(".", 1)[0] in self.scope.resources:
                logical_id, attribute = expression.split(".", 1)
                return _text(self.get_att(logical_id, attribute))
            return _text(self.ref(expression))

        return _SUB_VARIABLE.sub(substitute, text)

    def _fn_select(self, argument: Any) -> Any:
        index, items = self.resolve(argument[0]), self.resolve(argument[1])
        try:
            return items[int(index)]
        except (IndexError, ValueError, TypeError):
            raise TemplateError(f"Fn::Select index {index!r} is out of range for {len(items)} items") from None

    def _fn_split(self, argument: Any) -> list[str]:
        delimiter, text = argument[0], self.resolve(argument[1])
        return str(text).split(delimiter)

    def _fn_if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _fn_getazs(self, argument: Any) -> list[str]:
        return list(AVAILABILITY_ZONES)

    def _fn_base64(self, argument: Any) -> str:
        return base64.b64encode(_text(self.resolve(argument)).encode()).decode()

    def _fn_findinmap(self, argument: Any) -> Any:
        map_name, top, second = (self.resolve(a) for a in argument[:3])
        try:
            return self.scope.mappings[map_name][top][second]
        except KeyError:
            if len(argument) > 3 and isinstance(argument[3], dict) and "DefaultValue" in argument[3]:
                return self.resolve(argument[3]["DefaultValue"])
            raise TemplateError(f"Fn::FindInMap: {map_name}/{top}/{second} is not in Mappings") from None

    def _fn_importvalue(self, argument: Any) -> Any:
        name = self.resolve(argument)
        if name not in self.scope.exports:
            raise TemplateError(f"Fn::ImportValue {name!r}: no stack of this assembly exports it")
        return self.scope.exports[name]

    def _fn_getstackoutput(self, argument: Any) -> Any:
        # What CDK emits for cross-stack references under "@aws-cdk/core:defaultCrossStackReferences": "weak".
        spec = self.resolve(argument)
        outputs = self.scope.stack_outputs.get(spec["StackName"])
        if outputs is None or spec["OutputName"] not in outputs:
            raise TemplateError(
                f"Fn::GetStackOutput: stack {spec['StackName']} has no output {spec['OutputName']} (deploy it first)"
            )
        return outputs[spec["OutputName"]]

    def _fn_tojsonstring(self, argument: Any) -> str:
        return json.dumps(self.resolve(argument), separators=(",", ":"))

    def _fn_length(self, argument: Any) -> int:
        return len(self.resolve(argument))

    # Condition functions are also valid inside property values (they return booleans there).
    def _fn_equals(self, argument: Any) -> bool:
        left, right = (self.resolve(a) for a in argument)
        return _text(left) == _text(right)

    def _fn_not(self, argument: Any) -> bool:
        return not self._evaluate_condition(argument[0])

    def _fn_and(self, argument: Any) -> bool:
        return all(self._evaluate_condition(c) for c in argument)

    def _fn_or(self, argument: Any) -> bool:
        return any(self._evaluate_condition(c) for c in argument)

    def _evaluate_condition(self, expression: Any) -> bool:
        if isinstance(expression, dict) and set(expression) == {"Condition"}:
            return self.condition(expression["Condition"])
        value = self.resolve(expression)
        if isinstance(value, str):
            return value.lower() == "true"
        return bool(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def references(value: Any) -> Iterator[str]:
    """Every logical id ``value`` mentions through ``Ref``, ``Fn::GetAtt`` or ``Fn::Sub``."""
    if isinstance(value, dict):
        for key, argument in value.items():
            if key == "Ref" and isinstance(argument, str):
                yield argument
            elif key == "Fn::GetAtt":
                yield argument.split(".", 1)[0] if isinstance(argument, str) else argument[0]
            elif key == "Fn::Sub":
                text = argument if isinstance(argument, str) else argument[0]
                local = set() if isinstance(argument, str) else set(argument[1])
                for match in _SUB_VARIABLE.finditer(text):
                    name = match.group(1)
                    if not name.startswith("!") and name.split(".", 1)[0] not in local:
                        yield name.split(".", 1)[0]
                if not isinstance(argument, str):
                    yield from references(argument[1])
            else:
                yield from references(argument)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


__all__ = ["AVAILABILITY_ZONES", "NO_VALUE", "Resolver", "Scope", "references"]
