"""Per-type resource handlers of the template reader: each creates one CloudFormation resource type in moto.

Add a type by writing a function that takes a :class:`ResourceContext` and
returns a :class:`DeployedResource`, decorated with ``@resource_handler("AWS::X::Y")``; a redeploy
updates and deletes through :mod:`~agentrail_local.cloudformation.resources.updates`.
"""

from agentrail_local.cloudformation.resources import (
    api_updates,
    apigateway,
    apigatewayv2,
    bedrock,
    compute,
    data,
    messaging,
    scheduler,
    security,
    updates,
    workflows,
)
from agentrail_local.cloudformation.resources.base import (
    NOTICED_TYPES,
    RECORDED_TYPES,
    RESOURCE_HANDLERS,
    DeployedResource,
    ResourceContext,
    TemplateError,
    placeholder,
    record_only,
    resource_handler,
    skip_with_notice,
)

__all__ = [
    "NOTICED_TYPES",
    "RECORDED_TYPES",
    "RESOURCE_HANDLERS",
    "DeployedResource",
    "ResourceContext",
    "TemplateError",
    "api_updates",
    "apigateway",
    "apigatewayv2",
    "bedrock",
    "compute",
    "data",
    "messaging",
    "placeholder",
    "record_only",
    "resource_handler",
    "scheduler",
    "security",
    "skip_with_notice",
    "updates",
    "workflows",
]
