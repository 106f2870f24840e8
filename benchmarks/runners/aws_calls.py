"""AWS calls made while a runner measures: how many of each operation, and the time spent inside them.

Imported by the runner scripts beside it (their folder is ``sys.path[0]``).
Against moto in process, the time inside a call is botocore's and moto's CPU
time (serializing, routing, moto's work, parsing), not network latency.
"""

import time
from collections import Counter

__all__ = ["AwsCalls"]


class AwsCalls:
    """Counts AWS calls by operation, and sums the time inside them, while ``on``.

    A call's time runs from its ``provide-client-params`` event (the first
    botocore emits for a call) to its ``after-call`` event; the count is taken
    on ``before-call``.

    Parameters
    ----------
    service:
        Only this service's calls (botocore's event name, e.g. ``dynamodb``),
        counted by operation (``Query``). By default every call, counted by
        ``service.Operation`` (``DynamoDB.Query``).
    """

    def __init__(self, service=None) -> None:
        self.service = service
        self.on = False
        self.reset()

    def reset(self) -> None:
        """Forget every count and time so far."""
        self.counts: Counter[str] = Counter()
        self.ns = 0
        self._started: list[int] = []

    def register(self, events) -> None:
        """Hook into one event emitter: a session's (``session.events``) or a client's (``client.meta.events``).

        Clients built from a session before this call do not get the hooks.
        """
        for event, handler in self._hooks():
            events.register(event, handler)

    def install(self) -> None:
        """Hook into botocore's built-in handlers, so every session made afterwards has the hooks.

        That includes the sessions libraries make for themselves (Powertools idempotency).
        """
        from botocore.handlers import BUILTIN_HANDLERS

        BUILTIN_HANDLERS.extend(self._hooks())

    def _hooks(self) -> list:
        suffix = f".{self.service}" if self.service else ""
        return [
            (f"provide-client-params{suffix}", self._start),
            (f"before-call{suffix}", self._count),
            (f"after-call{suffix}", self._stop),
        ]

    def _start(self, **_) -> None:
        if self.on:
            self._started.append(time.perf_counter_ns())

    def _count(self, model, **_) -> None:
        if self.on:
            self.counts[model.name if self.service else f"{model.service_model.service_id}.{model.name}"] += 1

    def _stop(self, **_) -> None:
        if self.on and self._started:
            self.ns += time.perf_counter_ns() - self._started.pop()
