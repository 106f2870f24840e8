"""Redeploy a stack from a new synth onto what is running: create what is new, update what changed, delete what went.

The new template's resources are walked in creation order with their properties resolved against
what is deployed now, and compared with the properties they were deployed with (asset keys compared
by content, see :mod:`agentrail_local.cloudformation.changes`), so a resource that references a
replaced one is updated too, as CloudFormation does. moto's state is kept: nothing is created anew
unless it is new or replaced.

A change that CloudFormation makes by replacing the resource (see
:data:`~agentrail_local.cloudformation.resources.updates.REPLACING_PROPERTIES`) is made the same way
(delete, then create) for resources that hold no data. For those that do (tables, queues, buckets,
topics, secrets, user pools, keys, log groups) local mode keeps the old one and its data, and says
which properties it did not apply: replacing would lose the data a developer is working with, and a
restart of local mode recreates it anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from agentrail_local.cloudformation.assembly import StackArtifact
from agentrail_local.cloudformation.changes import AssetAwareComparison, changed_properties
from agentrail_local.cloudformation.deployer import StackDeployer, StackDeployment, creation_order
from agentrail_local.cloudformation.resources.base import (
    RECORDED_TYPES,
    RESOURCE_DELETERS,
    RESOURCE_HANDLERS,
    RESOURCE_UPDATERS,
    ClientFactory,
    DeployedResource,
    NeedsReplacement,
    NotApplied,
    ResourceContext,
    TemplateError,
)
from agentrail_local.console import Console

__all__ = ["KEPT_ON_REPLACEMENT", "AppliedChange", "StackRedeployment", "redeploy_stack", "redeploy_stacks", "remove_stack"]

#: Types whose replacement would lose data: a change that needs one is not applied locally (see the module docstring).
KEPT_ON_REPLACEMENT = frozenset(
    {
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
        "AWS::SQS::Queue",
        "AWS::S3::Bucket",
        "AWS::SNS::Topic",
        "AWS::SecretsManager::Secret",
        "AWS::Cognito::UserPool",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
    }
)

Action = Literal["added", "updated", "replaced", "removed", "not applied"]


class _Recorder(Protocol):
    def __call__(
        self, logical_id: str, kind: str, action: Action, properties: tuple[str, ...] = (), detail: str = ""
    ) -> None: ...


@dataclass(frozen=True)
class AppliedChange:
    """What a redeploy did to one resource; ``properties`` are the top-level ones that changed."""

    stack: str
    logical_id: str
    type: str
    action: Action
    properties: tuple[str, ...] = ()
    detail: str = ""

    def describe(self) -> str:
        """``updated Handler (AWS::Lambda::Function): Environment``, as the console shows it."""
        text = f"{self.action} {self.logical_id} ({self.type})"
        if self.action == "not applied":
            return f"{text}: {self.detail}"
        if self.properties and self.action in ("updated", "replaced"):
            text += f" [{', '.join(self.properties)}]"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class StackRedeployment:
    deployment: StackDeployment
    changes: list[AppliedChange]


def redeploy_stack(deployer: StackDeployer, previous: StackDeployment) -> StackRedeployment:
    """Bring ``previous`` (deployed in moto) to ``deployer.stack``'s template; see the module docstring.

    Never raises for one resource: what cannot be created, updated or deleted is an ``not applied``
    change, and the rest goes on (resources that reference it may then fail to resolve too).
    """
    definitions, deployed, resolver, skipped = deployer.prepare()
    stack_name = deployer.stack.stack_name
    comparison = AssetAwareComparison(previous.stack, deployer.stack)
    changes: list[AppliedChange] = []
    warnings: list[str] = []
    unknown: dict[str, list[str]] = {}
    active = {k: v for k, v in definitions.items() if k not in skipped}

    def record(logical_id: str, kind: str, action: Action, properties: tuple[str, ...] = (), detail: str = "") -> None:
        changes.append(AppliedChange(stack_name, logical_id, kind, action, properties, detail))

    for logical_id in creation_order(active):
        definition = active[logical_id]
        kind = str(definition["Type"])
        old = previous.resources.get(logical_id)
        try:
            context = deployer.context(logical_id, definition, resolver, deployed, warnings)
        except TemplateError as error:
            if old is not None and old.type == kind:
                deployed[logical_id] = old
            record(logical_id, kind, "not applied", detail=f"{error}; {'the old one stays' if old else 'not created'}")
            continue
        if old is None or old.type != kind:
            try:
                deployed[logical_id] = deployer.create_in(context, unknown)
            except TemplateError as error:
                record(logical_id, kind, "not applied", detail=f"could not be created: {error}")
                continue
            record(logical_id, kind, "added")
            continue
        changed = changed_properties(old.properties, context.properties, comparison.same)
        if not changed:
            # The same resource; its record takes this synth's values (an asset key that only got a new name).
            deployed[logical_id] = replace(old, properties=context.properties, metadata=context.metadata)
            continue
        deployed[logical_id] = _update(deployer, context, old, changed, record, unknown)
    for old in reversed(list(previous.resources.values())):
        current = deployed.get(old.logical_id)
        if current is None or current.type != old.type:
            record(old.logical_id, old.type, "removed", detail=_delete(old, deployer.clients))
    deployer.warn_unknown(unknown, warnings)
    outputs, exports = deployer.outputs(resolver)
    deployment = StackDeployment(deployer.stack, deployed, outputs, exports, skipped, [*previous.warnings, *warnings])
    return StackRedeployment(deployment, changes)


def redeploy_stacks(
    stacks: Sequence[StackArtifact], previous: Sequence[StackDeployment], clients: ClientFactory, work_dir: Path, warn: Console
) -> tuple[list[StackDeployment], list[AppliedChange]]:
    """Redeploy each stack of a new assembly (in deployment order) over ``previous``: new stacks deployed, known ones
    redeployed (:func:`redeploy_stack`), and stacks no longer in it removed. Returns the deployments and every change."""
    remaining = {d.stack_name: d for d in previous}
    exports: dict[str, Any] = {}
    outputs: dict[str, dict[str, Any]] = {}
    deployments: list[StackDeployment] = []
    changes: list[AppliedChange] = []
    for stack in stacks:
        deployer = StackDeployer(stack, clients=clients, work_dir=work_dir, exports=exports, stack_outputs=outputs, warn=warn)
        old = remaining.pop(stack.stack_name, None)
        if old is None:
            deployment = deployer.deploy()
            changes += [AppliedChange(stack.stack_name, r.logical_id, r.type, "added") for r in deployment.resources.values()]
        else:
            redeployed = redeploy_stack(deployer, old)
            deployment = redeployed.deployment
            changes += redeployed.changes
        exports.update(deployment.exports)
        outputs[deployment.stack_name] = deployment.outputs
        deployments.append(deployment)
    for gone in remaining.values():
        changes += remove_stack(gone, clients)
    return deployments, changes


def remove_stack(previous: StackDeployment, clients: ClientFactory) -> list[AppliedChange]:
    """Delete every resource of a stack the new assembly no longer has, in reverse creation order."""
    return [
        AppliedChange(previous.stack_name, r.logical_id, r.type, "removed", detail=_delete(r, clients))
        for r in reversed(list(previous.resources.values()))
    ]


def _update(
    deployer: StackDeployer,
    context: ResourceContext,
    old: DeployedResource,
    changed: tuple[str, ...],
    record: _Recorder,
    unknown: dict[str, list[str]],
) -> DeployedResource:
    kind = context.type
    if old.placeholder and (kind in RECORDED_TYPES or kind not in RESOURCE_HANDLERS):
        record(context.logical_id, kind, "updated", changed, "recorded only: no local effect")
        return replace(old, properties=context.properties, metadata=context.metadata)
    updater = RESOURCE_UPDATERS.get(kind)
    if updater is None:
        record(context.logical_id, kind, "not applied", changed, _kept(f"local mode cannot update {kind} in place", changed))
        return old
    try:
        updated = updater(context, old, changed)
    except NeedsReplacement as replacing:
        if kind in KEPT_ON_REPLACEMENT:
            record(
                context.logical_id,
                kind,
                "not applied",
                changed,
                f"changing {replacing} replaces it on AWS (its data lost); local mode keeps the old one and its data "
                "(restart agentrail local to recreate it)",
            )
            return old
        gone = _delete(old, deployer.clients)
        try:
            created = deployer.create_in(context, unknown)
        except TemplateError as error:
            record(
                context.logical_id, kind, "not applied", changed, f"removed for a replacement, then not created again: {error}"
            )
            return replace(old, placeholder=True, local={"reason": "replacement failed"})
        record(
            context.logical_id, kind, "replaced", changed, f"changing {replacing} needs a new one" + (f"; {gone}" if gone else "")
        )
        return created
    except NotApplied as reason:
        record(context.logical_id, kind, "not applied", changed, _kept(str(reason), changed))
        return old
    except Exception as error:  # one resource's failure must not stop the rest of the redeploy
        record(context.logical_id, kind, "not applied", changed, _kept(f"{type(error).__name__}: {error}", changed))
        return old
    record(context.logical_id, kind, "updated", changed)
    rest = updated.local.pop("not_applied", None)
    if rest:
        record(context.logical_id, kind, "not applied", tuple(rest), f"{', '.join(rest)} changed, which has no local effect")
    return updated


def _kept(reason: str, changed: tuple[str, ...]) -> str:
    return f"{', '.join(changed)} changed, but {reason}; the old one stays"


def _delete(resource: DeployedResource, clients: ClientFactory) -> str:
    """Delete from moto; returns what stayed behind, in words (empty when nothing did)."""
    if resource.placeholder:
        return ""
    deleter = RESOURCE_DELETERS.get(resource.type)
    if deleter is None:
        return "moto keeps it (local mode does not delete this type)"
    try:
        deleter(resource, clients)
    except Exception as error:  # what moto refuses to delete stays, and is said
        return f"moto kept it ({type(error).__name__}: {error})"
    return ""
