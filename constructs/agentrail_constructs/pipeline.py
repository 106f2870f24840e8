"""AgentPipeline: a CDK Pipelines pipeline (``aws_cdk.pipelines``) from a CodeConnections source to production.

Stages, in order: Source (CodeConnections), Build (install from the project's own files, ``cdk synth``),
UpdatePipeline and Assets (what CDK Pipelines adds), Test (unit and integration tiers), EvalGate (``agentrail eval``
over ``evals/``), Staging (the app's stacks, then ``agentrail smoke`` against each stack's ``ApiUrl``), and
Production (behind a manual approval unless promotion is automatic), whose ``live`` aliases deploy through the
canary of :mod:`agentrail_constructs.deployment`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from aws_cdk import CfnOutput, Duration, Stack, Stage, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from agentrail_constructs.nag import acknowledge, default_resource, skip_checkov
from agentrail_constructs.storage import log_group

#: ``promotion`` of :class:`PipelineOptions` (``-c pipeline_promotion=...``).
PROMOTIONS = ("manual", "automatic")
#: A repository as CodeConnections names it: ``owner/name`` (GitLab groups may nest: ``group/subgroup/name``).
REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+")
#: A CodeConnections connection (or one made when the service was called CodeStar Connections).
CONNECTION_ARN = re.compile(r"arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[A-Za-z0-9-]+")
#: A git branch name, as far as a pipeline needs to check it (no spaces, no ``..``, no leading ``-``).
BRANCH = re.compile(r"(?!-)(?!.*\.\.)[A-Za-z0-9._/-]+")
#: Where the test, eval and smoke steps write their JUnit XML (CodeBuild reports read it).
REPORTS_DIR = "reports"
#: The stack output that a stage's stack serves its API at: each one gets a smoke step.
API_URL_OUTPUT = "ApiUrl"
#: Installs the project from its own files: the venv from requirements-dev.txt, the CDK CLI from package-lock.json.
INSTALL = "make setup"
#: ``make`` puts these first on PATH; the pipeline's shell steps do the same for the CLIs they call (cdk, agentrail).
PROJECT_PATH = 'PATH="$PWD/node_modules/.bin:$PWD/.venv/bin:$PATH"'


@dataclass(frozen=True, kw_only=True)
class PipelineOptions:
    """How an :class:`AgentPipeline` builds, gates and promotes."""

    branch: str = "main"
    """The branch that starts the pipeline on every push. Default: ``main``."""
    promotion: Literal["manual", "automatic"] = "manual"
    """``manual``: a person approves in CodePipeline before production; ``automatic``: production follows a green
    staging smoke test. Default: ``manual``."""
    synth_context: Mapping[str, str] = field(default_factory=dict)
    """``-c key=value`` pairs the Build step passes to ``cdk synth``, so the pipeline synthesizes the app it was
    deployed from (app.py gives the settings it was run with). Default: none."""
    log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS
    """How long the build logs (one log group for every CodeBuild project) are kept. Default: 3 months."""
    build_timeout: Duration = field(default_factory=lambda: Duration.minutes(60))
    """The longest any CodeBuild step may run. Default: 60 minutes."""

    def validate(self) -> None:
        """Fail at synth with a message that names the fix."""
        self.validate_promotion()
        if not BRANCH.fullmatch(self.branch):
            raise ValueError(f"pipeline branch must be a git branch name such as main, got {self.branch!r}")
        bad_keys = [key for key in self.synth_context if not re.fullmatch(r"[A-Za-z0-9_:@/.-]+", key)]
        if bad_keys:
            raise ValueError(f"synth_context keys must be context key names, got {bad_keys!r}")

    def validate_promotion(self) -> None:
        if self.promotion not in PROMOTIONS:
            raise ValueError(f"pipeline promotion must be one of {', '.join(PROMOTIONS)}, got {self.promotion!r}")


def validate_repository(repository: str) -> None:
    """Fail at synth when ``repository`` is not ``owner/name``."""
    if not REPOSITORY.fullmatch(repository):
        raise ValueError(f"the pipeline's repository must be owner/name (as the connection shows it), got {repository!r}")


def validate_connection_arn(connection_arn: str) -> None:
    """Fail at synth, naming where to create one, when ``connection_arn`` is not a CodeConnections connection's ARN."""
    if not CONNECTION_ARN.fullmatch(connection_arn):
        raise ValueError(
            "the pipeline's connection_arn must be a CodeConnections connection ARN "
            "(arn:aws:codeconnections:<region>:<account>:connection/<id>; create one in the console under "
            f"Developer Tools > Settings > Connections), got {connection_arn!r}"
        )


def validate_source(*, repository: str, connection_arn: str) -> None:
    """Fail at synth with a message that names the fix when the source is not a CodeConnections repository."""
    validate_repository(repository)
    validate_connection_arn(connection_arn)


class AgentPipeline(Construct):
    """A self-mutating CDK pipeline: source, synth, tests, eval gate, staging with smoke tests, then production.

    The pipeline is built (``build_pipeline()``) before the constructor returns, so its stages, projects and roles
    exist for tests, cdk-nag and escape hatches. Builds run unprivileged: the app bundles every asset locally (no
    Docker), so no step needs a Docker daemon.

    Parameters
    ----------
    repository:
        ``owner/name`` of the repository the connection reaches (GitHub, GitLab or Bitbucket).
    connection_arn:
        The ARN of a CodeConnections connection you created and authorized (CodeCommit is closed to new customers).
    stage:
        Builds a ``Stage`` of the app's stacks: called with ``(scope, "Staging")`` and ``(scope, "Production")``.
        Each of its stacks with an ``ApiUrl`` output gets a smoke step after staging.
    options:
        See :class:`PipelineOptions`. Default: ``PipelineOptions()``.

    Attributes
    ----------
    pipeline (the ``pipelines.CodePipeline``), source, synth, tests, eval_gate, staging, production, smoke_steps,
    approval (None when promotion is automatic), log_group
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repository: str,
        connection_arn: str,
        stage: Callable[[Construct, str], Stage],
        options: PipelineOptions | None = None,
    ) -> None:
        options = options or PipelineOptions()
        options.validate()
        validate_source(repository=repository, connection_arn=connection_arn)
        super().__init__(scope, construct_id)
        self.options = options
        # Retained (a log group's default removal policy); build logs hold test and synth output, no customer data.
        self.log_group = log_group(self, "BuildLogs", retention=options.log_retention)
        skip_checkov(
            default_resource(self.log_group),
            "CKV_AWS_158",
            "CloudWatch Logs encrypts the build logs at rest with a key it owns; the pipeline takes no customer managed "
            "key for them: they hold test, synth and eval output, no customer data.",
        )
        self.source = pipelines.CodePipelineSource.connection(
            repository, options.branch, connection_arn=connection_arn, action_name="Source"
        )
        self.synth = pipelines.ShellStep(
            "Synth",
            input=self.source,
            install_commands=[INSTALL],
            commands=[f"{PROJECT_PATH} {synth_command(options.synth_context)}"],
            primary_output_directory="cdk.out",
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            synth=self.synth,
            cross_account_keys=True,
            enable_key_rotation=True,
            docker_enabled_for_synth=False,
            docker_enabled_for_self_mutation=False,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                    compute_type=codebuild.ComputeType.SMALL,
                    privileged=False,
                ),
                logging=codebuild.LoggingOptions(cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.log_group)),
                timeout=options.build_timeout,
            ),
        )
        self.tests = self._tested_step(
            "UnitAndIntegrationTests",
            [
                f'make test-unit PYTEST_ARGS="--junitxml={REPORTS_DIR}/unit.xml"',
                f'make test-integration PYTEST_ARGS="--junitxml={REPORTS_DIR}/integration.xml"',
            ],
        )
        self.eval_gate = self._tested_step(
            "EvalGate",
            [f'make test-evals EVAL_ARGS="--junit {REPORTS_DIR}/evals.xml --json {REPORTS_DIR}/evals.json"'],
        )
        self.pipeline.add_wave("Test", pre=[self.tests])
        self.pipeline.add_wave("EvalGate", pre=[self.eval_gate])
        self.staging = stage(self, "Staging")
        self.smoke_steps = [self._smoke_step(output) for output in api_url_outputs(self.staging)]
        self.pipeline.add_stage(self.staging, post=self.smoke_steps)
        self.production = stage(self, "Production")
        self.approval: pipelines.ManualApprovalStep | None = None
        if options.promotion == "manual":
            self.approval = pipelines.ManualApprovalStep(
                "PromoteToProduction", comment="Staging passed its smoke tests: promote this revision to production?"
            )
        self.pipeline.add_stage(self.production, pre=[self.approval] if self.approval else None)
        self.pipeline.build_pipeline()
        self._acknowledge_findings()

    def _tested_step(self, step_id: str, commands: list[str]) -> pipelines.CodeBuildStep:
        """A step that installs the project from the source, runs ``commands`` and reports their JUnit XML."""
        return pipelines.CodeBuildStep(
            step_id,
            input=self.source,
            install_commands=[INSTALL],
            commands=[f"mkdir -p {REPORTS_DIR}", *commands],
            partial_build_spec=junit_reports(step_id),
        )

    def _smoke_step(self, output: CfnOutput) -> pipelines.CodeBuildStep:
        """``agentrail smoke`` against the API of one staging stack, signed with SigV4 as the step's role."""
        stack = Stack.of(output)
        pattern = getattr(stack, "pattern", None)  # a PatternStack's; else the API's OpenAPI document tells
        return pipelines.CodeBuildStep(
            f"Smoke-{stack.stack_name}",
            input=self.source,
            install_commands=[INSTALL],
            env_from_cfn_outputs={"API_URL": output},
            commands=[smoke_command(pattern)],
            role_policy_statements=[
                iam.PolicyStatement(
                    actions=["execute-api:Invoke"],
                    resources=[Stack.of(self).format_arn(service="execute-api", resource="*")],
                )
            ],
        )

    def _acknowledge_findings(self) -> None:
        """Acknowledge what CDK Pipelines grants by design, on each resource, with its reason; any other wildcard
        stays a finding and fails the synth."""
        # CDK writes DependsOn the role beside the GetAtt of its ARN, so the order is stated twice; harmless.
        default_resource(self.pipeline.pipeline).add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        bucket = self.pipeline.pipeline.artifact_bucket
        bucket_resource = default_resource(bucket)
        acknowledge(bucket_resource, "S1", ARTIFACT_BUCKET_REASONS["S1"])
        for check, reason in ARTIFACT_BUCKET_REASONS.items():
            if check.startswith("CKV"):
                skip_checkov(bucket_resource, check, reason)
        for policy in self.node.find_all():
            if not isinstance(policy, iam.CfnPolicy):
                continue
            if policy.node.path.endswith("/Assets/FileRole/DefaultPolicy/Resource"):
                skip_checkov(policy, "CKV_AWS_111", ASSET_ROLE_REASON)
            document = Stack.of(policy).resolve(policy.policy_document)
            for finding in wildcard_findings(document):
                known = next((why for pattern, why in WILDCARD_REASONS if pattern.fullmatch(finding)), None)
                if known is not None:
                    acknowledge(policy, f"IAM5[{finding}]", known)


#: Wildcards CDK Pipelines grants, as cdk-nag names them (``Action::s3:GetObject*``), and why each is right.
WILDCARD_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern.replace("ACCOUNT", r"(<AWS::AccountId>|\d{12})")), reason)
    for pattern, reason in (
        (
            r"Action::s3:(Abort|DeleteObject|GetBucket|GetObject|List)\*",
            "CDK Pipelines' grant on the pipeline's own artifact bucket: the object actions each step needs to read "
            "its inputs and write its outputs, nothing beyond that bucket",
        ),
        (
            r"Resource::<\w+ArtifactsBucket\w+\.Arn>/\*",
            "the objects of the pipeline's own artifact bucket: artifact keys are new per execution, so only a prefix "
            "wildcard can name them",
        ),
        (
            r"Action::kms:(GenerateDataKey|ReEncrypt)\*",
            "the data-key actions on the pipeline's own artifact key (the only key named): encrypting an artifact needs "
            "GenerateDataKey and its variants",
        ),
        (
            r"Resource::arn:[\w-]+:logs:[^:]+:ACCOUNT:log-group:/aws/codebuild/<\w+>:\*",
            "CodeBuild's default log group of this one project: its log streams are named per build, so they need a wildcard",
        ),
        (
            r"Resource::arn:[\w-]+:codebuild:[^:]+:ACCOUNT:report-group/<\w+>-\*",
            "the report groups CodeBuild creates for this one project's build-spec reports (named <project>-<report>), "
            "where the JUnit results go",
        ),
        (
            r"Resource::arn:[\w-]+:logs:[^:]+:ACCOUNT:log-group:/aws/codebuild/\*",
            "the asset-publishing role runs every asset project of the pipeline, whose names CDK Pipelines generates: "
            "it may write to their CodeBuild log groups",
        ),
        (
            r"Resource::arn:[\w-]+:codebuild:[^:]+:ACCOUNT:report-group/\*",
            "the asset-publishing role serves every asset project of the pipeline (names generated by CDK Pipelines); "
            "the grant covers only report actions",
        ),
        (
            r"Resource::\*",
            "CDK Pipelines' own statements: cloudformation:DescribeStacks and s3:ListBucket to find the bootstrap "
            "bucket, and the CodeBuild run actions of the asset projects; none of them writes or reads data",
        ),
        (
            r"Resource::arn:\*:iam::ACCOUNT:role/\*",
            "self-mutation assumes only the CDK bootstrap roles (a condition on the aws-cdk:bootstrap-role tag): their "
            "names carry the qualifier and Region, so the ARN needs a wildcard",
        ),
        (
            r"Resource::arn:[\w-]+:execute-api:[^:]+:ACCOUNT:\*",
            "the smoke step calls the staging API, whose id exists only once the staging stack is deployed (another "
            "stack): it may invoke APIs of this account and Region, and nothing else",
        ),
    )
)
ASSET_ROLE_REASON = (
    "CDK Pipelines lets its asset-publishing role start and stop the asset projects it generates (their names are "
    "not known to the policy); only CodeBuild may assume the role, and only the asset projects use it"
)
ARTIFACT_BUCKET_REASONS = {
    "S1": "the artifact bucket is written only by the pipeline's own roles, and CloudTrail records their calls; "
    "access logs would add a second bucket for no new information",
    "CKV_AWS_18": "the artifact bucket is written only by the pipeline's own roles, and CloudTrail records their calls",
    "CKV_AWS_21": "pipeline artifacts are per execution and rebuilt from the source: old versions have nothing to keep",
}


def wildcard_findings(document: object) -> list[str]:
    """The wildcard findings of cdk-nag's IAM5 in a resolved policy document (``Action::s3:GetObject*``,
    ``Resource::<Bucket.Arn>/*``), in cdk-nag's notation."""
    found: list[str] = []
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        for key in ("Action", "Resource"):
            values = statement.get(key, [])
            for value in values if isinstance(values, list) else [values]:
                text = _nag_text(value)
                if "*" in text and f"{key}::{text}" not in found:
                    found.append(f"{key}::{text}")
    return found


def _nag_text(value: object) -> str:
    """An intrinsic as cdk-nag prints it: ``{"Ref": "X"}`` -> ``<X>``, ``Fn::GetAtt`` -> ``<X.Arn>``, joins joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            return f"<{'.'.join(value['Fn::GetAtt'])}>"
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(_nag_text(part) for part in parts)
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            return re.sub(r"\$\{([^}]+)\}", r"<\1>", value["Fn::Sub"])
    return str(value)


def api_url_outputs(stage: Stage) -> list[CfnOutput]:
    """The ``ApiUrl`` output of every stack of ``stage`` that has one, in the stage's order."""
    found = []
    for child in stage.node.children:
        if isinstance(child, Stack):
            output = child.node.try_find_child(API_URL_OUTPUT)
            if isinstance(output, CfnOutput):
                found.append(output)
    return found


def smoke_command(pattern: str | None) -> str:
    """``agentrail smoke`` against ``$API_URL``, signed with SigV4 as the step's role; its exit code gates promotion."""
    return f'{PROJECT_PATH} agentrail smoke --url "$API_URL"' + (f" --pattern {shlex.quote(pattern)}" if pattern else "")


def synth_command(context: Mapping[str, str]) -> str:
    """``cdk synth`` with ``-c key=value`` for each of ``context``, quoted for the shell."""
    arguments = " ".join(f"-c {shlex.quote(f'{key}={value}')}" for key, value in sorted(context.items()))
    return f"cdk synth --no-notices {arguments}".rstrip()


def junit_reports(report: str) -> codebuild.BuildSpec:
    """The buildspec part that hands ``reports/*.xml`` to a CodeBuild report named ``report``."""
    return codebuild.BuildSpec.from_object(
        {"reports": {report: {"files": ["*.xml"], "base-directory": REPORTS_DIR, "file-format": "JUNITXML"}}}
    )


def plain_context(scope: IConstruct) -> dict[str, str]:
    """The app's settings among its context: keys that are lowercase names (``patterns``, ``model``,
    ``pipeline_branch``), leaving out feature flags (``@aws-cdk/...``), the CLI's ``aws:cdk:...`` keys and lookups."""
    return {
        key: str(value)
        for key, value in scope.node.get_all_context().items()
        if re.fullmatch(r"[a-z][a-z0-9_]*", key) and isinstance(value, str | int | float | bool)
    }


__all__ = [
    "PROMOTIONS",
    "AgentPipeline",
    "PipelineOptions",
    "api_url_outputs",
    "plain_context",
    "validate_connection_arn",
    "validate_repository",
    "validate_source",
]
