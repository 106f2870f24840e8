"""Per-type resource handlers of the template reader: each creates one CloudFormation resource type in moto.

Add a type by writing a function that takes a :class:`ResourceContext` and
returns a :class:`DeployedResource`, decorated with ``@resource_handler("AWS::X::Y")``.
"""

from agentrail_local.cloudformation.resources import apigateway, apigatewayv2, compute, data, messaging, security, workflows
from agentrail_local.cloudformation.resources.base import (
    RECORDED_TYPES,
    RESOURCE_HANDLERS,
    DeployedResource,
    ResourceContext,
    TemplateError,
    placeholder,
    record_only,
    resource_handler,
)

__all__ = [
    "RECORDED_TYPES",
    "RESOURCE_HANDLERS",
    "DeployedResource",
    "ResourceContext",
    "TemplateError",
    "apigateway",
    "apigatewayv2",
    "compute",
    "data",
    "messaging",
    "placeholder",
    "record_only",
    "resource_handler",
    "security",
    "workflows",
]
