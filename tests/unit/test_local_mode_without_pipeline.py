"""Local mode runs the app's stacks, never the delivery pipeline that deploys them to AWS."""

from __future__ import annotations

from agentrail_cli.local_assembly import local_context
from agentrail_cli.synth import PIPELINE_OFF
from agentrail_constructs.app_config import PIPELINE_OFF as APP_PIPELINE_OFF


def test_local_mode_tells_app_py_to_build_its_stacks_even_when_a_pipeline_is_asked_for():
    # Given `agentrail local -c pipeline=acme/agents` (or a cdk.json that configures the pipeline),
    context = local_context(["pipeline=acme/agents", "patterns=stateless"])

    # then the synth it runs says pipeline=off, the value app.py reads as "the stacks, no pipeline",
    assert context["pipeline"] == PIPELINE_OFF == APP_PIPELINE_OFF
    # and every other setting passes through.
    assert context["patterns"] == "stateless"
