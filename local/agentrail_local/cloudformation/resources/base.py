"""What a resource handler is given and what it returns, and the registry that maps resource types to handlers."""

from __future__ import annotations

import json
import secrets
import string
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agentrail_local.account import ACCOUNT_ID, PARTITION, REGION
from agentrail_local.console import Console

if TYPE_CHECKING:
    from agentrail_local.cloudformation.assembly import StackArtifact

_NAME_ALPHABET = string.ascii_uppercase + string.digits


class TemplateError(ValueError):
    """The template uses something local mode cannot deploy; the message names the resource and the fix."""


class ClientFactory(Protocol):
    def __call__(self, service: str) -> Any: ...


@dataclass
class DeployedResource:
    """One resource as deployed: what ``Ref`` and ``Fn::GetAtt`` return, and its resolved properties.

    Attributes
    ----------
    ref:
        The value of ``{"Ref": logical_id}`` (a name, URL, ARN or id, as CloudFormation documents per type).
    attributes:
        ``Fn::GetAtt`` values by attribute name.
    local:
        What local mode needs later (a function's code folder, an API key's value, ...).
    placeholder:
        True when nothing was created (a type local mode skips); ids and ARNs are made up so references resolve.
    """

    logical_id: str
    type: str
    physical_id: str
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    local: dict[str, Any] = field(default_factory=dict)
    placeholder: bool = False

    def get_att(self, name: str) -> Any:
        if name in self.attributes:
            return self.attributes[name]
        return None


@dataclass
class ResourceContext:
    """Everything a handler may use to create one resource.

    ``properties`` are already resolved: no intrinsic functions remain.
    """

    stack: StackArtifact
    logical_id: str
    type: str
    properties: dict[str, Any]
    metadata: dict[str, Any]
    clients: ClientFactory
    work_dir: Path
    resources: Mapping[str, DeployedResource]
    warn: Console

    @property
    def stack_name(self) -> str:
        return self.stack.stack_name

    def physical_name(self, max_length: int = 128, *, lowercase: bool = False, suffix: str = "", separator: str = "-") -> str:
        """A name the way CloudFormation makes one: ``<stack>-<LogicalId>-<RANDOM>``, cut to ``max_length``."""
        random_part = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(12))
        budget = max_length - len(random_part) - len(suffix) - 2 * len(separator)
        stack, logical = self.stack_name, self.logical_id
        if len(stack) + len(logical) > budget:
            stack = stack[: max(budget // 2, budget - len(logical))]
            logical = logical[: budget - len(stack)]
        name = f"{stack}{separator}{logical}{separator}{random_part}{suffix}"
        return name.lower() if lowercase else name

    def name(self, prop: str, max_length: int, *, lowercase: bool = False, suffix: str = "") -> str:
        """The explicit name property if the template sets one, else a generated physical name."""
        explicit = self.properties.get(prop)
        if explicit:
            return str(explicit)
        return self.physical_name(max_length - len(suffix), lowercase=lowercase) + suffix

    def arn(self, service: str, resource: str, *, region: str | None = REGION, account: str | None = ACCOUNT_ID) -> str:
        return f"arn:{PARTITION}:{service}:{region or ''}:{account or ''}:{resource}"

    def asset(self, object_key: str) -> Path:
        """The folder holding the asset uploaded under ``object_key``, extracting a zip file asset once."""
        source = self.stack.asset_path(object_key)
        if source.is_dir():
            return source
        if source.suffix == ".zip":
            target = self.work_dir / "assets" / object_key.removesuffix(".zip")
            if not target.is_dir():
                with zipfile.ZipFile(source) as archive:
                    archive.extractall(target)
            return target
        return source

    def resource_with_ref(self, value: Any) -> DeployedResource | None:
        """The deployed resource whose ``Ref`` (or ``Arn``) is ``value``, if any."""
        for resource in self.resources.values():
            if value in (resource.ref, resource.attributes.get("Arn")):
                return resource
        return None


Handler = Callable[[ResourceContext], DeployedResource]
RESOURCE_HANDLERS: dict[str, Handler] = {}
#: Types that exist only for the cloud's control plane; local mode records them without a warning.
RECORDED_TYPES: dict[str, str] = {}
#: Types local mode skips on purpose and says so once per stack on its console: type -> (one, several, why).
NOTICED_TYPES: dict[str, tuple[str, str, str]] = {}


def resource_handler(*types: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``types``."""

    def register(handler: Handler) -> Handler:
        for resource_type in types:
            RESOURCE_HANDLERS[resource_type] = handler
        return handler

    return register


class NeedsReplacement(Exception):
    """An update that CloudFormation makes by replacing the resource; the message names the properties."""


class NotApplied(Exception):
    """An update local mode cannot make; the message says what stays as it was."""


#: ``(context with the new properties, the resource as deployed, the top-level properties that differ)``.
Updater = Callable[[ResourceContext, DeployedResource, tuple[str, ...]], DeployedResource]
Deleter = Callable[[DeployedResource, ClientFactory], None]
RESOURCE_UPDATERS: dict[str, Updater] = {}
RESOURCE_DELETERS: dict[str, Deleter] = {}


def resource_updater(*types: str) -> Callable[[Updater], Updater]:
    """Register the decorated function as the in-place updater of ``types`` (it may raise
    :class:`NeedsReplacement` or :class:`NotApplied`)."""

    def register(updater: Updater) -> Updater:
        for resource_type in types:
            RESOURCE_UPDATERS[resource_type] = updater
        return updater

    return register


def resource_deleter(*types: str) -> Callable[[Deleter], Deleter]:
    """Register the decorated function as the deleter of ``types``."""

    def register(deleter: Deleter) -> Deleter:
        for resource_type in types:
            RESOURCE_DELETERS[resource_type] = deleter
        return deleter

    return register


def record_only(resource_type: str, reason: str) -> None:
    """Declare that ``resource_type`` has no local effect, and why; it gets a placeholder id silently."""
    RECORDED_TYPES[resource_type] = reason


def skip_with_notice(resource_type: str, one: str, several: str, reason: str) -> None:
    """Declare that ``resource_type`` is skipped locally (a placeholder id) and that a developer should be told:
    ``StackDeployment.notices`` lists every resource of it, with ``reason``. A notice, not a warning: nothing the
    developer wrote is wrong, local mode just has nothing to run it on."""
    RECORDED_TYPES[resource_type] = reason
    NOTICED_TYPES[resource_type] = (one, several, reason)


def placeholder(context: ResourceContext, *, reason: str | None = None) -> DeployedResource:
    """A resource that was not created: made-up physical id and ARN so that references still resolve."""
    physical_id = context.physical_name(128)
    service, _, kind = context.type.removeprefix("AWS::").partition("::")
    arn = context.arn(service.lower(), f"{kind.lower()}/{physical_id}")
    return DeployedResource(
        logical_id=context.logical_id,
        type=context.type,
        physical_id=physical_id,
        ref=physical_id,
        attributes={"Arn": arn, "Id": physical_id, "Name": physical_id},
        properties=context.properties,
        metadata=context.metadata,
        local={"reason": reason} if reason else {},
        placeholder=True,
    )


def resource(context: ResourceContext, physical_id: str, ref: Any, **attributes: Any) -> DeployedResource:
    """The common shape of a created resource."""
    return DeployedResource(
        logical_id=context.logical_id,
        type=context.type,
        physical_id=physical_id,
        ref=ref,
        attributes=attributes,
        properties=context.properties,
        metadata=context.metadata,
    )


def resource_with_generated_id(context: ResourceContext) -> DeployedResource:
    """A created resource that has no id of its own (a policy, a method): a generated name is its physical id and ``Ref``."""
    physical_id = context.physical_name(128)
    return resource(context, physical_id, physical_id)


def json_text(value: Any) -> str:
    """A policy or document property as the JSON text the APIs take (templates may give an object or a string)."""
    return value if isinstance(value, str) else json.dumps(value)


def tags_dict(tags: Any) -> dict[str, str]:
    """CloudFormation's ``[{Key, Value}]`` (or a plain mapping) as a dict."""
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t["Key"]): str(t["Value"]) for t in tags or ()}


def tags_list(tags: Any, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in tags_dict(tags).items()]


def zip_folder(folder: Path) -> bytes:
    """The folder as zip bytes, the way an asset is uploaded."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def zip_single_file(name: str, content: str) -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


def pick(properties: Mapping[str, Any], *names: str, rename: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The given properties that are set, optionally renamed to the API's parameter names."""
    rename = rename or {}
    return {rename.get(n, n): properties[n] for n in names if properties.get(n) is not None}


__all__ = [
    "NOTICED_TYPES",
    "RECORDED_TYPES",
    "RESOURCE_DELETERS",
    "RESOURCE_HANDLERS",
    "RESOURCE_UPDATERS",
    "ClientFactory",
    "Deleter",
    "DeployedResource",
    "NeedsReplacement",
    "NotApplied",
    "ResourceContext",
    "TemplateError",
    "Updater",
    "json_text",
    "pick",
    "placeholder",
    "record_only",
    "resource",
    "resource_deleter",
    "resource_handler",
    "resource_updater",
    "resource_with_generated_id",
    "skip_with_notice",
    "tags_dict",
    "tags_list",
    "zip_folder",
    "zip_single_file",
]
