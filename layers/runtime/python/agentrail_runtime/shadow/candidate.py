"""The candidate side: the agent function, invoked through its ``shadow`` alias by the shadow worker, replays one
sampled request with every tool that has side effects in dry-run, and answers with its run's summary.

A shadow run reaches nothing a user or the world sees: no API response (the worker invokes it directly), no session
write (a session turn reads the history the live turn saw and keeps its state changes to itself), no task record, no
approval (a tool that needs one ends the run ``awaiting_approval``, and nothing is stored), no webhook, no tool with
side effects (their declared ``dry_run`` result stands in), no daily budget spent and no agent metric emitted.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.agent.tools import DryRunCall
from agentrail_runtime.models.base import Message
from agentrail_runtime.observability import logger
from agentrail_runtime.service import AgentService
from agentrail_runtime.shadow.models import SHADOW_EVENT_KEY, RunSummary, ShadowRequest

if TYPE_CHECKING:  # a type only: the stateless function that replays requests never loads the sessions package
    from agentrail_runtime.sessions.store import SessionStore


class ShadowCandidate:
    """Runs sampled requests on this function's version of the agent, dry-run.

    Parameters
    ----------
    service:
        The agent this version serves.
    sessions:
        The session store, to read the history of a sampled session turn (read only). Default: none (such a
        request then runs without history).
    history_detail:
        As the sessions serve it: ``compact`` or ``full``.
    """

    def __init__(self, service: AgentService, *, sessions: SessionStore | None = None, history_detail: str = "compact") -> None:
        self.service = service
        self.sessions = sessions
        self.history_detail = history_detail

    def __call__(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The handler's answer to the worker's event: the candidate's :class:`RunSummary` as JSON."""
        request = ShadowRequest.model_validate(event[SHADOW_EVENT_KEY])
        return self.run(request).model_dump(mode="json")

    def run(self, request: ShadowRequest) -> RunSummary:
        history, context = self._history(request)
        calls: list[DryRunCall] = []
        agent = self.service.agent(request.model, dry_run=calls)
        result = agent.run(request.message, history=history, context=context)
        logger.info(
            "shadow run",
            extra={
                "event": "shadow_run",
                "request_id": request.request_id,
                "status": str(result.status),
                "dry_run_calls": len(calls),
            },
        )
        return RunSummary.of(result, agent_version=self.service.version, dry_run_calls=calls)

    def _history(self, request: ShadowRequest) -> tuple[list[Message], ToolContext]:
        if request.kind != "session_turn" or self.sessions is None or not request.session_id or not request.owner:
            return [], ToolContext(correlation_id=request.request_id)
        window = self.sessions.load_window(request.session_id, owner=request.owner)
        # The live turn is committed by now: the candidate sees the history as the live turn saw it, without it.
        before = [turn for turn in window.turns if request.turn is None or turn.number < request.turn]
        history = window.model_copy(update={"turns": before}).history(self.history_detail)  # type: ignore[arg-type]
        context = ToolContext(
            session_id=request.session_id,
            principal=request.owner,
            correlation_id=request.request_id,
            state=copy.deepcopy(window.state.data),  # a tool may change it; nothing ever stores it
        )
        return history, context


__all__ = ["ShadowCandidate"]
