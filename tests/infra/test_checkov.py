"""checkov (pinned in tests/infra/checkov, a venv of its own) over every pattern stack of the real app.

Every failed check is fixed or skipped on its resource (``Metadata.checkov.skip``) with a reason. The checks
that may be skipped at all are listed below with what makes each skip true, so a new kind of skip changes
this file and is seen in review.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms

from agentrail_constructs import (
    PATTERN_STACKS,
    AgentFunction,
    AgentFunctionOptions,
    ApprovalOptions,
    AsyncAgent,
    LongTaskWorkflowOptions,
    SessionOptions,
    SessionTableOptions,
    ShadowOptions,
    StatefulAgent,
    TaskTableOptions,
)
from tests.infra.conftest import PIPELINE_STACK_NAME

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKOV = REPO_ROOT / ".checkov" / "bin" / "checkov"
MIN_REASON_CHARS = 40

#: Checks skipped on some resource, and why that is right for agentrail's defaults (the reason on each resource says more).
SKIPPABLE = {
    "CKV_AWS_18": "S3 access logs: the results and offload buckets are reached only through the API, which logs every request",
    "CKV_AWS_21": "S3 versioning: derived data that retention and erasure must remove",
    "CKV_AWS_59": "an open API method: only a route whose function authenticates the caller itself (signed webhooks)",
    "CKV_AWS_26": "SNS alarm topic: CloudWatch cannot publish under the AWS managed key; the hardened profile encrypts it",
    "CKV_AWS_27": "SQS: SSE-SQS (SqsManagedSseEnabled) is encryption this check does not recognize",
    "CKV_AWS_115": "Lambda reserved concurrency: opt-in, a default reservation fails deploys in new accounts",
    "CKV_AWS_116": "Lambda DLQ: nothing invokes the function asynchronously (see the test below: an async target has one)",
    "CKV_AWS_117": "Lambda in a VPC: the functions call only AWS APIs and the model provider",
    "CKV_AWS_119": "DynamoDB CMK: AWS managed key unless an encryption_key is given",
    "CKV_AWS_120": "API caching: answers are per caller",
    "CKV_AWS_149": "Secrets Manager CMK: AWS managed key unless an encryption_key is given",
    "CKV_AWS_158": "Log group CMK: CloudWatch Logs' own encryption unless an encryption_key is given",
    "CKV_AWS_173": "Lambda environment CMK: the environment holds only names, ARNs and settings",
}


def run_checkov(templates: list[Path]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """checkov over ``templates`` offline: template file name -> {"passed" | "failed" | "skipped": checks}."""
    assert CHECKOV.is_file(), "checkov is missing: run `make .checkov/.installed` (make test-infra does)"
    command = [str(CHECKOV), "--framework", "cloudformation", "--skip-download", "--compact", "-o", "json"]
    for template in templates:
        command += ["-f", str(template)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode in (0, 1), f"checkov did not run (exit {result.returncode}):\n{result.stderr[-4000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    found: dict[str, dict[str, list[dict[str, Any]]]] = {
        template.name: {"passed": [], "failed": [], "skipped": []} for template in templates
    }
    for part in reports:
        assert part["summary"]["parsing_errors"] == 0, part["summary"]
        for outcome in ("passed", "failed", "skipped"):
            for check in part["results"][f"{outcome}_checks"]:
                found[Path(check["file_path"]).name][outcome].append(check)
    return found


@pytest.fixture(scope="module")
def checkov_results(real_app: Any) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """checkov's outcome per pattern stack of the real app (every pattern, layers bundled)."""
    names = {pattern: real_app.pattern_stack_name(pattern) for pattern in PATTERN_STACKS}
    results = run_checkov([real_app.template_path(name) for name in names.values()])
    for pattern, name in names.items():
        counts = " ".join(f"{o}={len(results[f'{name}.template.json'][o])}" for o in ("passed", "failed", "skipped"))
        print(f"\ncheckov {pattern}: {counts}", end="")
    return {pattern: results[f"{name}.template.json"] for pattern, name in names.items()}


def _describe(checks: list[dict[str, Any]]) -> str:
    return "\n".join(f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in checks)


@pytest.mark.parametrize("pattern", list(PATTERN_STACKS))
def test_every_pattern_stack_has_no_failed_checkov_check(checkov_results: dict[str, Any], pattern: str) -> None:
    # Given the real app's pattern stack, when checkov scans its template,
    failed = checkov_results[pattern]["failed"]
    # then nothing fails: each finding is fixed, or skipped on its resource with a reason.
    assert not failed, f"{len(failed)} failed checkov checks on {pattern}:\n{_describe(failed)}"
    assert checkov_results[pattern]["passed"], "checkov passed nothing: did it scan the template at all?"


@pytest.mark.parametrize("pattern", list(PATTERN_STACKS))
def test_every_checkov_skip_is_a_listed_check_with_a_reason(checkov_results: dict[str, Any], pattern: str) -> None:
    skipped = checkov_results[pattern]["skipped"]
    # Given checkov's skipped checks on the pattern stack, then each is a check listed here
    unlisted = [check for check in skipped if check["check_id"] not in SKIPPABLE]
    assert not unlisted, f"skips not listed in SKIPPABLE:\n{_describe(unlisted)}"
    # and each says why on its resource.
    unreasoned = [
        check for check in skipped if len((check["check_result"].get("suppress_comment") or "").strip()) < MIN_REASON_CHARS
    ]
    assert not unreasoned, f"skips without a real reason:\n{_describe(unreasoned)}"


#: Service principals that invoke a function asynchronously (Lambda's own queue, retries, then a DLQ or nothing).
ASYNC_INVOKERS = {"events.amazonaws.com", "scheduler.amazonaws.com", "sns.amazonaws.com", "s3.amazonaws.com"}


def _functions_invoked_asynchronously(resources: dict[str, Any]) -> set[str]:
    """Logical ids of the functions an asynchronous invoker may call: an EventInvokeConfig, or a permission for an
    asynchronous service on the function or one of its aliases."""
    aliases = {
        name: r["Properties"]["FunctionName"]["Ref"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::Alias" and "Ref" in r["Properties"]["FunctionName"]
    }

    def function_of(reference: Any) -> str | None:
        target = reference.get("Ref") or (reference.get("Fn::GetAtt") or [None])[0] if isinstance(reference, dict) else None
        return aliases.get(target, target) if target else None

    invoked = set()
    for resource in resources.values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::EventInvokeConfig" or (
            resource["Type"] == "AWS::Lambda::Permission" and properties.get("Principal") in ASYNC_INVOKERS
        ):
            invoked.add(function_of(properties["FunctionName"]))
    return {name for name in invoked if name and resources.get(name, {}).get("Type") == "AWS::Lambda::Function"}


@pytest.mark.parametrize("pattern", list(PATTERN_STACKS))
def test_only_functions_nothing_invokes_asynchronously_skip_the_dead_letter_queue_check(real_app: Any, pattern: str) -> None:
    # Given the real app's pattern stack,
    resources = real_app.template(real_app.pattern_stack_name(pattern))["Resources"]
    functions = {name: r for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    asynchronous = _functions_invoked_asynchronously(resources)
    skipping = {
        name
        for name, r in functions.items()
        if any(s["id"] == "CKV_AWS_116" for s in r.get("Metadata", {}).get("checkov", {}).get("skip", []))
    }
    # then every function an asynchronous invoker calls has a dead-letter queue and no skip of CKV_AWS_116,
    assert not asynchronous & skipping
    assert all("DeadLetterConfig" in functions[name]["Properties"] for name in asynchronous)
    # and every other function skips it (its reason says that nothing invokes it asynchronously).
    assert skipping == set(functions) - asynchronous


#: checkov's checks of encryption at rest with a customer managed key, on the resources agentrail creates.
ENCRYPTION_CHECKS = {"CKV_AWS_26", "CKV_AWS_27", "CKV_AWS_119", "CKV_AWS_149", "CKV_AWS_158"}
#: What the hardened profile may never skip: every encryption check (with the Lambda environment's and the S3
#: KMS check's), and Lambda in a VPC.
HARDENED_NEVER_SKIPPED = {*ENCRYPTION_CHECKS, "CKV_AWS_173", "CKV_AWS_145", "CKV_AWS_19", "CKV_AWS_117"}


@pytest.fixture(scope="module")
def hardened_checkov_results(real_app_hardened: Any, hardened_stacks: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """checkov's outcome per pattern stack of the real app under ``-c security=hardened`` (webhooks off), and of the
    async stack with ``egress="nat"`` and webhooks on (synthesized in process)."""
    names = {pattern: real_app_hardened.pattern_stack_name(pattern) for pattern in PATTERN_STACKS}
    nat = hardened_stacks["async-nat"].stack
    nat_template = Path(nat.node.root.outdir) / nat.template_file
    nat.node.root.synth()
    results = run_checkov([*(real_app_hardened.template_path(name) for name in names.values()), nat_template])
    found = {pattern: results[f"{name}.template.json"] for pattern, name in names.items()}
    found["async-nat"] = results[nat_template.name]
    for variant, outcome in found.items():
        counts = " ".join(f"{o}={len(outcome[o])}" for o in ("passed", "failed", "skipped"))
        print(f"\ncheckov hardened {variant}: {counts}", end="")
    return found


HARDENED = [*PATTERN_STACKS, "async-nat"]


@pytest.mark.parametrize("variant", HARDENED)
def test_every_hardened_stack_has_no_failed_checkov_check(hardened_checkov_results: dict[str, Any], variant: str) -> None:
    failed = hardened_checkov_results[variant]["failed"]

    assert not failed, f"{len(failed)} failed checkov checks on hardened {variant}:\n{_describe(failed)}"
    assert hardened_checkov_results[variant]["passed"]


@pytest.mark.parametrize("variant", HARDENED)
def test_a_hardened_stack_skips_no_encryption_or_vpc_check_and_access_logs_only_on_their_destination(
    hardened_checkov_results: dict[str, Any], variant: str
) -> None:
    # Given checkov's skips on a hardened stack,
    skipped = hardened_checkov_results[variant]["skipped"]
    # then no encryption check and no VPC check is skipped anywhere,
    forbidden = [c for c in skipped if c["check_id"] in HARDENED_NEVER_SKIPPED]
    assert not forbidden, _describe(forbidden)
    # and access logging only on the bucket that receives the access logs (logging it would log each delivery).
    access_logs = [c["resource"] for c in skipped if c["check_id"] == "CKV_AWS_18"]
    assert all(resource.startswith("AWS::S3::Bucket.SecurityAccessLogs") for resource in access_logs), access_logs
    # The stateless and ASGI stacks hold no bucket (no table, no queue of their own): none there.
    with_buckets = variant not in ("stateless", "asgi")
    assert len(access_logs) == with_buckets, "one access-log bucket in a stack with buckets, none without"
    unlisted = [c for c in skipped if c["check_id"] not in SKIPPABLE]
    assert not unlisted, _describe(unlisted)


def test_given_a_customer_managed_key_no_encryption_check_is_skipped_or_failed(
    app_factory: Callable[..., cdk.App], stack_env: cdk.Environment
) -> None:
    # Given an async agent (queues, workflows, approvals with a webhook secret) and a stateful agent,
    # each told a customer managed key for its data,
    app = app_factory()
    stack = cdk.Stack(app, "Keyed", env=stack_env)
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    AsyncAgent(
        stack,
        "Tasks",
        task_table_options=TaskTableOptions(encryption_key=key),
        long_task_options=LongTaskWorkflowOptions(),
        approval_options=ApprovalOptions(webhook_groups=("approvers",)),
    )
    StatefulAgent(
        stack,
        "Chat",
        session_table_options=SessionTableOptions(encryption_key=key),
        session_options=SessionOptions(concurrency="enqueue"),
    )
    # and an agent in shadow whose logs use it (its shadow queues, comparison table and worker's logs follow),
    AgentFunction(
        stack,
        "Shadowed",
        options=AgentFunctionOptions(deployment_options=None, log_encryption_key=key, shadow_options=ShadowOptions(percent=10)),
    )
    assembly = app.synth()
    # when checkov scans the template,
    template = Path(assembly.directory) / stack.template_file
    results = run_checkov([template])[template.name]
    # then no encryption check fails or is skipped: tables, queues, secrets and every log group use the key.
    concerned = [c for outcome in ("failed", "skipped") for c in results[outcome] if c["check_id"] in ENCRYPTION_CHECKS]
    assert not concerned, _describe(concerned)
    assert not results["failed"], _describe(results["failed"])


# -- every pattern behind an HTTP API (-c api=http) ----------------------------------------------------------


@pytest.fixture(scope="module")
def http_checkov_results(real_app_http: Any) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """checkov's outcome per pattern stack of the real app under ``-c api=http``."""
    names = {pattern: real_app_http.pattern_stack_name(pattern) for pattern in PATTERN_STACKS}
    results = run_checkov([real_app_http.template_path(name) for name in names.values()])
    return {pattern: results[f"{name}.template.json"] for pattern, name in names.items()}


@pytest.mark.parametrize("pattern", list(PATTERN_STACKS))
def test_every_http_api_stack_has_no_failed_checkov_check_and_its_stage_logs_access(
    http_checkov_results: dict[str, Any], pattern: str
) -> None:
    outcome = http_checkov_results[pattern]

    assert not outcome["failed"], f"failed checkov checks on {pattern} (HTTP API):\n{_describe(outcome['failed'])}"
    # CKV_AWS_95: the HTTP API stage's access logging, checked and passed.
    assert any(c["check_id"] == "CKV_AWS_95" and "ApiGatewayV2::Stage" in c["resource"] for c in outcome["passed"])
    unlisted = [check for check in outcome["skipped"] if check["check_id"] not in SKIPPABLE]
    assert not unlisted, f"skips not listed in SKIPPABLE:\n{_describe(unlisted)}"


# -- the delivery pipeline (-c pipeline=owner/name) ------------------------------------------------------------------

#: What the pipeline stack may skip, and why (the reason on each resource says more).
PIPELINE_SKIPPABLE = {
    "CKV_AWS_18": "artifact bucket access logs: only the pipeline's roles write it, and CloudTrail records their calls",
    "CKV_AWS_21": "artifact bucket versioning: artifacts are per execution and rebuilt from the source",
    "CKV_AWS_111": "the asset-publishing role runs the asset projects CDK Pipelines generates (names unknown to the policy)",
    "CKV_AWS_158": "build log CMK: CloudWatch Logs' own encryption; the logs hold test and synth output",
}


def test_the_pipeline_stack_has_no_failed_checkov_check_and_skips_only_listed_checks_with_reasons(
    real_app_pipeline: Any,
) -> None:
    template = real_app_pipeline.template_path(PIPELINE_STACK_NAME)

    outcome = run_checkov([template])[template.name]

    assert not outcome["failed"], _describe(outcome["failed"])
    assert outcome["passed"]
    unlisted = [c for c in outcome["skipped"] if c["check_id"] not in PIPELINE_SKIPPABLE]
    assert not unlisted, _describe(unlisted)
    unreasoned = [
        c for c in outcome["skipped"] if len((c["check_result"].get("suppress_comment") or "").strip()) < MIN_REASON_CHARS
    ]
    assert not unreasoned, _describe(unreasoned)


# -- shadow deployment (-c shadow_percent=10) ----------------------------------------------------------------


def test_the_shadow_variant_has_no_failed_checkov_check_and_skips_only_listed_checks(real_app_variants: dict[str, Any]) -> None:
    # Given the stateless stack with shadow on (its queue, dead-letter queue, worker and comparison table),
    _, assembly = real_app_variants["stateless-shadow"]
    template = assembly.template_path(assembly.pattern_stack_name("stateless"))
    # when checkov scans it,
    outcome = run_checkov([template])[template.name]
    # then nothing fails, and every skip is a listed one with its reason on the resource.
    assert not outcome["failed"], _describe(outcome["failed"])
    assert any(c["check_id"] == "CKV_AWS_28" and "DynamoDB::Table" in c["resource"] for c in outcome["passed"])  # PITR
    unlisted = [c for c in outcome["skipped"] if c["check_id"] not in SKIPPABLE]
    assert not unlisted, _describe(unlisted)
