"""The template reader: resolve CloudFormation intrinsics and create a stack's resources in moto, in dependency order.

moto's own CloudFormation cannot take CDK templates (it has no
``AWS::Lambda::Alias``, ``AWS::SecretsManager::Secret`` or
``AWS::ApiGateway::Stage``), so local mode reads templates itself. Each
resource type has a handler in :mod:`agentrail_local.cloudformation.resources`; a type
without one is skipped with one warning and gets made-up ids and ARNs, so
references to it still resolve.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentrail_local.cloudformation.assembly import StackArtifact
from agentrail_local.cloudformation.resources import RECORDED_TYPES, RESOURCE_HANDLERS, placeholder
from agentrail_local.cloudformation.resources.base import (
    ACCOUNT_ID,
    PARTITION,
    REGION,
    URL_SUFFIX,
    ClientFactory,
    DeployedResource,
    ResourceContext,
    TemplateError,
)

#: Template sections and types local mode has nothing to do with.
SKIPPED_TYPES = frozenset({"AWS::CDK::Metadata"})
#: ``BootstrapVersion`` names an SSM parameter of the CDK bootstrap stack, which moto does not have.
BOOTSTRAP_VERSION = "30"
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
                (key, argument), = value.items()
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
            raise TemplateError(f"Fn::GetStackOutput: stack {spec['StackName']} has no output {spec['OutputName']} (deploy it first)")
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


# -- dependencies -------------------------------------------------------------------------------


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


def dependencies(logical_id: str, definition: Mapping[str, Any], resources: Mapping[str, Any]) -> set[str]:
    """The resources ``logical_id`` must wait for: what its properties reference, plus ``DependsOn``."""
    found = {name for name in references(definition.get("Properties", {})) if name in resources}
    depends_on = definition.get("DependsOn", [])
    found.update([depends_on] if isinstance(depends_on, str) else depends_on)
    found.discard(logical_id)
    unknown = found - set(resources)
    if unknown:
        raise TemplateError(f"{logical_id} depends on {', '.join(sorted(unknown))}, which the template does not define")
    return found


def creation_order(resources: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Logical ids so that each comes after everything it depends on; template order breaks ties.

    Raises
    ------
    TemplateError
        When resources depend on each other in a cycle.
    """
    pending = {name: dependencies(name, definition, resources) for name, definition in resources.items()}
    order: list[str] = []
    done: set[str] = set()
    while pending:
        ready = [name for name, needs in pending.items() if needs <= done]
        if not ready:
            raise TemplateError(f"circular dependency between {', '.join(sorted(pending))}")
        for name in ready:
            order.append(name)
            done.add(name)
            del pending[name]
    return order


# -- deployment ---------------------------------------------------------------------------------


@dataclass
class StackDeployment:
    """One deployed stack: its resources (in creation order) and outputs."""

    stack: StackArtifact
    resources: dict[str, DeployedResource]
    outputs: dict[str, Any]
    exports: dict[str, Any]
    skipped: list[str]
    warnings: list[str]

    @property
    def stack_name(self) -> str:
        return self.stack.stack_name

    def of_type(self, resource_type: str) -> list[DeployedResource]:
        return [r for r in self.resources.values() if r.type == resource_type]

    def resource(self, logical_id: str) -> DeployedResource:
        return self.resources[logical_id]


def _parameter_values(stack: StackArtifact, clients: ClientFactory) -> dict[str, Any]:
    """Each template parameter's value: the SSM parameter it names, else its default (local mode takes no values)."""
    values: dict[str, Any] = {}
    for name, spec in stack.template.get("Parameters", {}).items():
        kind = str(spec.get("Type", "String"))
        if kind.startswith("AWS::SSM::Parameter::Value"):
            value = BOOTSTRAP_VERSION if name == "BootstrapVersion" else _ssm_value(clients, name, spec)
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise TemplateError(f"stack {stack.stack_name}: parameter {name} has no default; give it one (local mode takes no parameter values)")
        if kind in ("CommaDelimitedList", "List<Number>") and isinstance(value, str):
            value = value.split(",")
        values[name] = value
    return values


def _ssm_value(clients: ClientFactory, name: str, spec: Mapping[str, Any]) -> Any:
    parameter_name = spec.get("Default")
    if parameter_name is None:
        raise TemplateError(f"parameter {name} reads SSM but names no parameter; set its Default to the parameter name")
    try:
        return clients("ssm").get_parameter(Name=parameter_name)["Parameter"]["Value"]
    except Exception as error:  # noqa: BLE001 - any failure means the parameter is not there
        raise TemplateError(f"parameter {name} reads SSM parameter {parameter_name}, which local mode does not have") from error


def _print_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


class StackDeployer:
    """Deploys one stack of a cloud assembly into moto.

    Parameters
    ----------
    stack:
        From :class:`~agentrail_local.cloudformation.assembly.CloudAssembly`.
    clients:
        Returns a boto3 client for a service name, pointed at moto.
    work_dir:
        Where extracted zip assets and inline code are written.
    exports:
        Outputs exported by stacks deployed before this one (for ``Fn::ImportValue``).
    stack_outputs:
        Outputs of stacks deployed before this one, by stack name (for ``Fn::GetStackOutput``).
    warn:
        Receives one line per warning. Default: printed to stderr.
    """

    def __init__(
        self,
        stack: StackArtifact,
        *,
        clients: ClientFactory,
        work_dir: Path,
        exports: Mapping[str, Any] | None = None,
        stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
        warn: Callable[[str], None] = _print_warning,
    ) -> None:
        self.stack = stack
        self.clients = clients
        self.work_dir = Path(work_dir)
        self.exports = dict(exports or {})
        self.stack_outputs = dict(stack_outputs or {})
        self._warn = warn

    def deploy(self) -> StackDeployment:
        """Create every resource, then resolve the outputs.

        Raises
        ------
        TemplateError
            When the template uses something local mode cannot deploy.
        """
        template = self.stack.template
        definitions: dict[str, Any] = {
            name: definition
            for name, definition in template.get("Resources", {}).items()
            if definition.get("Type") not in SKIPPED_TYPES
        }
        deployed: dict[str, DeployedResource] = {}
        warnings: list[str] = []
        scope = Scope(
            stack_name=self.stack.stack_name,
            parameters=_parameter_values(self.stack, self.clients),
            conditions=template.get("Conditions", {}),
            mappings=template.get("Mappings", {}),
            resources=deployed,
            exports=self.exports,
            stack_outputs=self.stack_outputs,
            region=self.stack.region or REGION,
        )
        resolver = Resolver(scope)
        skipped = [name for name, d in definitions.items() if "Condition" in d and not resolver.condition(d["Condition"])]
        if skipped:
            scope = Scope(**{**scope.__dict__, "skipped": frozenset(skipped)})
            resolver = Resolver(scope)
        unknown: dict[str, list[str]] = {}

        def warn(message: str) -> None:
            warnings.append(message)
            self._warn(message)

        for logical_id in creation_order({k: v for k, v in definitions.items() if k not in skipped}):
            definition = definitions[logical_id]
            resource_type = definition["Type"]
            try:
                properties = resolver.resolve(definition.get("Properties", {}))
            except TemplateError as error:
                raise TemplateError(f"{self.stack.stack_name}/{logical_id}: {error}") from None
            context = ResourceContext(
                stack=self.stack,
                logical_id=logical_id,
                type=resource_type,
                properties=properties,
                metadata=dict(definition.get("Metadata", {})),
                clients=self.clients,
                work_dir=self.work_dir,
                resources=deployed,
                warn=warn,
            )
            handler = RESOURCE_HANDLERS.get(resource_type)
            if handler is not None:
                try:
                    deployed[logical_id] = handler(context)
                except TemplateError:
                    raise
                except Exception as error:
                    raise TemplateError(
                        f"{self.stack.stack_name}/{logical_id} ({resource_type}) could not be created locally: {error}"
                    ) from error
            elif resource_type in RECORDED_TYPES:
                deployed[logical_id] = placeholder(context, reason=RECORDED_TYPES[resource_type])
            else:
                unknown.setdefault(resource_type, []).append(logical_id)
                deployed[logical_id] = placeholder(context, reason="not emulated")
        for resource_type, logical_ids in unknown.items():
            message = (
                f"{self.stack.stack_name}: local mode does not emulate {resource_type}; "
                f"skipped {', '.join(logical_ids)} (references get placeholder ids)"
            )
            warn(message)
        outputs: dict[str, Any] = {}
        exports: dict[str, Any] = {}
        for name, output in template.get("Outputs", {}).items():
            if "Condition" in output and not resolver.condition(output["Condition"]):
                continue
            outputs[name] = resolver.resolve(output["Value"])
            if "Export" in output:
                exports[resolver.resolve(output["Export"]["Name"])] = outputs[name]
        return StackDeployment(self.stack, deployed, outputs, exports, skipped, warnings)


__all__ = [
    "AVAILABILITY_ZONES",
    "NO_VALUE",
    "Resolver",
    "Scope",
    "StackDeployer",
    "StackDeployment",
    "creation_order",
    "dependencies",
    "references",
]
