"""The deployer: create a stack's resources in moto, in dependency order, with their intrinsics resolved.

moto's own CloudFormation cannot take CDK templates (it has no
``AWS::Lambda::Alias``, ``AWS::SecretsManager::Secret`` or
``AWS::ApiGateway::Stage``), so local mode reads templates itself. Each
resource type has a handler in :mod:`agentrail_local.cloudformation.resources`; a type
without one is skipped with one warning and gets made-up ids and ARNs, so
references to it still resolve.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentrail_local.account import REGION
from agentrail_local.cloudformation.assembly import StackArtifact
from agentrail_local.cloudformation.intrinsics import Resolver, Scope, references
from agentrail_local.cloudformation.resources import NOTICED_TYPES, RECORDED_TYPES, RESOURCE_HANDLERS, placeholder
from agentrail_local.cloudformation.resources.base import ClientFactory, DeployedResource, ResourceContext, TemplateError
from agentrail_local.console import Console

#: Template sections and types local mode has nothing to do with.
SKIPPED_TYPES = frozenset({"AWS::CDK::Metadata"})
#: ``BootstrapVersion`` names an SSM parameter of the CDK bootstrap stack, which moto does not have.
BOOTSTRAP_VERSION = "30"


# -- dependencies -------------------------------------------------------------------------------


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

    @property
    def notices(self) -> list[str]:
        """One line per resource type skipped on purpose (CloudWatch alarms, dashboards), naming every resource:
        ``AgentrailAsync: skipped 9 CloudWatch alarms: local mode has no CloudWatch alarms: A, B, ...``."""
        lines = []
        for resource_type, (one, several, reason) in NOTICED_TYPES.items():
            names = [r.logical_id for r in self.of_type(resource_type) if r.placeholder]
            if names:
                what = one if len(names) == 1 else several
                lines.append(f"{self.stack_name}: skipped {len(names)} {what}: {reason}: {', '.join(names)}")
        return lines

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
            raise TemplateError(
                f"stack {stack.stack_name}: parameter {name} has no default; give it one (local mode takes no parameter values)"
            )
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
    except Exception as error:
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
        warn: Console = _print_warning,
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
        definitions, deployed, resolver, skipped = self.prepare()
        warnings: list[str] = []
        unknown: dict[str, list[str]] = {}
        for logical_id in creation_order({k: v for k, v in definitions.items() if k not in skipped}):
            deployed[logical_id] = self.create(logical_id, definitions[logical_id], resolver, deployed, warnings, unknown)
        self.warn_unknown(unknown, warnings)
        outputs, exports = self.outputs(resolver)
        return StackDeployment(self.stack, deployed, outputs, exports, skipped, warnings)

    # -- shared with the redeployer ---------------------------------------------------------

    def prepare(self) -> tuple[dict[str, Any], dict[str, DeployedResource], Resolver, list[str]]:
        """The template's resources, an empty record, a resolver over it, and the resources whose condition is false."""
        template = self.stack.template
        definitions: dict[str, Any] = {
            name: definition
            for name, definition in template.get("Resources", {}).items()
            if definition.get("Type") not in SKIPPED_TYPES
        }
        deployed: dict[str, DeployedResource] = {}
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
        return definitions, deployed, resolver, skipped

    def context(
        self,
        logical_id: str,
        definition: Mapping[str, Any],
        resolver: Resolver,
        deployed: Mapping[str, DeployedResource],
        warnings: list[str],
    ) -> ResourceContext:
        """What a handler gets for ``logical_id``: its properties resolved against ``deployed``."""

        def warn(message: str) -> None:
            warnings.append(message)
            self._warn(message)

        try:
            properties = resolver.resolve(definition.get("Properties", {}))
        except TemplateError as error:
            raise TemplateError(f"{self.stack.stack_name}/{logical_id}: {error}") from None
        return ResourceContext(
            stack=self.stack,
            logical_id=logical_id,
            type=definition["Type"],
            properties=properties,
            metadata=dict(definition.get("Metadata", {})),
            clients=self.clients,
            work_dir=self.work_dir,
            resources=deployed,
            warn=warn,
        )

    def create(
        self,
        logical_id: str,
        definition: Mapping[str, Any],
        resolver: Resolver,
        deployed: Mapping[str, DeployedResource],
        warnings: list[str],
        unknown: dict[str, list[str]],
    ) -> DeployedResource:
        """Create one resource (a placeholder for a type local mode does not emulate, listed in ``unknown``)."""
        context = self.context(logical_id, definition, resolver, deployed, warnings)
        return self.create_in(context, unknown)

    def create_in(self, context: ResourceContext, unknown: dict[str, list[str]]) -> DeployedResource:
        handler = RESOURCE_HANDLERS.get(context.type)
        if handler is not None:
            try:
                return handler(context)
            except TemplateError:
                raise
            except Exception as error:
                raise TemplateError(
                    f"{self.stack.stack_name}/{context.logical_id} ({context.type}) could not be created locally: {error}"
                ) from error
        if context.type in RECORDED_TYPES:
            return placeholder(context, reason=RECORDED_TYPES[context.type])
        unknown.setdefault(context.type, []).append(context.logical_id)
        return placeholder(context, reason="not emulated")

    def warn_unknown(self, unknown: Mapping[str, list[str]], warnings: list[str]) -> None:
        for resource_type, logical_ids in unknown.items():
            message = (
                f"{self.stack.stack_name}: local mode does not emulate {resource_type}; "
                f"skipped {', '.join(logical_ids)} (references get placeholder ids)"
            )
            warnings.append(message)
            self._warn(message)

    def outputs(self, resolver: Resolver) -> tuple[dict[str, Any], dict[str, Any]]:
        outputs: dict[str, Any] = {}
        exports: dict[str, Any] = {}
        for name, output in self.stack.template.get("Outputs", {}).items():
            if "Condition" in output and not resolver.condition(output["Condition"]):
                continue
            outputs[name] = resolver.resolve(output["Value"])
            if "Export" in output:
                exports[resolver.resolve(output["Export"]["Name"])] = outputs[name]
        return outputs, exports


__all__ = ["SKIPPED_TYPES", "StackDeployer", "StackDeployment", "creation_order", "dependencies"]
