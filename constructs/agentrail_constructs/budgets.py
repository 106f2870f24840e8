"""DailyBudgets: daily token or USD budgets per tenant and per agent, declared here and enforced by the runtime."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct, IConstruct

from agentrail_constructs.contract import contract
from agentrail_constructs.function import AgentFunction
from agentrail_constructs.renames import check_exclusive
from agentrail_constructs.security import baseline_for
from agentrail_constructs.storage import grant_table, secure_table

#: What a function that calls models does with the counters: reserve and settle (UpdateItem, alone or in a
#: TransactWriteItems, which IAM authorizes as UpdateItem), and read today's spend (GetItem).
BUDGET_TABLE_ACTIONS = ("dynamodb:UpdateItem", "dynamodb:GetItem")
#: The handlers (folder names) whose functions call a model, or refuse a request over budget before queueing it. The
#: multi-agent orchestrator and the task notifier call none. The ASGI handler serves an app whose agent calls one. The
#: batch lane's function calls none itself, but adds what its Bedrock batch jobs spent to the counters.
MODEL_HANDLERS = frozenset(
    {
        "batch_lane",
        "asgi",
        "stateless",
        "sessions",
        "session_worker",
        "stream_worker",
        "tasks",
        "task_worker",
        "task_workflow",
        "router",
        "specialist",
        "supervisor",
    }
)


@dataclass(frozen=True, kw_only=True)
class Budget:
    """A daily budget: each tenant (the caller's principal) or each agent may spend at most ``daily_tokens``
    tokens and/or ``daily_usd`` USD per UTC day. Give at least one limit."""

    per: Literal["tenant", "agent"]
    """``tenant``: each caller (principal; for IAM roles, the role) separately. ``agent``: each agent (its
    definition's name) across all callers."""
    daily_tokens: int | None = None
    """Input plus output tokens per UTC day. Default: no token limit."""
    daily_usd: float | None = None
    """USD per UTC day, priced with the function's price table. Default: no USD limit."""

    def limits(self) -> list[contract.BudgetLimit]:
        """The limits, validated.

        Raises
        ------
        ValueError
            No limit, a limit that is not above zero, or an unknown ``per``: the message names the fix.
        """
        if self.daily_tokens is None and self.daily_usd is None:
            raise ValueError(f"Budget(per={self.per!r}) has no limit: give daily_tokens, daily_usd or both")
        limits = []
        for unit, limit in (("tokens", self.daily_tokens), ("usd", self.daily_usd)):
            if limit is not None:
                try:
                    limits.append(contract.check_budget(self.per, unit, limit))
                except ValueError as error:
                    raise ValueError(f"Budget(per={self.per!r}, daily_{unit}={limit!r}): {error}") from None
        return limits


@dataclass(frozen=True, kw_only=True)
class BudgetOptions:
    """The daily budgets of a pattern and their counters table."""

    budgets: Sequence[Budget] = ()
    """At most one Budget per ``per`` (each may carry a token and a USD limit). Default: none."""
    counter_retention_days: int = contract.BUDGET_COUNTER_RETENTION_DAYS
    """Days a day's counter is kept after the day ends (DynamoDB TTL), for ``agentrail budgets`` and audits.
    Default: 3."""
    encryption_key: kms.IKey | None = None
    """Customer managed key of the counters table. Default: the stack's SecurityBaseline key if any, else an AWS
    managed key."""
    removal_policy: RemovalPolicy = RemovalPolicy.DESTROY
    """Default: DESTROY (the counters are rebuilt from the next request; at worst a tenant gets a fresh day)."""
    point_in_time_recovery: bool = True
    """Default: true. The counters are what stops spending: a table lost by mistake would give every tenant a fresh
    budget mid-day. The table holds a few bytes per tenant and agent per day, so recovery costs next to nothing."""

    def limits(self) -> list[contract.BudgetLimit]:
        """Every limit, validated (see :meth:`Budget.limits`); at least one."""
        if not self.budgets:
            raise ValueError("BudgetOptions declares no budget: add budgets=[Budget(per='tenant', daily_usd=...)]")
        pers = [b.per for b in self.budgets]
        repeated = sorted({p for p in pers if pers.count(p) > 1})
        if repeated:
            raise ValueError(f"more than one Budget per {', '.join(repeated)}: give one Budget its daily_tokens and daily_usd")
        if not 1 <= self.counter_retention_days <= 366:
            raise ValueError(f"counter_retention_days must be between 1 and 366, got {self.counter_retention_days}")
        return [limit for budget in self.budgets for limit in budget.limits()]


class DailyBudgets(Construct):
    """Daily budgets per tenant and per agent, and the DynamoDB table of their counters.

    Call :meth:`enforce_on` for each function that calls a model (or :meth:`enforce_within` for every such function
    under a scope): it gets ``AGENT_BUDGETS`` (the format of ``agentrail_runtime.contract``), ``AGENT_BUDGET_TABLE``
    and ``dynamodb:UpdateItem`` and ``dynamodb:GetItem`` on the table, nothing else (and, for a function that serves
    ``POST /erase``, ``serve_erasure`` called before, ``dynamodb:DeleteItem`` to delete an erased tenant's counters).

    Parameters
    ----------
    options:
        The budgets and the table's settings; required (at least one budget).
    existing_table:
        Your counters table (partition key ``pk``, a string; TTL on ``expires_at``), shared across stacks so a
        tenant's budget covers every pattern. Default: a new table (on demand, encrypted, point-in-time recovery).

    Attributes
    ----------
    table, limits, environment (the variables the functions get)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options: BudgetOptions,
        existing_table: dynamodb.ITable | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.options = options
        self.limits = options.limits()
        baseline = baseline_for(self)
        key = options.encryption_key or (baseline.key if baseline is not None else None)
        if existing_table is not None:
            self.table: dynamodb.ITable = existing_table
        else:
            table = secure_table(
                self,
                "CounterTable",
                partition_key="pk",
                time_to_live_attribute="expires_at",
                encryption_key=key,
                removal_policy=options.removal_policy,
            )
            if not options.point_in_time_recovery:
                table.node.default_child.point_in_time_recovery_specification = None  # type: ignore[union-attr]
            self.table = table
        self.environment = {
            contract.BUDGETS_ENV: contract.budgets_to_env(self.limits),
            contract.BUDGET_TABLE_ENV: self.table.table_name,
            contract.BUDGET_RETENTION_DAYS_ENV: str(options.counter_retention_days),
        }
        self.functions: list[AgentFunction] = []

    def enforce_on(self, agent_function: AgentFunction) -> None:
        """Enforce the budgets in ``agent_function`` (a function whose code calls a model)."""
        if agent_function in self.functions:
            return
        for name, value in self.environment.items():
            agent_function.add_environment(name, value)
        grant_table(self.table, agent_function.function, BUDGET_TABLE_ACTIONS)
        # An erased tenant's counters, if (or once) POST /erase is routed to this function.
        agent_function.when_serving_erasure(lambda: grant_table(self.table, agent_function.function, ("dynamodb:DeleteItem",)))
        agent_function.calls_service("dynamodb")
        if self.table.encryption_key is not None:
            agent_function.acknowledge_key_grants()
        self.functions.append(agent_function)

    def enforce_within(self, scope: IConstruct) -> list[AgentFunction]:
        """Enforce the budgets in every AgentFunction under ``scope`` whose handler calls a model."""
        found = [c for c in scope.node.find_all() if isinstance(c, AgentFunction) and c.handler_code.name in MODEL_HANDLERS]
        for agent_function in found:
            self.enforce_on(agent_function)
        return found


def budgets_for(
    scope: Construct,
    *,
    budget_options: BudgetOptions | None,
    existing_budgets: DailyBudgets | None,
) -> DailyBudgets | None:
    """The daily budgets a pattern construct enforces on its functions: new ones from ``budget_options``, the given
    ``existing_budgets``, or none."""
    check_exclusive(existing_budgets, budget_options, "existing_budgets", "budget_options")
    if existing_budgets is not None:
        existing_budgets.enforce_within(scope)
        return existing_budgets
    if budget_options is None:
        return None
    budgets = DailyBudgets(scope, "Budgets", options=budget_options)
    budgets.enforce_within(scope)
    return budgets


__all__ = ["BUDGET_TABLE_ACTIONS", "MODEL_HANDLERS", "Budget", "BudgetOptions", "DailyBudgets", "budgets_for"]
