"""Old keyword names that keep working for one release, with a ``DeprecationWarning`` naming the new one.

One rule names every construct option (as in AWS Solutions Constructs):
``<x>_options`` configures what the construct creates, ``existing_<x>`` is
what you bring, and passing both fails at synth. Keywords renamed to follow it
are listed once, with :func:`renamed_keywords` on the constructor.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def renamed_keywords(**renames: str) -> Callable[[T], T]:
    """Accept each old keyword (``old="new"``) on a constructor or a class for one more release.

    The old keyword is passed on under its new name with a ``DeprecationWarning``
    that names the new name; giving both is a ``TypeError`` that names the fix.
    Decorating a class (an options dataclass) wraps its ``__init__``.
    """

    def decorate(target: T) -> T:
        if isinstance(target, type):
            target.__init__ = decorate(target.__init__)  # type: ignore[misc]
            return target
        init: Callable[..., Any] = target  # type: ignore[assignment]

        @functools.wraps(init)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            owner = type(self).__name__
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(f"{owner}: pass {new}= only; {old}= is its deprecated name")
                warnings.warn(
                    f"{owner}({old}=...) is deprecated and will be removed in the next release: use {new}=...",
                    DeprecationWarning,
                    stacklevel=_callers_level(),
                )
                kwargs[new] = kwargs.pop(old)
            return init(self, *args, **kwargs)

        wrapper.__renamed_keywords__ = dict(renames)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def renamed_class(old: str, new: type) -> type:
    """For a module's ``__getattr__``: return ``new`` for the old name ``old``, with a ``DeprecationWarning``."""
    warnings.warn(
        f"agentrail_constructs.{old} is deprecated and will be removed in the next release: use {new.__name__}",
        DeprecationWarning,
        stacklevel=3,  # past this function and the module's __getattr__: the line that named it
    )
    return new


def _callers_level() -> int:
    """The ``stacklevel`` of the code that called the constructor, past jsii's metaclass (which calls a
    construct's ``__init__``): Python shows a DeprecationWarning only when it points at the caller's code."""
    level, frame = 2, sys._getframe(2)
    while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).startswith("jsii"):
        level, frame = level + 1, frame.f_back
    return level


def check_exclusive(existing: object, options: object, existing_name: str, options_name: str) -> None:
    """Refuse an existing resource *and* options for a new one (AWS Solutions Constructs' rule)."""
    if existing is not None and options is not None:
        raise ValueError(
            f"pass either {existing_name} or {options_name}, not both: "
            f"{options_name} configures a new resource, {existing_name} reuses yours"
        )


__all__ = ["check_exclusive", "renamed_class", "renamed_keywords"]
