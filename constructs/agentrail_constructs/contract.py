"""The runtime's contract (``agentrail_runtime.contract``), loaded without importing the runtime package.

Importing ``agentrail_runtime.contract`` the usual way would run
``agentrail_runtime/__init__.py`` and so need pydantic; the contract module
itself uses the standard library only. Loading that one file keeps the
constructs installable without the runtime's dependencies, and both sides read
the same grammar, health check kinds and exception names.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING

from agentrail_constructs.sources import runtime_package_dir

_NAME = "agentrail_runtime.contract"


def _load() -> ModuleType:
    if _NAME in sys.modules:  # the runtime is imported already: share its module
        return sys.modules[_NAME]
    spec = importlib.util.spec_from_file_location(_NAME, runtime_package_dir() / "contract.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from agentrail_runtime import contract
else:
    contract = _load()

__all__ = ["contract"]
