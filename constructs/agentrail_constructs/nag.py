"""cdk-nag acknowledgements and checkov skips, always per resource and always with a reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, CfnResource, Stack, Token, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def _require_reason(what: str, reason: str) -> None:
    if len(reason.strip()) < 20:
        raise ValueError(f"{what} needs a real reason, not {reason!r}")


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge AwsSolutions ``rule`` (e.g. ``IAM5[Resource::*]``) on exactly ``construct``.

    Raises
    ------
    ValueError
        When the reason is too short to justify anything.
    """
    _require_reason(f"acknowledging {rule}", reason)
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{PACK}::{PACK}-{rule}", reason=reason))


def skip_checkov(resource: CfnResource, check: str, reason: str) -> None:
    """Skip checkov's ``check`` (e.g. ``CKV_AWS_173``) on exactly ``resource``, as its ``Metadata.checkov.skip``.

    Raises
    ------
    ValueError
        When the reason is too short to justify anything.
    """
    _require_reason(f"skipping {check}", reason)
    skips = [entry for entry in checkov_skips(resource) if entry["id"] != check]
    resource.add_metadata("checkov", {"skip": [*skips, {"id": check, "comment": reason}]})


def unskip_checkov(resource: CfnResource, check: str) -> None:
    """Drop a skip of ``check`` from ``resource``, once what the check asks for is in place."""
    resource.add_metadata("checkov", {"skip": [entry for entry in checkov_skips(resource) if entry["id"] != check]})


def checkov_skips(resource: CfnResource) -> list[dict[str, str]]:
    """The checkov skips written on ``resource`` so far."""
    metadata = resource.get_metadata("checkov") or {}
    return list(metadata.get("skip", []))


def default_resource(construct: IConstruct) -> CfnResource:
    """The CloudFormation resource behind an L2 construct (its node's default child).

    Raises
    ------
    TypeError
        When ``construct`` has no CloudFormation resource as its default child.
    """
    child = construct.node.default_child
    if not isinstance(child, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource as its default child: {child!r}")
    return child


def arn_prefix(scope: IConstruct, service: str) -> str:
    """``arn:<partition>:<service>:<region>:<account>`` as cdk-nag prints it in a finding id.

    cdk-nag shows a pseudo parameter as ``<AWS::Region>`` when the stack is
    environment-agnostic, and the literal value when the CLI knows it.
    """
    stack = Stack.of(scope)

    def shown(value: str, pseudo: str) -> str:
        return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value

    return ":".join(
        ["arn", shown(stack.partition, "Partition"), service, shown(stack.region, "Region"), shown(stack.account, "AccountId")]
    )


def execution_arn_pattern(state_machine: IConstruct) -> str:
    """``<arn_prefix>:execution:<state machine name>`` as cdk-nag prints it: the start of the ARN of every
    execution of ``state_machine``."""
    name = f'{{"Fn::Select":[6,{{"Fn::Split":[":",{{"Ref":"{logical_id(state_machine)}"}}]}}]}}'
    return f"{arn_prefix(state_machine, 'states')}:execution:{name}"


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of a resource (or of an L2's default resource), as cdk-nag names it in findings."""
    element = construct if isinstance(construct, CfnElement) else default_resource(construct)
    stack = Stack.of(construct)
    return stack.resolve(stack.get_logical_id(element))
