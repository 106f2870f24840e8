"""Where local mode writes what a developer watches: function logs, one line per request, warnings."""

from collections.abc import Callable

#: Receives one line of text, without its newline.
Console = Callable[[str], None]

__all__ = ["Console"]
