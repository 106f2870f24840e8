"""Where local mode writes what a developer watches: function logs, one line per request, warnings."""

import sys
from collections.abc import Callable

#: Receives one line of text, without its newline.
Console = Callable[[str], None]


def print_warning(message: str) -> None:
    """The default warning console: ``warning: ...`` on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def print_notice(message: str) -> None:
    """The default notice console: ``notice: ...`` on stderr."""
    print(f"notice: {message}", file=sys.stderr, flush=True)


__all__ = ["Console", "print_notice", "print_warning"]
