"""Tracing off keeps the X-Ray SDK out of the process; tracing on, as in Lambda, keeps X-Ray and patches botocore."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentrail_runtime.observability import UntracedProvider, observed, patch_on_import, tracer

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
from agentrail_runtime.observability import tracer
patcher = sys.modules.get("aws_xray_sdk.core.patcher")
seen = {
    "provider": type(tracer.provider).__name__,
    "xray_core": "aws_xray_sdk.core" in sys.modules,
    "patched": sorted(getattr(patcher, "_PATCHED_MODULES", ())),
    "httpx_loaded": "httpx" in sys.modules,
}
import boto3
import botocore.client
boto3.client("sqs", region_name="us-east-1")
seen["patched_once_a_client_is_made"] = sorted(getattr(patcher, "_PATCHED_MODULES", ()))
seen["client_calls_traced"] = bool(getattr(botocore.client, "_xray_enabled", False))
print(json.dumps(seen))
"""


def observability_in_a_fresh_process(**environment: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("POWERTOOLS_TRACE_DISABLED", "LAMBDA_TASK_ROOT", "AWS_SAM_LOCAL")}
    env.update(environment, PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "layers" / "runtime" / "python"), str(REPO_ROOT)]))
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_with_tracing_disabled_the_x_ray_sdk_core_is_never_imported() -> None:
    seen = observability_in_a_fresh_process(POWERTOOLS_TRACE_DISABLED="true", LAMBDA_TASK_ROOT="/var/task")

    assert seen["provider"] == "UntracedProvider"
    assert seen["xray_core"] is False
    assert seen["patched"] == seen["patched_once_a_client_is_made"] == []
    assert seen["client_calls_traced"] is False


def test_in_lambda_with_tracing_on_the_tracer_records_with_x_ray_and_patches_botocore_before_its_first_client() -> None:
    seen = observability_in_a_fresh_process(LAMBDA_TASK_ROOT="/var/task", AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR")

    assert seen["provider"] != "UntracedProvider"
    assert seen["xray_core"] is True
    assert "botocore" in seen["patched_once_a_client_is_made"]
    assert seen["client_calls_traced"] is True


def test_with_tracing_on_a_supported_library_the_function_never_imports_is_never_loaded() -> None:
    seen = observability_in_a_fresh_process(LAMBDA_TASK_ROOT="/var/task", AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR")

    assert seen["patched"] == []
    assert seen["httpx_loaded"] is False


@pytest.mark.filterwarnings("ignore:No application metrics:UserWarning")
def test_an_untraced_handler_still_answers_and_raises_as_it_would_traced(lambda_context) -> None:
    assert isinstance(tracer.provider, UntracedProvider)  # tests run outside Lambda

    @observed()
    def handler(event: dict, context: object) -> dict:
        tracer.put_annotation(key="task_id", value=event["task_id"])
        if event.get("fail"):
            raise RuntimeError("boom")
        return {"ok": event["task_id"]}

    assert handler({"task_id": "t1"}, lambda_context) == {"ok": "t1"}
    with pytest.raises(RuntimeError, match="boom"):
        handler({"task_id": "t2", "fail": True}, lambda_context)


def test_a_library_imported_later_is_patched_when_it_is_imported() -> None:
    patched: list[str] = []

    patch_on_import(patched.append, {"json_probe": "json", "never_installed": "agentrail_no_such_module"})

    assert patched == ["json_probe"]  # json is imported already: patched at once; the other never is
