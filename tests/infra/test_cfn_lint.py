"""cfn-lint on every pattern template of the real app: no error, no warning.

cfn-lint does not look inside Step Functions definitions that are intrinsic
functions (what CDK emits); those are exercised by running them under moto.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.api import lint

from agentrail_constructs import PATTERN_STACKS
from tests.infra.conftest import PIPELINE_STACK_NAME

REGIONS = ["us-east-1", "eu-west-1"]


@pytest.mark.parametrize("pattern", sorted(PATTERN_STACKS))
def test_pattern_template_passes_cfn_lint(real_app: Any, pattern: str) -> None:
    template = real_app.template_path(real_app.pattern_stack_name(pattern)).read_text()

    matches = lint(template, regions=REGIONS)

    assert [f"{m.rule.id} {'/'.join(map(str, m.path))}: {m.message}" for m in matches] == []


def test_app_variant_templates_pass_cfn_lint(real_app_variants: Any) -> None:
    # e.g. stateful with -c session_concurrency=enqueue: a FIFO queue, its worker and their mapping.
    found = {}
    for variant, (pattern, assembly) in real_app_variants.items():
        template = assembly.template_path(assembly.pattern_stack_name(pattern)).read_text()
        found[variant] = [f"{m.rule.id} {'/'.join(map(str, m.path))}: {m.message}" for m in lint(template, regions=REGIONS)]

    assert found and found == {variant: [] for variant in real_app_variants}


def test_cfn_lint_reports_what_it_finds(real_app: Any) -> None:
    # Given a real template with one property made invalid, cfn-lint must say so: proof the lint above is not vacuous.
    template = real_app.template(real_app.pattern_stack_name("stateless"))
    function = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
    function["Properties"]["MemorySize"] = 64

    matches = lint(json.dumps(template), regions=REGIONS)

    assert any("MemorySize" in "/".join(map(str, m.path)) for m in matches)


@pytest.mark.parametrize("pattern", sorted(PATTERN_STACKS))
def test_hardened_pattern_template_passes_cfn_lint(real_app_hardened: Any, pattern: str) -> None:
    template = real_app_hardened.template_path(real_app_hardened.pattern_stack_name(pattern)).read_text()

    matches = lint(template, regions=REGIONS)

    assert [f"{m.rule.id} {'/'.join(map(str, m.path))}: {m.message}" for m in matches] == []


@pytest.mark.parametrize("pattern", sorted(PATTERN_STACKS))
def test_http_api_pattern_template_passes_cfn_lint(real_app_http: Any, pattern: str) -> None:
    template = real_app_http.template_path(real_app_http.pattern_stack_name(pattern)).read_text()

    matches = lint(template, regions=REGIONS)

    assert "AWS::ApiGatewayV2::Api" in template
    assert [f"{m.rule.id} {'/'.join(map(str, m.path))}: {m.message}" for m in matches] == []


def test_the_pipeline_template_passes_cfn_lint(real_app_pipeline: Any) -> None:
    template = real_app_pipeline.template_path(PIPELINE_STACK_NAME).read_text()

    matches = lint(template, regions=REGIONS)

    assert "AWS::CodePipeline::Pipeline" in template
    assert [f"{m.rule.id} {'/'.join(map(str, m.path))}: {m.message}" for m in matches] == []
