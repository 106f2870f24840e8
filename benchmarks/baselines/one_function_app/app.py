#!/usr/bin/env python3
"""The synth baseline: a CDK app with one Lambda function whose code asset is the baseline Powertools handler.

Same runtime and architecture as agentrail's functions. It takes no layer: a
Powertools layer referenced by ARN adds no synth work and no local asset.
Synthesized from the repository root, so it shares ``cdk.json``'s feature flags.
"""

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_

BASELINES_DIR = Path(__file__).resolve().parents[1]

app = cdk.App()
stack = cdk.Stack(app, "Baseline-OneFunction")
lambda_.Function(
    stack,
    "Function",
    runtime=lambda_.Runtime.PYTHON_3_13,
    architecture=lambda_.Architecture.ARM_64,
    handler="powertools_handler.handler",
    code=lambda_.Code.from_asset(str(BASELINES_DIR), exclude=["*", "!powertools_handler.py"]),
    memory_size=1024,
    timeout=cdk.Duration.seconds(60),
)
app.synth()
