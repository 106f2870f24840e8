"""What a figure is (:class:`Benchmark`) and what one run shares between figures (:class:`RunContext`).

Figure modules import these; ``registry`` imports the figure modules, so nothing imports in a circle.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.report import Figure

__all__ = ["Benchmark", "RunContext"]


@dataclass
class RunContext:
    """What one ``python -m benchmarks`` run shares between figures.

    Attributes
    ----------
    workdir:
        A temporary folder, removed at the end of the run.
    quick:
        ``--quick``: fewer repetitions, for a smoke run.
    shared:
        Outputs one figure leaves for another (the synthesized apps, so the
        asset figure does not synthesize again).
    """

    workdir: Path
    quick: bool = False
    shared: dict[str, Any] = field(default_factory=dict)

    def progress(self, message: str) -> None:
        """Progress goes to stderr, so stdout holds only the report."""
        print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Benchmark:
    """One figure of the report.

    Parameters
    ----------
    key:
        Its name in ``--only``.
    title:
        Heading in the report.
    run:
        ``run(context, repetitions)`` measures the figure and its baseline.
    repetitions:
        Default repetitions; ``None`` when the figure is deterministic.
    quick_repetitions:
        Repetitions under ``--quick``.
    """

    key: str
    title: str
    run: Callable[[RunContext, int | None], Figure]
    repetitions: int | None = None
    quick_repetitions: int | None = None

    def repetitions_for(self, *, override: int | None, quick: bool) -> int | None:
        if self.repetitions is None:
            return None
        if override is not None:
            return override
        return self.quick_repetitions if quick else self.repetitions
