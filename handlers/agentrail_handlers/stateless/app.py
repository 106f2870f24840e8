"""Stateless agent: API Gateway REST (proxy integration) to the agent loop; the shadow worker's direct invocations
(through the ``shadow`` alias) replay a sampled request on this version, dry-run."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.api.stateless import create_stateless_app
from agentrail_runtime.config import load_settings
from agentrail_runtime.observability import observed
from agentrail_runtime.service import AgentService
from agentrail_runtime.shadow import is_shadow_event
from agentrail_runtime.shadow.candidate import ShadowCandidate

settings = load_settings()
service = AgentService.from_settings(settings)
app = create_stateless_app(service, settings)
candidate = ShadowCandidate(service)


@observed(correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: LambdaContext) -> dict:
    if is_shadow_event(event):
        return candidate(event)
    return app.resolve(event, context)
