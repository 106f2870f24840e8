"""agentrail CDK constructs: one construct per architecture pattern, with secure defaults.

Import from here: ``from agentrail_constructs import StatelessAgent``.
"""

from agentrail_constructs.api import AgentApi, AgentApiOptions, ApiAuth
from agentrail_constructs.approvals import ApprovalOptions, ApprovalWorkflow
from agentrail_constructs.asgi import AsgiAgent
from agentrail_constructs.batch_lane import BatchLane, BatchLaneOptions
from agentrail_constructs.budgets import Budget, BudgetOptions, DailyBudgets
from agentrail_constructs.deployment import CanaryDeployment, DeploymentOptions
from agentrail_constructs.erasure import ErasureOptions
from agentrail_constructs.function import AgentFunction, AgentFunctionOptions, OtelExportOptions, ProvisionedConcurrencyScaling
from agentrail_constructs.guardrails import BedrockGuardrail, ExistingGuardrail, GuardrailOptions
from agentrail_constructs.layers import AsgiLayer, DependenciesLayer, EvalsLayer, RuntimeLayer
from agentrail_constructs.monitoring import AgentMonitoring, MonitoringOptions
from agentrail_constructs.multiagent import (
    HierarchicalAgents,
    HierarchicalOptions,
    MultiAgentOptions,
    MultiAgentSystem,
    SpecialistOptions,
)
from agentrail_constructs.operator_console import OperatorConsole, OperatorConsoleOptions, OperatorUserPool
from agentrail_constructs.pipeline import AgentPipeline, PipelineOptions
from agentrail_constructs.queues import QueueWithDeadLetters
from agentrail_constructs.renames import renamed_class
from agentrail_constructs.response_cache import ResponseCache, ResponseCacheOptions
from agentrail_constructs.security import SecurityBaseline, SecurityBaselineOptions
from agentrail_constructs.sessions import SessionOptions, SessionTable, SessionTableOptions, StatefulAgent
from agentrail_constructs.shadow import ShadowDeployment, ShadowOptions
from agentrail_constructs.stacks import (
    PATTERN_STACKS,
    AsgiAgentStack,
    AsyncAgentStack,
    HierarchicalStack,
    MultiAgentStack,
    PipelineStack,
    StatefulAgentStack,
    StatelessAgentStack,
)
from agentrail_constructs.stateless import StatelessAgent
from agentrail_constructs.streaming import StreamingApi, StreamingOptions
from agentrail_constructs.task_table import TaskTable, TaskTableOptions
from agentrail_constructs.tasks import AsyncAgent, AsyncOptions, LongTaskWorkflow, LongTaskWorkflowOptions
from agentrail_constructs.workflows import RetryOptions

__all__ = [
    "PATTERN_STACKS",
    "AgentApi",
    "AgentApiOptions",
    "AgentFunction",
    "AgentFunctionOptions",
    "AgentMonitoring",
    "AgentPipeline",
    "ApiAuth",
    "ApprovalOptions",
    "ApprovalWorkflow",
    "AsgiAgent",
    "AsgiAgentStack",
    "AsgiLayer",
    "AsyncAgent",
    "AsyncAgentStack",
    "AsyncOptions",
    "BatchLane",
    "BatchLaneOptions",
    "BedrockGuardrail",
    "Budget",
    "BudgetOptions",
    "CanaryDeployment",
    "DailyBudgets",
    "DependenciesLayer",
    "DeploymentOptions",
    "ErasureOptions",
    "EvalsLayer",
    "ExistingGuardrail",
    "GuardrailOptions",
    "HierarchicalAgents",
    "HierarchicalOptions",
    "HierarchicalStack",
    "LongTaskWorkflow",
    "LongTaskWorkflowOptions",
    "MonitoringOptions",
    "MultiAgentOptions",
    "MultiAgentStack",
    "MultiAgentSystem",
    "OperatorConsole",
    "OperatorConsoleOptions",
    "OperatorUserPool",
    "OtelExportOptions",
    "PipelineOptions",
    "PipelineStack",
    "ProvisionedConcurrencyScaling",
    "QueueWithDeadLetters",
    "ResponseCache",
    "ResponseCacheOptions",
    "RetryOptions",
    "RuntimeLayer",
    "SecurityBaseline",
    "SecurityBaselineOptions",
    "SessionOptions",
    "SessionTable",
    "SessionTableOptions",
    "ShadowDeployment",
    "ShadowOptions",
    "SpecialistOptions",
    "StatefulAgent",
    "StatefulAgentStack",
    "StatelessAgent",
    "StatelessAgentStack",
    "StreamingApi",
    "StreamingOptions",
    "TaskTable",
    "TaskTableOptions",
]


def __getattr__(name: str) -> object:
    """Old names that keep working for one release (with a ``DeprecationWarning``)."""
    if name == "Specialist":
        return renamed_class(name, SpecialistOptions)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
