"""The canary's pre-traffic hook: before CodeDeploy shifts any traffic to a new version of an agent function, run the
smoke cases (tag ``smoke``) of the agent's datasets, publish the ``EvalScore`` metric and tell CodeDeploy whether the
deployment may go on.

CodeDeploy invokes the hook with ``DeploymentId`` and ``LifecycleEventHookExecutionId``. The hook reads the
deployment's AppSpec (``GetDeployment``) for the function and the version it shifts to, checks that this version runs
the agent version the hook was built with (``AGENT_VERSION`` in both environments, so the cases run the definition,
prompt, model and limits of that version), runs the cases in process, emits ``EvalScore`` (EMF, namespace
``POWERTOOLS_METRICS_NAMESPACE``, dimension ``service``: the function's service name, the same the CodeDeploy alarm
watches) and reports ``Succeeded`` when the score reaches ``min_score``, ``Failed`` otherwise (any error too).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentrail_runtime.agent.definition import load_definition
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.evals.dataset import DatasetError, load_datasets
from agentrail_runtime.evals.judge import LocalJudge
from agentrail_runtime.evals.report import EvalReport
from agentrail_runtime.evals.runner import InProcessTarget, run_datasets
from agentrail_runtime.models.registry import ProviderFactory

#: The metric the hook (and the shadow report) publish, and the CodeDeploy alarm watches: the mean score of the
#: smoke cases, 0 to 1, under the dimension ``service`` only (the agent version is a property, never a dimension).
EVAL_SCORE_METRIC = "EvalScore"
EVAL_SCORE_DIMENSIONS = ("service",)
#: The tag of the cases the hook runs.
SMOKE_TAG = "smoke"

HookStatus = Literal["Succeeded", "Failed"]


class PreTrafficHookSettings(BaseSettings):
    """What the construct sets on the hook besides the function's own ``AGENT_*`` settings."""

    model_config = SettingsConfigDict(env_prefix="AGENT_", extra="ignore", frozen=True)

    #: The agent version of the function the hook gates (its ``AGENT_VERSION``).
    version: str
    #: The lowest ``EvalScore`` that lets a deployment go on.
    canary_min_eval_score: float = Field(ge=0, le=1)
    #: The datasets shipped with the hook: the evals layer's ``/opt/evals``.
    canary_evals_dir: Path = Path("/opt/evals")


@dataclass(frozen=True)
class HookOutcome:
    """What the hook decided, and why."""

    status: HookStatus
    reason: str
    score: float | None = None
    report: EvalReport | None = None


@dataclass(frozen=True)
class DeploymentTarget:
    """The function and version a Lambda deployment shifts the alias to, read from its AppSpec."""

    function_name: str
    alias: str
    current_version: str
    target_version: str


def deployment_target(deployment: Mapping[str, Any]) -> DeploymentTarget:
    """The Lambda resource of a ``GetDeployment`` answer's AppSpec (``revision.appSpecContent.content``, JSON or the
    flat YAML CodeDeploy writes for CloudFormation deployments).

    Raises
    ------
    ValueError
        When the AppSpec names no Lambda function with a target version.
    """
    revision = deployment.get("deploymentInfo", {}).get("revision", {})
    content = revision.get("appSpecContent", {}).get("content") or revision.get("string", {}).get("content", "")
    try:
        spec = json.loads(content)
    except json.JSONDecodeError as error:
        raise ValueError(f"the deployment's AppSpec is not JSON: {error.msg}") from None
    for entry in spec.get("Resources", []):
        for resource in entry.values():
            props = resource.get("Properties", {}) if resource.get("Type") == "AWS::Lambda::Function" else {}
            if props.get("Name") and props.get("TargetVersion"):
                return DeploymentTarget(
                    function_name=str(props["Name"]),
                    alias=str(props.get("Alias", "")),
                    current_version=str(props.get("CurrentVersion", "")),
                    target_version=str(props["TargetVersion"]),
                )
    raise ValueError("the deployment's AppSpec names no AWS::Lambda::Function with a TargetVersion")


class PreTrafficHook:
    """Gate one deployment on the smoke cases of the agent this function runs.

    Parameters
    ----------
    codedeploy, lambda_client:
        boto3 clients (``GetDeployment`` and ``PutLifecycleEventHookExecutionStatus``; ``GetFunctionConfiguration``).
    metrics:
        Where ``EvalScore`` goes (the Powertools metrics the handler flushes).
    datasets_dir:
        The folder of ``<agent>/*.jsonl`` datasets shipped with the hook (``/opt/evals``: the evals layer).
    settings:
        The agent's settings: the hook runs with the function's ``AGENT_*`` environment.
    agent_version:
        The hook's ``AGENT_VERSION``; the version deployed must carry the same.
    min_score:
        The lowest ``EvalScore`` that lets the deployment go on (0 to 1).
    """

    def __init__(
        self,
        *,
        codedeploy: Any,
        lambda_client: Any,
        metrics: Metrics,
        datasets_dir: Path,
        settings: RuntimeSettings,
        agent_version: str,
        min_score: float,
    ) -> None:
        if not 0 <= min_score <= 1:
            raise ValueError(f"min_score must be between 0 and 1, got {min_score}")
        self.codedeploy = codedeploy
        self.lambda_client = lambda_client
        self.metrics = metrics
        self.datasets_dir = datasets_dir
        self.settings = settings
        self.agent_version = agent_version
        self.min_score = min_score

    def __call__(self, event: Mapping[str, Any]) -> HookOutcome:
        """Decide, report the decision to CodeDeploy, and return it. A failure to report raises (CodeDeploy then
        times the hook out and rolls back)."""
        deployment_id = event["DeploymentId"]
        try:
            outcome = self.evaluate(deployment_id)
        except Exception as error:  # whatever went wrong, the deployment must not go on unchecked
            outcome = HookOutcome(status="Failed", reason=f"{type(error).__name__}: {error}")
        self.codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id,
            lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
            status=outcome.status,
        )
        return outcome

    def evaluate(self, deployment_id: str) -> HookOutcome:
        target = deployment_target(self.codedeploy.get_deployment(deploymentId=deployment_id))
        configuration = self.lambda_client.get_function_configuration(
            FunctionName=target.function_name, Qualifier=target.target_version
        )
        deployed = configuration.get("Environment", {}).get("Variables", {}).get("AGENT_VERSION")
        if deployed != self.agent_version:
            return HookOutcome(
                status="Failed",
                reason=(
                    f"version {target.target_version} of {target.function_name} runs agent version {deployed!r}, "
                    f"the hook was built for {self.agent_version!r}: deploy the function and its hook together"
                ),
            )
        definition = load_definition(self.settings.definition)
        try:
            datasets = load_datasets([self.datasets_dir / definition.name], tags=[SMOKE_TAG])
        except DatasetError as error:
            if not (self.datasets_dir / definition.name).is_dir() or "no case has the tag" in str(error):
                return HookOutcome(status="Succeeded", reason=f"agent {definition.name!r} has no smoke cases to run")
            raise
        model = ProviderFactory(
            openai_api_key_secret=self.settings.openai_api_key_secret,
            openai_base_url=self.settings.openai_base_url,
            max_attempts=self.settings.model_max_attempts,
            timeout_seconds=self.settings.model_timeout_seconds,
        ).get(self.settings.model)
        report = run_datasets(
            datasets,
            InProcessTarget(definition, model, self.settings),
            judge=LocalJudge(),
            target_name=f"{target.function_name}:{target.target_version}",
            agent_versions={definition.name: self.agent_version},
        )
        score = report.score if report.score is not None else (1.0 if report.passed else 0.0)
        self.metrics.add_metric(name=EVAL_SCORE_METRIC, unit=MetricUnit.NoUnit, value=score)
        self.metrics.add_metadata(key="agent_version", value=self.agent_version)
        failed = ", ".join(case.key for case in report.failed_cases) or "none"
        status: HookStatus = "Succeeded" if score >= self.min_score else "Failed"
        reason = f"EvalScore {score:.3f} against a minimum of {self.min_score} ({len(report.cases)} cases; failed: {failed})"
        return HookOutcome(status=status, reason=reason, score=score, report=report)


__all__ = [
    "EVAL_SCORE_DIMENSIONS",
    "EVAL_SCORE_METRIC",
    "SMOKE_TAG",
    "DeploymentTarget",
    "HookOutcome",
    "PreTrafficHook",
    "PreTrafficHookSettings",
    "deployment_target",
]
