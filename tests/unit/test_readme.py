"""The README is the front door: its quick start, settings tables and commands must match the code."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from agentrail_constructs import (
    PATTERN_STACKS,
    AgentApi,
    AgentApiOptions,
    AgentFunction,
    AgentFunctionOptions,
    AgentMonitoring,
    AgentPipeline,
    ApprovalOptions,
    ApprovalWorkflow,
    AsgiAgent,
    AsyncAgent,
    AsyncOptions,
    BatchLane,
    BatchLaneOptions,
    BedrockGuardrail,
    Budget,
    BudgetOptions,
    DailyBudgets,
    DeploymentOptions,
    ErasureOptions,
    ExistingGuardrail,
    GuardrailOptions,
    HierarchicalAgents,
    HierarchicalOptions,
    LongTaskWorkflow,
    LongTaskWorkflowOptions,
    MonitoringOptions,
    MultiAgentOptions,
    MultiAgentSystem,
    OtelExportOptions,
    PipelineOptions,
    PipelineStack,
    ResponseCache,
    ResponseCacheOptions,
    RetryOptions,
    SecurityBaseline,
    SecurityBaselineOptions,
    SessionOptions,
    SessionTable,
    SessionTableOptions,
    ShadowDeployment,
    ShadowOptions,
    SpecialistOptions,
    StatefulAgent,
    StatelessAgent,
    StreamingApi,
    StreamingOptions,
    TaskTable,
    TaskTableOptions,
)
from agentrail_constructs.stacks import PatternStack
from agentrail_runtime.approvals.settings import ApprovalSettings
from agentrail_runtime.asgi import AsgiSettings
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.erasure import ErasureSettings
from agentrail_runtime.evals.canary import PreTrafficHookSettings
from agentrail_runtime.multiagent.settings import MultiAgentSettings
from agentrail_runtime.sessions.settings import SessionSettings
from agentrail_runtime.shadow import ShadowSettings
from agentrail_runtime.shadow.worker import ShadowWorkerSettings
from agentrail_runtime.streaming import StreamSettings
from agentrail_runtime.tasks.settings import TaskSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
README = (REPO_ROOT / "README.md").read_text()
OPTIONS = [
    AgentFunctionOptions,
    GuardrailOptions,
    ExistingGuardrail,
    Budget,
    BudgetOptions,
    ErasureOptions,
    AgentApiOptions,
    SessionOptions,
    StreamingOptions,
    SessionTableOptions,
    AsyncOptions,
    TaskTableOptions,
    LongTaskWorkflowOptions,
    ApprovalOptions,
    MultiAgentOptions,
    SpecialistOptions,
    HierarchicalOptions,
    RetryOptions,
    SecurityBaselineOptions,
    MonitoringOptions,
    OtelExportOptions,
    DeploymentOptions,
    PipelineOptions,
    ShadowOptions,
    ResponseCacheOptions,
    BatchLaneOptions,
]


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_the_quick_start_has_exactly_two_commands_and_ci_runs_the_second():
    commands = quick_start_commands()

    assert commands == ["make demo", "make test"]
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)


def construct_option_rows(name: str) -> str:
    """The rows of ``name``'s part of the construct options table: its bold heading row and the rows up to the next one."""
    table = README.split("### Construct options (CDK)", 1)[1].split("\n#", 1)[0]
    rows: list[str] = []
    for line in table.splitlines():
        if line.startswith("| **`"):
            if rows:
                break
            if line.startswith(f"| **`{name}`**"):
                rows.append(line)
        elif rows and line.startswith("|"):
            rows.append(line)
    return "\n".join(rows)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: o.__name__)
def test_every_construct_option_is_in_the_settings_table(options):
    rows = construct_option_rows(options.__name__)
    missing = [f.name for f in dataclasses.fields(options) if f"`{f.name}`" not in rows]

    assert rows, f"add a **`{options.__name__}`** heading row to the README's construct options table"
    assert missing == [], f"add these {options.__name__} fields to its rows of the README's construct options table"


@pytest.mark.parametrize(
    ("settings", "prefix"),
    [
        (RuntimeSettings, "AGENT_"),
        (SessionSettings, "AGENT_SESSION_"),
        (TaskSettings, "AGENT_TASK_"),
        (ApprovalSettings, "AGENT_APPROVAL_"),
        (MultiAgentSettings, "AGENT_MULTI_"),
        (PreTrafficHookSettings, "AGENT_"),
        (ShadowSettings, "AGENT_SHADOW_"),
        (ShadowWorkerSettings, "AGENT_SHADOW_"),
        (StreamSettings, "AGENT_STREAM_"),
        (AsgiSettings, "AGENT_"),
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_every_runtime_environment_variable_is_in_the_environment_table(settings, prefix):
    table = README.split("### Runtime environment", 1)[1].split("\n## ", 1)[0]
    missing = []
    for name, field in settings.model_fields.items():
        # A field read from another setting's variable (ShadowWorkerSettings.store_redacted) is in the table as that.
        variable = field.validation_alias if isinstance(field.validation_alias, str) else f"{prefix}{name.upper()}"
        if f"`{variable}`" not in table and f"`{name.upper()}`" not in table:
            missing.append(variable)

    assert missing == [], "add these variables to the README's runtime environment table"


@pytest.mark.parametrize("field", sorted(ErasureSettings.model_fields))
def test_every_erasure_variable_is_in_the_environment_table(field: str):
    # Given the README's runtime environment table, whose AGENT_ERASE_* row names each variable by its suffix
    table = README.split("### Runtime environment", 1)[1].split("\n## ", 1)[0]
    row = next((line for line in table.splitlines() if line.startswith("| `AGENT_ERASE_*`")), "")

    # Then the setting's variable is in it
    assert f"`{field.upper()}`" in row, f"add AGENT_ERASE_{field.upper()} to the README's runtime environment table"


def test_every_cli_command_the_readme_shows_exists():
    from agentrail_cli.main import _parser

    commands = set(_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    code = "\n".join(re.findall(r"```(?:bash)?\n(.*?)```", README, re.DOTALL))
    shown = set(re.findall(r"^agentrail ([a-z]+)", code, re.MULTILINE)) | set(re.findall(r"`agentrail ([a-z]+)", README))

    assert shown and shown <= commands, f"README shows commands the CLI lacks: {sorted(shown - commands)}"


CONSTRUCTS = [
    StatelessAgent,
    AsgiAgent,
    StatefulAgent,
    StreamingApi,
    SessionTable,
    AsyncAgent,
    TaskTable,
    LongTaskWorkflow,
    ApprovalWorkflow,
    MultiAgentSystem,
    HierarchicalAgents,
    AgentFunction,
    AgentApi,
    SecurityBaseline,
    AgentMonitoring,
    PatternStack,
    DailyBudgets,
    AgentPipeline,
    PipelineStack,
    BedrockGuardrail,
    ShadowDeployment,
    ResponseCache,
    BatchLane,
]


def construct_keyword_rows(name: str) -> str:
    """The rows of construct ``name`` in the README's construct keywords table."""
    table = README.split("### Construct keywords (CDK)", 1)[1].split("\n#", 1)[0]
    rows: list[str] = []
    for line in table.splitlines():
        if line.startswith("| **`"):
            if rows:
                break
            if line.startswith(f"| **`{name}`**"):
                rows.append(line)
        elif rows and line.startswith("|"):
            rows.append(line)
    return "\n".join(rows)


@pytest.mark.parametrize("construct", CONSTRUCTS, ids=lambda c: c.__name__)
def test_every_construct_keyword_is_in_the_keywords_table(construct):
    rows = construct_keyword_rows(construct.__name__)
    keywords = [p.name for p in inspect.signature(construct.__init__).parameters.values() if p.kind is p.KEYWORD_ONLY]
    missing = [name for name in keywords if f"`{name}`" not in rows]

    assert rows, f"add a **`{construct.__name__}`** heading row to the README's construct keywords table"
    assert missing == [], f"add these {construct.__name__} keywords to its rows of the README's construct keywords table"


@pytest.mark.parametrize(
    "renamed", [*CONSTRUCTS, *PATTERN_STACKS.values(), LongTaskWorkflowOptions, ApprovalOptions], ids=lambda c: c.__name__
)
def test_every_deprecated_name_is_in_the_renamed_table_with_its_new_name(renamed):
    table = README.split("| Old name | New name |", 1)[1].split("\n\n", 1)[0]
    aliases = getattr(renamed.__init__, "__renamed_keywords__", {})
    missing = [
        f"{old} -> {new}"
        for old, new in aliases.items()
        if not re.search(rf"^\| `[^`]*\b{old}=\)?` [^|]*\| `{new}=` \|", table, re.MULTILINE)
    ]

    assert missing == [], f"add these renamed keywords of {renamed.__name__} to the README's renamed table"


def evals_section() -> str:
    return README.split("\n## Evals\n", 1)[1].split("\n## ", 1)[0]


def test_every_scorer_is_in_the_readme_scorers_table_with_its_default_threshold():
    from agentrail_runtime.evals import DEFAULT_THRESHOLDS, SCORERS

    rows = {
        match.group(1): float(match.group(2))
        for match in re.finditer(r"^\| `([a-z_]+)` \|.*\| (\d\.\d+) \|$", evals_section(), re.MULTILINE)
    }

    assert rows == {name: DEFAULT_THRESHOLDS[name] for name in SCORERS}


def test_every_option_of_agentrail_eval_is_in_the_readme_evals_section():
    from agentrail_cli.main import _parser

    command = _parser()._subparsers._group_actions[0].choices["eval"]  # type: ignore[union-attr]
    options = [o for action in command._actions for o in action.option_strings if o.startswith("--") and o != "--help"]
    missing = [o for o in options if f"`{o}" not in evals_section()]

    assert missing == [], "add these agentrail eval options to the README's Evals section"


def test_every_option_of_agentrail_shadow_report_and_each_shadow_metric_is_in_the_readme_shadow_section():
    from agentrail_cli.main import _parser
    from agentrail_runtime.shadow.sampler import SHADOW_SAMPLED, SHADOW_SEND_FAILED

    shadow = _parser()._subparsers._group_actions[0].choices["shadow"]  # type: ignore[union-attr]
    report = shadow._subparsers._group_actions[0].choices["report"]  # type: ignore[union-attr]
    options = [o for action in report._actions for o in action.option_strings if o.startswith("--") and o != "--help"]
    section = README.split("\n### Shadow deployment\n", 1)[1].split("\n### ", 1)[0]
    missing = [o for o in options if f"`{o}" not in section]
    missing += [f"the {metric} metric" for metric in (SHADOW_SAMPLED, SHADOW_SEND_FAILED) if f"`{metric}`" not in section]

    assert missing == [], "add these to the README's Shadow deployment section"


def test_every_pipeline_context_key_is_in_the_pipeline_table():
    from agentrail_constructs.app_config import PIPELINE_KEYS

    table = README.split("### Pipeline: from a push to production", 1)[1].split("\n#", 1)[0]

    missing = [key for key in ("pipeline", *PIPELINE_KEYS) if f"| `{key}` |" not in table]
    assert missing == [], "add these context keys to the README's pipeline table"


class _ContextReader:
    """Stands in for the CDK app: records every context key ``AppConfig`` reads (none given, so all defaults)."""

    def __init__(self) -> None:
        self.read: list[str] = []
        self.node = self

    def try_get_context(self, key: str) -> None:
        self.read.append(key)


def test_every_context_key_app_config_reads_is_in_the_context_keys_table():
    from agentrail_constructs.app_config import AppConfig

    app = _ContextReader()
    AppConfig.from_context(app, tuple(PATTERN_STACKS))  # type: ignore[arg-type]
    table = README.split("### Context keys (app.py)", 1)[1].split("\n#", 1)[0]
    listed = {key for row in re.findall(r"^\| ([^|]+) \|", table, re.MULTILINE) for key in re.findall(r"`([a-z_]+)`", row)}

    assert app.read, "AppConfig read no context key"
    missing = sorted(set(app.read) - listed)
    assert missing == [], "add these context keys to the README's context keys table"
