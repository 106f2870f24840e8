"""Lambda: functions, versions, aliases, layers and event source mappings."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from agentrail_local.account import ACCOUNT_ID
from agentrail_local.awslambda.definitions import LAYER_KIND_METADATA, FunctionDefinition, LayerSource
from agentrail_local.cloudformation.resources.base import (
    DeployedResource,
    ResourceContext,
    TemplateError,
    pick,
    placeholder,
    record_only,
    resource,
    resource_handler,
    tags_dict,
    zip_folder,
    zip_single_file,
)

#: Larger code folders are registered in moto as a small stand-in zip: moto only stores
#: the bytes, the code runs from the folder, and zipping a 50 MB layer costs seconds.
MAX_ZIPPED_BYTES = 5 * 1024 * 1024

record_only("AWS::Lambda::Permission", "resource policies are not enforced locally")
record_only("AWS::ApplicationAutoScaling::ScalableTarget", "local mode does not scale provisioned concurrency")
record_only("AWS::ApplicationAutoScaling::ScalingPolicy", "local mode does not scale provisioned concurrency")
record_only("AWS::Lambda::EventInvokeConfig", "asynchronous invocation settings are not emulated")


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _code_zip(folder: Path) -> bytes:
    if folder.is_dir() and _folder_size(folder) <= MAX_ZIPPED_BYTES:
        return zip_folder(folder)
    return zip_single_file("AGENTRAIL_LOCAL.txt", f"agentrail local mode runs this code from {folder}\n")


def _code_folder(context: ResourceContext, code: dict[str, Any], runtime: str) -> Path | None:
    if "S3Key" in code:
        return context.asset(str(code["S3Key"]))
    if "ZipFile" in code:
        # Inline code: Lambda stores it as index.py (Python) or index.js (Node.js).
        folder = context.work_dir / "inline" / context.stack_name / context.logical_id
        folder.mkdir(parents=True, exist_ok=True)
        filename = "index.py" if runtime.startswith("python") else "index.js"
        (folder / filename).write_text(str(code["ZipFile"]))
        return folder
    return None


@resource_handler("AWS::Lambda::LayerVersion")
def layer_version(context: ResourceContext) -> DeployedResource:
    p = context.properties
    folder = context.asset(str(p["Content"]["S3Key"])) if "S3Key" in p.get("Content", {}) else None
    kind = context.metadata.get(LAYER_KIND_METADATA)
    name = p.get("LayerName") or context.physical_name(64)
    created = context.clients("lambda").publish_layer_version(
        LayerName=name,
        Content={"ZipFile": _code_zip(folder) if folder else zip_single_file("AGENTRAIL_LOCAL.txt", "empty\n")},
        **pick(p, "Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"),
    )
    arn = created["LayerVersionArn"]
    deployed = resource(context, arn, arn, LayerVersionArn=arn)
    deployed.local["layer"] = LayerSource(arn=arn, path=folder, kind=kind)
    return deployed


@resource_handler("AWS::Lambda::Function")
def function(context: ResourceContext) -> DeployedResource:
    p = context.properties
    if "ImageUri" in p.get("Code", {}):
        context.warn(f"{context.logical_id}: container image functions cannot run without Docker; it is skipped")
        return placeholder(context, reason="container image")
    runtime = str(p.get("Runtime", ""))
    name = context.name("FunctionName", 64)
    code_dir = _code_folder(context, p.get("Code", {}), runtime)
    if code_dir is None:
        raise TemplateError(f"{context.logical_id}: Code needs S3Key or ZipFile")
    layers: list[LayerSource] = []
    known_layer_arns: list[str] = []
    for arn in p.get("Layers", ()):
        owner = context.resource_with_ref(arn)
        if owner is not None and "layer" in owner.local:
            layers.append(owner.local["layer"])
            known_layer_arns.append(arn)
        else:
            context.warn(
                f"{context.logical_id}: layer {arn} is not in the assembly; its packages must come from the local environment"
            )
            layers.append(LayerSource(arn=arn, path=None))
    environment = {k: str(v) for k, v in p.get("Environment", {}).get("Variables", {}).items()}
    logging_config = p.get("LoggingConfig", {})
    log_group = str(logging_config.get("LogGroup") or f"/aws/lambda/{name}")
    timeout = float(p.get("Timeout", 3))
    memory = int(p.get("MemorySize", 128))
    reserved = p.get("ReservedConcurrentExecutions")
    _ensure_role(context, str(p["Role"]))
    client = context.clients("lambda")
    created = client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=p["Role"],
        Handler=str(p.get("Handler", "")),
        Code={"ZipFile": _code_zip(code_dir)},
        Timeout=int(timeout),
        MemorySize=memory,
        Layers=known_layer_arns,
        Environment={"Variables": environment},
        Tags=tags_dict(p.get("Tags")),
        **pick(p, "Description", "Architectures", "TracingConfig", "LoggingConfig", "EphemeralStorage", "KmsKeyArn"),
    )
    if reserved is not None:
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=int(reserved))
    arn = created["FunctionArn"]
    deployed = resource(context, name, name, Arn=arn)
    deployed.local["function"] = FunctionDefinition(
        stack_name=context.stack_name,
        logical_id=context.logical_id,
        name=name,
        arn=arn,
        handler=str(p.get("Handler", "")),
        runtime=runtime,
        code_dir=code_dir,
        environment=environment,
        memory_size=memory,
        timeout_seconds=timeout,
        reserved_concurrency=None if reserved is None else int(reserved),
        layers=tuple(layers),
        log_group=log_group,
        application_log_level=logging_config.get("ApplicationLogLevel"),
        log_format=logging_config.get("LogFormat"),
        architecture=str((p.get("Architectures") or ["x86_64"])[0]),
    )
    return deployed


def _ensure_role(context: ResourceContext, role_arn: str) -> None:
    # moto refuses a function whose role it does not know; a role imported by ARN
    # (not created by this assembly) gets a stand-in with Lambda's trust policy.
    if context.resource_with_ref(role_arn) is not None or f":{ACCOUNT_ID}:role/" not in role_arn:
        return
    iam = context.clients("iam")
    name = role_arn.rsplit("/", 1)[-1]
    try:
        iam.get_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
        }
        path = "/" + role_arn.split(":role/", 1)[1].rsplit("/", 1)[0] + "/" if role_arn.count("/") > 1 else "/"
        iam.create_role(RoleName=name, Path=path.replace("//", "/"), AssumeRolePolicyDocument=json.dumps(trust))


def _function_name(value: str) -> str:
    # FunctionName may be a name, an ARN or a partial ARN.
    return value.split(":")[6] if value.startswith("arn:") else value.split(":")[0]


@resource_handler("AWS::Lambda::Version")
def version(context: ResourceContext) -> DeployedResource:
    p = context.properties
    name = _function_name(str(p["FunctionName"]))
    published = context.clients("lambda").publish_version(FunctionName=name, **pick(p, "Description"))
    arn = published["FunctionArn"]
    deployed = resource(context, arn, arn, Version=published["Version"], FunctionArn=arn)
    deployed.local.update(function_name=name, version=published["Version"])
    return deployed


def routing_weights(properties: dict[str, Any]) -> dict[str, float]:
    """An alias's ``RoutingConfig.AdditionalVersionWeights`` as ``{version: weight}`` (empty without one)."""
    weights = (properties.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or []
    return {str(w["FunctionVersion"]): float(w["FunctionWeight"]) for w in weights}


@resource_handler("AWS::Lambda::Alias")
def alias(context: ResourceContext) -> DeployedResource:
    p = context.properties
    name = _function_name(str(p["FunctionName"]))
    extra: dict[str, Any] = pick(p, "Description")
    weights = routing_weights(p)
    if weights:
        extra["RoutingConfig"] = {"AdditionalVersionWeights": weights}
    created = context.clients("lambda").create_alias(
        FunctionName=name, Name=p["Name"], FunctionVersion=str(p["FunctionVersion"]), **extra
    )
    arn = created["AliasArn"]
    deployed = resource(context, arn, arn, AliasArn=arn)
    deployed.local.update(function_name=name, alias=p["Name"], version=str(p["FunctionVersion"]), weights=routing_weights(p))
    return deployed


@resource_handler("AWS::Lambda::EventSourceMapping")
def event_source_mapping(context: ResourceContext) -> DeployedResource:
    # Recorded, not created in moto: moto's SQS trigger invokes on send_message
    # and deletes the message even when the function reports it failed, so local
    # mode polls sources itself, honouring visibility timeouts and redrive.
    mapping_id = str(uuid.uuid4())
    arn = context.arn("lambda", f"event-source-mapping:{mapping_id}")
    deployed = resource(context, mapping_id, mapping_id, Id=mapping_id, EventSourceMappingArn=arn)
    deployed.local["mapping"] = dict(context.properties)
    return deployed


#: The zip registered in moto for a code folder (also when a redeploy updates a function's code).
code_zip = _code_zip

__all__ = ["code_zip"]
