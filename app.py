#!/usr/bin/env python3
"""The agentrail CDK app: one stack per pattern named in context (``cdk deploy -c patterns=stateless``), or, with
``-c pipeline=owner/name``, one pipeline stack that deploys those stacks to staging, then production."""

import aws_cdk as cdk

try:
    from cdk_nag import AwsSolutionsChecks
except ModuleNotFoundError:
    raise SystemExit("app.py checks every stack with cdk-nag: pip install 'agentrail-aws[nag]'") from None

from agentrail_constructs import PATTERN_STACKS, PipelineStack
from agentrail_constructs.app_config import AppConfig

app = cdk.App()
config = AppConfig.from_context(app, tuple(PATTERN_STACKS))
if config.pipeline is None:
    config.add_stacks(app)
else:
    PipelineStack(
        app,
        config.pipeline_stack_name,
        repository=config.pipeline.repository,
        connection_arn=config.pipeline.connection_arn,
        stage=config.stage,
        options=config.pipeline.options,
        env=config.env,
    )
cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
app.synth()
