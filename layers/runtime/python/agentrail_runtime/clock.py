"""The one place the runtime reads the wall clock from: :func:`now`, replaceable with :func:`use`.

Every store and service takes ``clock=`` for injection and defaults to :func:`now`, which asks
the installed clock at each call. A test that installs its clock with :func:`use` therefore
reaches every object built from the environment as well (a handler's services, made at import),
including those built before the test started, as in a warm Lambda execution environment.

Durations (latency, back-off) are not read here: they use ``time.perf_counter`` and
``time.sleep``, which no wall-clock change may disturb.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Clock", "now", "use"]

#: Seconds since the Unix epoch, as ``time.time`` gives them.
Clock = Callable[[], float]

_installed: Clock = time.time


def now() -> float:
    """Seconds since the Unix epoch from the installed clock (``time.time`` unless one was installed)."""
    return _installed()


@contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Install ``clock`` as the runtime's clock for the duration of the block, then restore the previous one.

    Parameters
    ----------
    clock:
        Called for every reading; a frozen clock makes expiry and ordering exact in tests.

    Returns
    -------
    A context manager yielding ``clock``.
    """
    global _installed
    previous, _installed = _installed, clock
    try:
        yield clock
    finally:
        _installed = previous
