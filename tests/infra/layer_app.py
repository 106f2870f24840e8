"""A CDK app with one AgentFunction per Lambda architecture, for the layer-bundling tests.

Run like app.py (``CDK_OUTDIR`` and ``CDK_CONTEXT_JSON`` from the caller).
Stacks: ``Layers-arm64`` and ``Layers-x86-64``.
"""

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_

from agentrail_constructs import AgentFunction, AgentFunctionOptions

app = cdk.App()
for architecture in (lambda_.Architecture.ARM_64, lambda_.Architecture.X86_64):
    stack = cdk.Stack(app, f"Layers-{architecture.name.replace('_', '-')}")
    # The function alone (no canary, whose pre-traffic hook would be a second function on the same layers).
    AgentFunction(stack, "Agent", options=AgentFunctionOptions(architecture=architecture, deployment_options=None))
app.synth()
