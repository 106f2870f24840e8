"""The order in which a runner measures its sides: blocks alternating A B B A, so drift over the run (a warming
cache, a busy neighbour) falls on both sides alike.

Imported by the runner scripts beside it (their folder is ``sys.path[0]``).
"""

from collections.abc import Callable, Sequence

__all__ = ["in_alternating_blocks"]


def in_alternating_blocks(names: Sequence[str], count: int, block: int, measure: Callable[[str, int], None]) -> None:
    """Call ``measure(name, index)`` ``count`` times for each of ``names`` (``index`` 0 to ``count - 1``), in blocks of
    ``block`` calls of one name, the order of the names reversed every round (A B, B A, A B, ...)."""
    done = dict.fromkeys(names, 0)
    forward = True
    while any(calls < count for calls in done.values()):
        for name in names if forward else list(reversed(names)):
            for _ in range(min(block, count - done[name])):
                measure(name, done[name])
                done[name] += 1
        forward = not forward
