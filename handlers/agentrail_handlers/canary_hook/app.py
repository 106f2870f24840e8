"""CodeDeploy pre-traffic hook of an agent function's ``live`` alias (see ``agentrail_runtime.evals.canary``)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime import aws
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.evals.canary import PreTrafficHook, PreTrafficHookSettings
from agentrail_runtime.observability import logger, metrics, observed

settings = PreTrafficHookSettings()  # type: ignore[call-arg]
hook = PreTrafficHook(
    codedeploy=aws.client("codedeploy"),
    lambda_client=aws.client("lambda"),
    metrics=metrics,
    datasets_dir=settings.canary_evals_dir,
    settings=RuntimeSettings(),
    agent_version=settings.version,
    min_score=settings.canary_min_eval_score,
)


@observed()
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = hook(event)
    logger.info("pre-traffic hook", extra={"status": outcome.status, "reason": outcome.reason, "score": outcome.score})
    return {"status": outcome.status, "reason": outcome.reason, "score": outcome.score}
