"""Hot reload for ``agentrail local``: an edit to code that functions run is live at once, moto's state kept.

A watcher (watchfiles) follows the project while local mode serves. A change to the source of a
function's code or of a layer (handlers, the runtime, agent and tool code) makes those functions
run from a fresh copy of it, with their warm environments recycled. A change to any other input
of the synth (``app.py``, constructs, ``cdk.json``) may change the templates: local mode says so
and names the file; it does not redeploy while running (restart it, and the next start
synthesizes because the inputs changed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from watchfiles import DefaultFilter, watch

from agentrail_cli.synth_inputs import changes_since, read_record, synth_inputs
from agentrail_local.awslambda.live_code import IGNORED_FOLDERS
from agentrail_local.cloud import LocalCloud

__all__ = ["HotReload"]


class _ProjectFilter(DefaultFilter):
    """watchfiles' defaults, plus the folders local mode writes to (logs, assembly, live copies)."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(ignore_dirs=tuple(set(DefaultFilter.ignore_dirs) | IGNORED_FOLDERS))
        self._state_dir = str(state_dir)

    def __call__(self, change: object, path: str) -> bool:
        return not path.startswith(self._state_dir) and super().__call__(change, path)  # type: ignore[arg-type]


class HotReload:
    """Watch ``project`` while ``cloud`` serves it, and reload what changed (see the module docstring).

    Parameters
    ----------
    cloud:
        The running local cloud, deployed from the assembly synthesized in ``state_dir``.
    project:
        The folder with ``cdk.json``.
    say:
        Receives one line per reload or notice.
    synth_arguments:
        ``patterns`` and ``context`` of that synth, to tell a template input from code.
    """

    def __init__(
        self,
        cloud: LocalCloud,
        project: Path,
        state_dir: Path,
        *,
        say: Callable[[str], None],
        patterns: str | None = None,
        context: dict[str, str] | None = None,
    ) -> None:
        self.cloud = cloud
        self.project = project.resolve()
        self.state_dir = state_dir.resolve()
        self._say = say
        self._patterns = patterns
        self._context = context or {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> HotReload:
        live = self.cloud.watch_code(self.project)
        folders = sorted({str(s.source.relative_to(self.project)) for s in live.sources if s.source.is_relative_to(self.project)})
        shown = ", ".join(folders) if folders else "no function code in this project"
        self._say(f"[agentrail local] hot reload: watching {self.project} (code from {shown})")
        self._thread = threading.Thread(target=self._run, name="agentrail-hot-reload", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        for changes in watch(
            self.project, watch_filter=_ProjectFilter(self.state_dir), stop_event=self._stop, raise_interrupt=False, step=50
        ):
            try:
                self.handle(Path(path) for _, path in changes)
            except Exception as error:  # a reload that fails must not end the watcher
                self._say(f"[agentrail local] hot reload failed: {type(error).__name__}: {error}")

    def handle(self, paths: Iterable[Path]) -> list[str]:
        """Reload the functions whose code holds one of ``paths``; say which template inputs changed besides."""
        changed = sorted({p.resolve() for p in paths})
        started = time.perf_counter()
        reloaded = self.cloud.reload_code(changed)
        if reloaded:
            labels = sorted({self._label(name) for name in reloaded})
            files = ", ".join(self._relative(p) for p in changed[:3]) + (" ..." if len(changed) > 3 else "")
            self._say(
                f"[agentrail local] reloaded {', '.join(labels)} after {files} in {(time.perf_counter() - started) * 1000:.0f} ms "
                "(warm environments recycled, moto's state kept)"
            )
        self._notice_template_inputs(changed)
        return reloaded

    def _notice_template_inputs(self, changed: list[Path]) -> None:
        live = self.cloud.live_code
        others = [p for p in changed if live is None or not any(s.covers(p) for s in live.sources)]
        if not others:
            return
        record = read_record(self.state_dir / "cdk.out")
        current = synth_inputs(self.project, patterns=self._patterns, context=self._context, state_dir=self.state_dir)
        known = set(current.files) | set(record.files if record is not None else ())
        inputs = sorted({self._relative(p) for p in others} & known)
        if not inputs or not changes_since(record, current):
            return
        self._say(
            f"[agentrail local] {', '.join(inputs)} changed: it feeds the synth, so the templates may differ; hot reload "
            "covers code only: restart agentrail local to synthesize and deploy them (moto's state starts afresh)"
        )

    def _label(self, name: str) -> str:
        assert self.cloud.environments is not None
        return next((d.logical_id for d in self.cloud.environments.functions if d.name == name), name)

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.project).as_posix() if path.is_relative_to(self.project) else str(path)
