"""agentrail_runtime.contract: the one place the runtime and the constructs read the model grammar, the health
check kinds and the exception names Step Functions retries; it imports the standard library only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import get_args

import pytest

from agentrail_runtime import contract
from agentrail_runtime.config import DependencyCheck
from agentrail_runtime.health import dependency_check
from agentrail_runtime.models.base import ModelConfigError, ModelThrottledError, ModelUnavailableError
from agentrail_runtime.models.registry import PROVIDERS, parse_model_spec
from agentrail_runtime.tasks.events import TaskEventNotPublished


def test_the_contract_module_imports_nothing_but_the_standard_library() -> None:
    tree = ast.parse(Path(contract.__file__).read_text(encoding="utf-8"))

    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }

    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


@pytest.mark.parametrize(
    ("name", "exception"),
    [
        (contract.MODEL_THROTTLED_ERROR, ModelThrottledError),
        (contract.MODEL_UNAVAILABLE_ERROR, ModelUnavailableError),
        (contract.TASK_EVENT_NOT_PUBLISHED_ERROR, TaskEventNotPublished),
    ],
)
def test_each_exception_name_is_the_class_name_lambda_reports_as_error_type(name: str, exception: type) -> None:
    assert name == exception.__name__


def test_the_transient_errors_are_exactly_the_throttled_and_unavailable_ones() -> None:
    assert (ModelThrottledError.__name__, ModelUnavailableError.__name__) == contract.MODEL_TRANSIENT_ERRORS


def test_the_health_check_kinds_tuple_and_literal_name_the_same_kinds() -> None:
    assert get_args(contract.HealthCheckKind) == contract.HEALTH_CHECK_KINDS


@pytest.mark.parametrize("kind", contract.HEALTH_CHECK_KINDS)
def test_the_runtime_has_a_probe_for_every_health_check_kind(kind: str) -> None:
    check = dependency_check(DependencyCheck(kind=kind, name="arn:aws:x:us-east-1:123456789012:thing/name"), lambda service: None)

    assert check.name == f"{kind}:name"


def test_the_runtime_parses_the_providers_the_contract_names() -> None:
    assert PROVIDERS == contract.PROVIDERS
    assert parse_model_spec("bedrock:us.amazon.nova-lite-v1:0").canonical == "bedrock:us.amazon.nova-lite-v1:0"


@pytest.mark.parametrize("spec", ["bedrock:amazon nova", "openai:gpt 4o", "bedrock:model;drop"])
def test_the_runtime_refuses_a_spec_outside_the_contract_grammar_with_the_contract_sentence(spec: str) -> None:
    with pytest.raises(ModelConfigError, match=f"unknown model .*{contract.MODEL_SPEC_HELP}"):
        parse_model_spec(spec)


def test_every_shadow_variable_the_contract_names_is_a_setting_the_runtime_reads() -> None:
    from agentrail_runtime.shadow import ShadowSettings
    from agentrail_runtime.shadow.worker import ShadowWorkerSettings

    named = {value for key, value in vars(contract).items() if key.startswith("SHADOW_") and key.endswith("_ENV")}
    read = {
        f"{settings.model_config['env_prefix']}{field}".upper()
        for settings in (ShadowSettings, ShadowWorkerSettings)
        for field, info in settings.model_fields.items()
        if info.validation_alias is None  # the agent's own variables (AGENT_STORE_REDACTED), not the shadow's
    }

    assert named == read
