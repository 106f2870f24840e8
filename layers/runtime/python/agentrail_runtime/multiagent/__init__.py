"""Multi-agent systems: a router handing off to specialists over SQS, and supervisor/worker workflows."""

from agentrail_runtime.multiagent.hierarchy import SUPERVISOR_DEFINITION, SubtaskFailed, SupervisorSteps
from agentrail_runtime.multiagent.models import AgentOutcome, RoutedMessage, SpecialistSpec, SpendLimit, SpentSoFar
from agentrail_runtime.multiagent.routing import AgentTeam, Orchestrator, Router, Specialist, handoff_tool
from agentrail_runtime.multiagent.settings import MultiAgentSettings, load_multi_settings

__all__ = [
    "SUPERVISOR_DEFINITION",
    "AgentOutcome",
    "AgentTeam",
    "MultiAgentSettings",
    "Orchestrator",
    "RoutedMessage",
    "Router",
    "Specialist",
    "SpecialistSpec",
    "SpendLimit",
    "SpentSoFar",
    "SubtaskFailed",
    "SupervisorSteps",
    "handoff_tool",
    "load_multi_settings",
]
