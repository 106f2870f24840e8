"""The delivery pipeline as a deployable stack (``cdk deploy -c pipeline=owner/name ...``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_cdk import Stack, Stage, Tags
from constructs import Construct

from agentrail_constructs.pipeline import AgentPipeline, PipelineOptions


class PipelineStack(Stack):
    """One :class:`AgentPipeline`, tagged ``agentrail:component=pipeline``: it deploys the app's stacks to staging, then
    production.

    Parameters
    ----------
    repository, connection_arn, stage, options:
        As for :class:`AgentPipeline`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repository: str,
        connection_arn: str,
        stage: Callable[[Construct, str], Stage],
        options: PipelineOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, description=f"agentrail: delivery pipeline of {repository}", **kwargs)
        Tags.of(self).add("agentrail:component", "pipeline")
        self.pipeline = AgentPipeline(
            self, "Delivery", repository=repository, connection_arn=connection_arn, stage=stage, options=options
        )
