"""Erasure for data-subject requests: delete everything one principal left in the pattern's stores, pseudonymize it in
the audit trail, and report what was done.

What goes, per store the API that serves ``POST /erase`` keeps (it gives the eraser its own):

- sessions (``AGENT_SESSION_TABLE``): every session the principal owns, all its items (turns and their feedback,
  state, summary, in-flight turn), and its turns offloaded to S3;
- tasks (``AGENT_TASK_TABLE``): every task the principal submitted (with its feedback), its subtasks and run
  checkpoints, and its large results and checkpoints in S3;
- approvals (``AGENT_APPROVAL_TABLE``): every approval the principal requested; in the audit trail
  (``AGENT_APPROVAL_AUDIT_TABLE``), which stays, ``actor`` becomes a pseudonym: ``erased:`` and an HMAC-SHA256 of the
  principal keyed with the salt (``AGENT_ERASE_SALT_SECRET``), the same for every entry of one principal; so does
  ``decided_by`` on the approvals of others it decided (found through its audit entries);
- daily budgets (``AGENT_BUDGET_TABLE``): the principal's tenant counters;
- shadow comparisons (``AGENT_SHADOW_TABLE``): the comparisons of the principal's sampled requests;
- the response cache (``AGENT_RESPONSE_CACHE_TABLE``): the answers cached for the principal by an agent whose tools
  read the caller (answers callers share name nobody, and stay until their TTL);
- streaming (``AGENT_STREAM_*``): the principal's connect tickets, its connections' items, and the event batches of
  the streams of its sessions.

Every step finds its work through an index and deletes the item that index lists last, so an erasure that stops
halfway (a crash, a throttle beyond botocore's retries) is finished by running it again, and a second erasure of the
same principal reports zeros.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentrail_runtime import aws, contract
from agentrail_runtime.aws import principal_matches
from agentrail_runtime.observability import logger

if TYPE_CHECKING:  # each API imports only its own stores (the sessions API has no task or approval code)
    from agentrail_runtime.approvals.store import ApprovalStore, AuditLog
    from agentrail_runtime.budgets import DailyBudgets
    from agentrail_runtime.response_cache import ResponseCache
    from agentrail_runtime.sessions.store import SessionStore
    from agentrail_runtime.shadow.comparisons import ComparisonStore
    from agentrail_runtime.streaming import ConnectionStore, ConnectTickets, EventLog
    from agentrail_runtime.tasks.store import TaskStore

__all__ = [
    "PSEUDONYM_PREFIX",
    "ErasureCounts",
    "ErasureForbidden",
    "ErasureSettings",
    "PrincipalEraser",
    "load_erasure_settings",
    "pseudonym",
]

#: What an erased principal's ``actor`` starts with in the audit trail.
PSEUDONYM_PREFIX = "erased:"


def pseudonym(principal: str, salt: str) -> str:
    """``erased:`` and the first 32 hex digits of HMAC-SHA256(salt, principal): stable for one principal and salt, so
    an erased principal's audit entries still read as one actor, and not reversible without the salt."""
    digest = hmac.new(salt.encode(), principal.encode(), hashlib.sha256).hexdigest()
    return f"{PSEUDONYM_PREFIX}{digest[:32]}"


class ErasureForbidden(Exception):
    """The caller may erase only its own data, unless it is an operator."""


class ErasureCounts(BaseModel):
    """What one erasure did, per kind; all zeros when there was nothing (left) to erase."""

    sessions: int = Field(default=0, description="Sessions deleted")
    session_items: int = Field(default=0, description="Turns, state documents, summaries and in-flight turns deleted")
    session_objects: int = Field(default=0, description="Turns offloaded to S3 deleted")
    tasks: int = Field(default=0, description="Tasks deleted")
    subtasks: int = Field(default=0, description="Subtasks and run checkpoints of those tasks deleted")
    task_objects: int = Field(default=0, description="Large task results and checkpoints deleted from S3")
    feedback: int = Field(default=0, description="Feedback on turns and tasks deleted with them")
    approvals: int = Field(default=0, description="Approvals the principal requested, deleted")
    audit_entries: int = Field(default=0, description="Audit entries whose actor was replaced by the pseudonym")
    decisions: int = Field(
        default=0, description="Approvals the principal decided, whose decided_by was replaced by the pseudonym"
    )
    budget_counters: int = Field(default=0, description="Daily budget counters of the principal (as tenant) deleted")
    shadow_comparisons: int = Field(default=0, description="Shadow comparisons of the principal's requests deleted")
    cached_answers: int = Field(
        default=0, description="Response cache answers keyed per caller for the principal (a tool reads the caller), deleted"
    )
    connect_tickets: int = Field(default=0, description="WebSocket connect tickets issued to the principal, deleted")
    connections: int = Field(default=0, description="The principal's WebSocket connections, forgotten")
    stream_batches: int = Field(default=0, description="Batches of streamed events of the principal's sessions deleted")


class ErasureSettings(BaseSettings):
    """Who may erase, and the salt of audit pseudonyms (``AGENT_ERASE_*``); see the README's settings table."""

    model_config = SettingsConfigDict(env_prefix=contract.ERASE_ENV_PREFIX, extra="ignore", frozen=True)

    #: Principal patterns (fnmatch, a JSON list) that may erase anyone's data, e.g.
    #: ``["iam:arn:aws:iam::123456789012:role/PrivacyOperator"]``; a role pattern admits the role's sessions.
    operators: tuple[str, ...] = ()
    #: Callers in this Cognito group may erase anyone's data.
    operator_group: str = "operators"
    #: The Secrets Manager secret (ARN or name) whose value salts the audit pseudonyms; needed with an audit trail.
    salt_secret: str | None = None


class PrincipalEraser:
    """Erases one principal's data from the stores it is given (each optional).

    Parameters
    ----------
    sessions, tasks, approvals, audit:
        The pattern's stores. Default: none.
    budgets:
        The daily budgets, whose counters of the principal (as tenant) are deleted. Default: none.
    shadow:
        The shadow comparison table, whose comparisons of the principal's requests are deleted. Default: none.
    response_cache:
        The stateless agent's response cache, whose answers keyed per caller for the principal are deleted.
        Default: none.
    connect_tickets, connections, stream_events:
        The streaming tables, whose items of the principal (tickets issued to it, its connections, the event batches
        of its sessions' streams) are deleted. A deleted connection's socket stays open until it closes, but no
        event reaches it (the publisher finds connections through the table). Default: none.
    salt:
        Returns the salt of audit pseudonyms (read when an erasure needs it); an erasure with ``audit`` and no salt
        raises ``RuntimeError`` before it changes anything. Default: the value of the secret
        ``settings.salt_secret`` names, none without it.
    settings:
        Who the operators are, and the salt's secret. Default: ``ErasureSettings()`` as the environment gives it.
    """

    def __init__(
        self,
        *,
        sessions: SessionStore | None = None,
        tasks: TaskStore | None = None,
        approvals: ApprovalStore | None = None,
        audit: AuditLog | None = None,
        budgets: DailyBudgets | None = None,
        shadow: ComparisonStore | None = None,
        response_cache: ResponseCache | None = None,
        connect_tickets: ConnectTickets | None = None,
        connections: ConnectionStore | None = None,
        stream_events: EventLog | None = None,
        salt: Callable[[], str] | None = None,
        settings: ErasureSettings | None = None,
    ) -> None:
        self.sessions = sessions
        self.tasks = tasks
        self.approvals = approvals
        self.audit = audit
        self.budgets = budgets
        self.shadow = shadow
        self.response_cache = response_cache
        self.connect_tickets = connect_tickets
        self.connections = connections
        self.stream_events = stream_events
        self.settings = settings or ErasureSettings()
        salt_secret = self.settings.salt_secret
        if salt is None and salt_secret:
            salt = lambda: aws.read_secret(salt_secret)  # noqa: E731 - read at the first erasure that needs it
        self.salt = salt

    def may_erase(self, caller: str, principal: str, cognito_groups: Sequence[str] = ()) -> bool:
        """The principal itself, or an operator (the Cognito group, or a pattern of ``operators``)."""
        return (
            caller == principal
            or self.settings.operator_group in cognito_groups
            or principal_matches(caller, self.settings.operators)
        )

    def erase_as(self, caller: str, principal: str, cognito_groups: Sequence[str] = ()) -> tuple[ErasureCounts, str | None]:
        """:meth:`erase` on behalf of ``caller``: the counts, and the principal's pseudonym in the audit trail (None
        without one). Raises :class:`ErasureForbidden` when :meth:`may_erase` says no."""
        if not self.may_erase(caller, principal, cognito_groups):
            raise ErasureForbidden
        alias = self.pseudonym_of(principal)
        return self._erase(principal, alias), alias

    def pseudonym_of(self, principal: str) -> str | None:
        """The principal's pseudonym in the audit trail; None without one."""
        return pseudonym(principal, self.salt()) if self.audit is not None and self.salt is not None else None

    def erase(self, principal: str) -> ErasureCounts:
        """Delete ``principal``'s data and pseudonymize it in the audit trail. Idempotent, and safe to run again after
        a failure: the second run finishes what the first left."""
        return self._erase(principal, self.pseudonym_of(principal))

    def _erase(self, principal: str, alias: str | None) -> ErasureCounts:
        if self.audit is not None and alias is None:
            raise RuntimeError("pseudonymizing the audit trail needs AGENT_ERASE_SALT_SECRET (the construct sets it)")
        counts = ErasureCounts()
        if self.sessions is not None:
            for session_id in list(self.sessions.owned_sessions(principal)):
                erased = self.sessions.erase_session(session_id, owner=principal)
                counts.sessions += erased.sessions
                counts.session_items += erased.items
                counts.session_objects += erased.objects
                counts.feedback += erased.feedback
        if self.audit is not None and alias is not None:
            if self.approvals is not None:
                # Before the audit trail: its entries naming the principal are how its decisions on others' approvals
                # are found, so a run that stops between the two finds them again.
                for approval_id in sorted(self.audit.approvals_of(principal)):
                    counts.decisions += self.approvals.pseudonymize_decider(approval_id, principal, alias)
            # Before the approvals: their requests' entries name the principal too.
            counts.audit_entries += self.audit.pseudonymize(principal, alias)
        if self.approvals is not None:
            for approval_id in list(self.approvals.requested_by(principal)):
                counts.approvals += self.approvals.erase(approval_id, requester=principal)
        if self.tasks is not None:
            for task_id in list(self.tasks.owned_tasks(principal)):
                erased_task = self.tasks.erase_task(task_id, owner=principal)
                counts.tasks += erased_task.tasks
                counts.subtasks += erased_task.children
                counts.task_objects += erased_task.objects
                counts.feedback += erased_task.feedback
        if self.budgets is not None:
            counts.budget_counters += self.budgets.erase_tenant(principal)
        if self.shadow is not None:
            counts.shadow_comparisons += self.shadow.erase_owner(principal)
        if self.response_cache is not None:
            counts.cached_answers += self.response_cache.erase_owner(principal)
        if self.connect_tickets is not None:
            counts.connect_tickets += self.connect_tickets.erase_owner(principal)
        if self.connections is not None:
            counts.connections += self.connections.erase_owner(principal)
        if self.stream_events is not None:
            counts.stream_batches += self.stream_events.erase_owner(principal)
        logger.info("principal erased", extra={"event": "principal_erased", **counts.model_dump()})
        return counts


@lru_cache(maxsize=1)
def load_erasure_settings() -> ErasureSettings:
    """The ``AGENT_ERASE_*`` settings, read once per execution environment (tests clear the cache)."""
    return ErasureSettings()
