"""``AGENT_VERSION`` stamped at synth, computed by the runtime in a subprocess (the constructs never import it).

An :class:`~agentrail_constructs.function.AgentFunction` queues its :func:`version_request` (:func:`queue_request`)
and stamps :func:`version_token`: a lazy string that resolves during synthesis. The first one resolved runs ``python -m agentrail_runtime.versions`` once
for every version still pending, so a synth of many functions starts one subprocess; answers are kept for the rest of
the process, keyed by the definition, the versioned settings and a digest of the files they are read from (the
definition module's folder, the agent code folder, the runtime package: each file's path, size and modification
time), so an edited prompt file is never answered from the cache.

The same answer names the Bedrock prompts the agent reads at cold start (:func:`resolve_answer`), so the function's
role is granted ``bedrock:GetPrompt`` on exactly those, without importing the runtime or calling AWS; and whether a
response cache may serve the agent (every tool ``cacheable=True``), which ``ResponseCache`` checks at synth; and the
names of its tools, which ``BatchLane`` checks at synth (a Bedrock batch job runs no tools).

When the runtime cannot run here (the app's Python lacks its dependencies: ``pip install 'agentrail-aws[runtime]'``)
or the definition fails to import, the version is a hash of those same inputs instead, with a warning on stderr: it
still changes with every change of the prompt files, the definition's code or the settings, but it is not the value
the runtime would compute.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import Annotations, IStableStringProducer, Lazy, Token
from constructs import IConstruct

from agentrail_constructs.sources import runtime_package_dir

#: The settings an agent's version depends on (``agentrail_runtime.agent.version.version_inputs``), besides the files.
VERSIONED_SETTINGS = (
    "AGENT_DEFINITION",
    "AGENT_MODEL",
    "AGENT_ALLOWED_MODELS",
    "AGENT_STEP_MODELS",
    "AGENT_SYSTEM_PROMPT",
    "AGENT_MAX_STEPS",
    "AGENT_TOKEN_BUDGET",
    "AGENT_MAX_OUTPUT_TOKENS",
    "AGENT_MAX_TOOL_RESULT_BYTES",
    "AGENT_OPENAI_API_KEY_SECRET",  # not versioned, but openai models fail validation without one
)
_UNRESOLVED = "unresolved-at-synth"
_IGNORED_PARTS = {"__pycache__", ".git", "node_modules", ".venv", "cdk.out", ".agentrail"}


@dataclass(frozen=True)
class VersionRequest:
    """One function's version inputs: its versioned ``AGENT_*`` settings and where its agent's code is."""

    settings: tuple[tuple[str, str], ...]
    code_paths: tuple[str, ...]
    digest: str

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.settings)


@dataclass(frozen=True)
class VersionAnswer:
    """What the runtime answered for one request: the version, and the Bedrock prompt references the agent reads at
    cold start (``{"bedrock_prompt": ID or ARN, "version": ..., "variant": ...}``), whether a response cache may
    serve it (``{"cacheable": bool, "reason": one sentence or None, "per_caller": bool}``), and the names of its tools
    (what ``BatchLane`` checks: a batch job runs none); ``prompts``, ``response_cache`` and ``tools`` are None when the
    runtime could not answer (the version is then the fallback hash)."""

    version: str
    prompts: tuple[Mapping[str, str | None], ...] | None
    response_cache: Mapping[str, Any] | None = None
    tools: tuple[str, ...] | None = None


_known: dict[VersionRequest, VersionAnswer] = {}
_pending: list[VersionRequest] = []


def _tree_digest(folder: Path, into: hashlib._Hash) -> None:
    """Every file's path, size and modification time under ``folder``: an edit changes it, reading nothing."""
    for path in sorted(folder.rglob("*")):
        if not _IGNORED_PARTS.intersection(path.parts) and path.suffix not in (".pyc", ".pyo") and path.is_file():
            stat = path.stat()
            into.update(f"{path.as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())


def _module_folder(module: str, search: list[str]) -> Path | None:
    """The folder of ``module``'s file, found on ``search`` without importing anything."""
    parts = module.split(".")
    for root in search:
        base = Path(root or ".").joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate.parent
    return None


def _code_paths(agent_code: str | Path | None) -> tuple[str, ...]:
    """Where the subprocess finds the agent: the agent code folder, this runtime, then the app's own path."""
    paths = [str(Path(agent_code).resolve())] if agent_code else []
    paths.append(str(runtime_package_dir().parent))
    paths.extend(p for p in sys.path if p and p not in paths)
    return tuple(paths)


def version_request(environment: Mapping[str, str], *, agent_code: str | Path | None) -> VersionRequest:
    """What a function's version depends on, read from the environment its construct writes."""
    settings = []
    for key in VERSIONED_SETTINGS:
        value = environment.get(key)
        if value is not None:
            settings.append((key, _UNRESOLVED if Token.is_unresolved(value) else value))
    paths = _code_paths(agent_code)
    digest = hashlib.sha256()
    folders = {runtime_package_dir()}
    if agent_code:
        folders.add(Path(agent_code).resolve())
    definition = dict(settings).get("AGENT_DEFINITION", "agentrail_runtime.demo:definition")
    found = _module_folder(definition.partition(":")[0], list(paths))
    if found is not None:
        folders.add(found.resolve())
    for folder in sorted(folders):
        _tree_digest(folder, digest)
    return VersionRequest(settings=tuple(settings), code_paths=paths, digest=digest.hexdigest())


def _fallback(request: VersionRequest) -> str:
    canonical = json.dumps([request.settings, request.digest], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _compute(requests: list[VersionRequest]) -> None:
    """Ask the runtime for the versions of ``requests``: one subprocess per group that shares a code path."""
    groups: dict[tuple[str, ...], list[VersionRequest]] = {}
    for request in requests:
        groups.setdefault(request.code_paths, []).append(request)
    for paths, group in groups.items():
        environment = {key: value for key, value in os.environ.items() if not key.startswith("AGENT_")}
        environment["PYTHONPATH"] = os.pathsep.join(paths)
        try:
            result = subprocess.run(
                [sys.executable, "-m", "agentrail_runtime.versions"],
                input=json.dumps([request.environment for request in group]),
                capture_output=True,
                text=True,
                env=environment,
                check=False,
            )
            answers = json.loads(result.stdout) if result.returncode == 0 else None
            failure = result.stderr.strip()[-400:]
        except (OSError, ValueError) as error:
            answers, failure = None, str(error)
        for index, request in enumerate(group):
            answer: dict[str, Any] = answers[index] if answers is not None else {"error": failure}
            if "version" in answer:
                tools = answer.get("tools")
                _known[request] = VersionAnswer(
                    answer["version"],
                    tuple(answer.get("prompts", ())),
                    answer.get("response_cache"),
                    tuple(tools) if tools is not None else None,
                )
            else:
                _known[request] = VersionAnswer(_fallback(request), None)
                print(
                    f"agentrail: AGENT_VERSION of {request.environment.get('AGENT_DEFINITION')} is a hash of its files "
                    f"and settings: the runtime could not compute it here ({answer['error']}); "
                    "`pip install 'agentrail-aws[runtime]'` in the app's Python gives the runtime's own value",
                    file=sys.stderr,
                )


def resolve_answer(request: VersionRequest) -> VersionAnswer:
    """The runtime's answer for ``request``: computed now, with every other pending request, unless known already."""
    if request not in _known:
        batch = [r for r in dict.fromkeys([*_pending, request]) if r not in _known]
        _pending.clear()
        _compute(batch)
    return _known[request]


def resolve_version(request: VersionRequest) -> str:
    """The version for ``request`` (see :func:`resolve_answer`)."""
    return resolve_answer(request).version


def queue_request(request: VersionRequest) -> VersionRequest:
    """Have ``request`` answered with the next batch (one subprocess for every request queued by then)."""
    if request not in _known and request not in _pending:
        _pending.append(request)
    return request


@jsii.implements(IStableStringProducer)
class _VersionProducer:
    def __init__(self, request: VersionRequest) -> None:
        self._request = request

    def produce(self) -> str:
        return resolve_version(self._request)


def version_token(request: VersionRequest) -> str:
    """A lazy string resolving, at synth, to the version of ``request`` (queue it first with :func:`queue_request`,
    so that it is answered in the same batch as the others)."""
    return Lazy.string(_VersionProducer(request))


def warn_unchecked(scope: IConstruct, warning_id: str, agent_path: str, what: str, consequence: str) -> None:
    """Say, as a synth warning on ``scope`` and on stderr, that the runtime could not load the agent of
    ``agent_path`` here, so ``what`` was not checked at synth; ``consequence`` says what happens instead."""
    message = (
        f"could not check at synth that the agent of {agent_path} {what} (the runtime could not load its definition "
        f"here); {consequence}"
    )
    Annotations.of(scope).add_warning_v2(warning_id, message)
    print(f"agentrail: {message}", file=sys.stderr)


__all__ = [
    "VERSIONED_SETTINGS",
    "VersionAnswer",
    "VersionRequest",
    "queue_request",
    "resolve_answer",
    "resolve_version",
    "version_request",
    "version_token",
    "warn_unchecked",
]
