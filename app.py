#!/usr/bin/env python3
"""The agentrail CDK app: one stack per pattern named in context (``cdk deploy -c patterns=stateless``)."""

import aws_cdk as cdk

try:
    from cdk_nag import AwsSolutionsChecks
except ModuleNotFoundError:
    raise SystemExit("app.py checks every stack with cdk-nag: pip install 'agentrail-aws[nag]'") from None

from agentrail_constructs import PATTERN_STACKS
from agentrail_constructs.app_config import AppConfig

app = cdk.App()
config = AppConfig.from_context(app, tuple(PATTERN_STACKS))
for pattern in config.patterns:
    PATTERN_STACKS[pattern](app, config.stack_name(pattern), **config.stack_options(pattern))
cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
app.synth()
