"""PatternStack: what every pattern's stack carries, a description and the ``agentrail:pattern`` tag."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

from aws_cdk import CfnOutput, Stack, Tags
from aws_cdk import aws_sns as sns
from constructs import Construct

from agentrail_constructs.api import AgentApi, AgentApiOptions
from agentrail_constructs.budgets import BudgetOptions, DailyBudgets
from agentrail_constructs.contract import contract
from agentrail_constructs.deployment import DEFAULT_DEPLOYMENT, DeploymentOptions
from agentrail_constructs.monitoring import AgentMonitoring, MonitoringOptions
from agentrail_constructs.operator_console import OperatorConsole, OperatorUserPool
from agentrail_constructs.security import SecurityBaseline, SecurityBaselineOptions
from agentrail_constructs.shadow import ShadowOptions

#: ``security=`` of a PatternStack (``cdk -c security=...``).
SECURITY_PROFILES = ("standard", "hardened")
#: The patterns whose stack serves the operator console (``console=True``, ``cdk -c console=true``): the task APIs.
CONSOLE_PATTERNS = ("async", "multiagent", "hierarchical")


class PatternStack(Stack):
    """A stack of one agentrail pattern: described as ``agentrail: <summary>``, every resource tagged
    ``agentrail:pattern=<pattern>``.

    Parameters
    ----------
    pattern:
        The pattern's name (``cdk deploy -c patterns=<pattern>``).
    summary:
        What the stack deploys, in a few words.
    security:
        ``standard``: encryption with AWS managed keys, functions outside any VPC, nothing billed while idle.
        ``hardened``: a :class:`SecurityBaseline` first (one customer managed key, private subnets with VPC endpoints,
        restricted egress, S3 access logs), which every construct of the stack then uses. Default: ``standard``.
    security_options:
        Options of the SecurityBaseline (``hardened`` only). Default: ``SecurityBaselineOptions()``.
    monitoring:
        Create an :class:`AgentMonitoring` (one dashboard, the alarms and their SNS topic) once the pattern is built.
        Default: true.
    monitoring_options:
        See :class:`MonitoringOptions`. Default: ``MonitoringOptions()``.
    existing_alarm_topic:
        A topic of yours that the alarms notify. Default: a new topic.
    budget_options:
        Daily token or USD budgets per tenant and per agent (see :class:`BudgetOptions`), enforced in every function
        of the pattern that calls a model, with a new counters table. Default: no budgets.
    existing_budgets:
        A :class:`DailyBudgets` of yours (one counters table and one set of budgets shared by several stacks).
        Not with ``budget_options``. Default: none.
    deployment_options:
        How new versions reach the ``live`` alias of every function of the stack whose ``AgentFunctionOptions``
        leave ``deployment_options`` at its default (see :class:`DeploymentOptions`); None: no CodeDeploy, aliases
        move at once. Default: ``DeploymentOptions()`` (canary, 10% for 5 minutes, rollback alarms, pre-traffic hook).
    shadow_options:
        Shadow deployment of every function of the stack that serves shadow runs (the stateless agent, the sessions API) and whose
        ``AgentFunctionOptions`` give none (see :class:`ShadowOptions`). Default: none.
    console:
        Serve the operator console in front of the pattern's REST API (the ``CONSOLE_PATTERNS`` only): an
        :class:`OperatorUserPool` first, whose access tokens (scope ``agents/invoke``) the API then requires instead
        of SigV4, and an :class:`OperatorConsole`; outputs ``ConsoleUrl`` and ``OperatorUserPoolId``. Default: false.

    Attributes
    ----------
    pattern, security, baseline (None unless hardened), deployment_options, shadow_options, monitoring (None until the pattern is built, or when turned off),
    budgets (None without budgets, or until the pattern is built), operators (None without ``console``),
    console (None without ``console``, or until the pattern is built)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pattern: str,
        summary: str,
        security: Literal["standard", "hardened"] = "standard",
        security_options: SecurityBaselineOptions | None = None,
        monitoring: bool = True,
        monitoring_options: MonitoringOptions | None = None,
        existing_alarm_topic: sns.ITopic | None = None,
        budget_options: BudgetOptions | None = None,
        existing_budgets: DailyBudgets | None = None,
        deployment_options: DeploymentOptions | None = DEFAULT_DEPLOYMENT,
        shadow_options: ShadowOptions | None = None,
        console: bool = False,
        **kwargs: Any,
    ) -> None:
        if deployment_options is not None:
            deployment_options.validate()
        if shadow_options is not None:
            shadow_options.validate()
        if budget_options is not None and existing_budgets is not None:
            raise ValueError(
                "pass either existing_budgets or budget_options, not both: budget_options configures new budgets, "
                "existing_budgets reuses yours"
            )
        if budget_options is not None:
            budget_options.limits()  # a bad declaration fails before anything is built
        if not monitoring and (monitoring_options is not None or existing_alarm_topic is not None):
            raise ValueError(
                "monitoring_options and existing_alarm_topic configure the stack's monitoring: drop them, or drop "
                "monitoring=False"
            )
        if security not in SECURITY_PROFILES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_PROFILES)}, got {security!r}")
        if security_options is not None and security != "hardened":
            raise ValueError("security_options configure the hardened profile: pass security='hardened' too")
        if console and pattern not in CONSOLE_PATTERNS:
            raise ValueError(
                f"console=True serves the operator console in front of a task API, which the {pattern} pattern has "
                f"not: only the {', '.join(CONSOLE_PATTERNS)} patterns have a console"
            )
        profile = " (hardened)" if security == "hardened" else ""
        super().__init__(scope, construct_id, description=f"agentrail: {summary}{profile}", **kwargs)
        Tags.of(self).add("agentrail:pattern", pattern)
        self.pattern = pattern
        self.security = security
        self.deployment_options = deployment_options
        self.shadow_options = shadow_options
        self.baseline: SecurityBaseline | None = None
        if security == "hardened":
            self.baseline = SecurityBaseline(self, "Security", options=security_options)
        self._monitoring_wanted = monitoring
        self._monitoring_options = monitoring_options
        self._existing_alarm_topic = existing_alarm_topic
        self.monitoring: AgentMonitoring | None = None
        self._budget_options = budget_options
        self.budgets: DailyBudgets | None = existing_budgets
        # The pool comes first: the API the pattern builds next authenticates with its tokens.
        self.operators = OperatorUserPool(self, "Operators") if console else None
        self.console: OperatorConsole | None = None

    def operator_api_options(self, api_options: AgentApiOptions | None) -> AgentApiOptions | None:
        """``api_options`` with the operators' pool as the API's auth when the stack serves the console (pass the
        result to the pattern's construct); else ``api_options`` as given.

        Raises
        ------
        ValueError
            With an HTTP API, or an auth other than the default ``ApiAuth.iam()``.
        """
        if self.operators is None:
            return api_options
        options = api_options or AgentApiOptions()
        if options.kind != "rest":
            raise ValueError(
                "console=True needs a REST API: an HTTP API's JWT authorizer accepts only the app clients it was "
                "created with, and the console's is created after it; drop AgentApiOptions(kind='http')"
            )
        if options.auth.kind != "iam":
            raise ValueError(
                f"console=True authenticates the API with the operators' user pool, but api_options asks for "
                f"{options.auth.kind}: leave AgentApiOptions.auth at its default, or compose OperatorConsole yourself"
            )
        return replace(options, auth=self.operators.api_auth)

    def add_console(self, api: AgentApi, *, groups: Sequence[str] = ()) -> OperatorConsole | None:
        """The stack's :class:`OperatorConsole` in front of ``api`` (built with :meth:`operator_api_options`), with
        ``groups`` (e.g. the approvals' approver and escalation groups) added to the operators' pool; the console's
        URL and the pool's id are the ``ConsoleUrl`` and ``OperatorUserPoolId`` outputs. None without ``console``."""
        if self.operators is None:
            return None
        if self.console is None:
            for group in groups:
                self.operators.add_group(group)
            self.console = OperatorConsole(self, "Console", user_pool=self.operators.user_pool, api=api)
            # The console outputs its URL itself: named ConsoleUrl in the stack, it is output once.
            url_output = self.console.node.try_find_child("ConsoleUrl")
            if isinstance(url_output, CfnOutput):
                url_output.override_logical_id("ConsoleUrl")
            else:
                self.add_outputs(ConsoleUrl=self.console.url)
            self.add_outputs(OperatorUserPoolId=self.operators.user_pool.user_pool_id)
        return self.console

    def add_budgets(self) -> DailyBudgets | None:
        """Enforce the stack's daily budgets in every function built so far that calls a model (call it once the
        pattern is built); the counters table's name and the budgets are the ``BudgetTableName`` and ``Budgets``
        outputs (what ``agentrail budgets`` reads)."""
        if self.budgets is None and self._budget_options is not None:
            self.budgets = DailyBudgets(self, "DailyBudgets", options=self._budget_options)
        if self.budgets is not None:
            self.budgets.enforce_within(self)
            if self.budgets.node.scope is self:
                self.add_outputs(
                    BudgetTableName=self.budgets.table.table_name, Budgets=self.budgets.environment[contract.BUDGETS_ENV]
                )
        return self.budgets

    def add_monitoring(self) -> AgentMonitoring | None:
        """Create the stack's :class:`AgentMonitoring` over everything built so far (call it last), unless the
        stack was told ``monitoring=False``."""
        if self._monitoring_wanted and self.monitoring is None:
            self.monitoring = AgentMonitoring(
                self, "Monitoring", options=self._monitoring_options, existing_alarm_topic=self._existing_alarm_topic
            )
        return self.monitoring

    def add_outputs(self, **values: str) -> None:
        """One stack output per keyword, in order: ``add_outputs(ApiUrl=agent.url)``."""
        for name, value in values.items():
            CfnOutput(self, name, value=value)
