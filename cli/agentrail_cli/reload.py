"""Hot reload for ``agentrail local``: an edit to code that functions run is live at once, moto's state kept.

A watcher (watchfiles) follows the project while local mode serves. A change to the source of a
function's code or of a layer (handlers, the runtime, agent and tool code) makes those functions
run from a fresh copy of it, with their warm environments recycled. A change to any other input
of the synth (``app.py``, constructs, ``cdk.json``) may change the templates: local mode synthesizes
again in the background (into ``<state-dir>/resynth/<n>``; the APIs serve the running deployment
meanwhile), and redeploys what changed onto the running local cloud, moto's state kept (see
:meth:`LocalCloud.redeploy`). One line says what was added, updated and removed, and one more line
per change that was not applied. A synth that fails is reported, and the running deployment stays.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from watchfiles import DefaultFilter, watch

from agentrail_cli.synth import SynthError, synthesize
from agentrail_cli.synth_inputs import SynthInputs, changes_since, read_record, synth_inputs
from agentrail_local.awslambda.live_code import IGNORED_FOLDERS
from agentrail_local.cloud import LocalCloud
from agentrail_local.cloudformation.redeploy import AppliedChange

__all__ = ["HotReload", "describe_redeploy"]


def describe_redeploy(files: str, changes: Iterable[AppliedChange]) -> str:
    """``re-synthesized after app.py: updated Handler (AWS::Lambda::Function) [Environment], added ..., removed ...``."""
    applied = [c for c in changes if c.action != "not applied"]
    skipped = [c for c in changes if c.action == "not applied"]
    if not applied and not skipped:
        return f"re-synthesized after {files}: the templates did not change; nothing to redeploy"
    parts = [c.describe() for c in applied]
    if skipped:
        parts.append(f"{len(skipped)} not applied (below)")
    return f"re-synthesized after {files}: {', '.join(parts)}"


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
    patterns, context:
        The arguments of that synth, to tell a template input from code and to synthesize again.
    ready_file:
        Rewritten after each redeploy (new APIs, functions, outputs). Default: none.
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
        ready_file: Path | None = None,
    ) -> None:
        self.cloud = cloud
        self.project = project.resolve()
        self.state_dir = state_dir.resolve()
        self._say = say
        self._patterns = patterns
        self._context = context or {}
        self._ready_file = ready_file
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._synthesized: SynthInputs | None = read_record(self.state_dir / "cdk.out")
        self._pending: list[str] = []
        self._wake = threading.Condition()
        self._synth_thread: threading.Thread | None = None
        self._synths = 0
        #: Set while no re-synth is queued or running (tests and callers wait on it).
        self.settled = threading.Event()
        self.settled.set()

    def start(self) -> HotReload:
        live = self.cloud.watch_code(self.project)
        folders = sorted({str(s.source.relative_to(self.project)) for s in live.sources if s.source.is_relative_to(self.project)})
        shown = ", ".join(folders) if folders else "no function code in this project"
        self._say(f"[agentrail local] hot reload: watching {self.project} (code from {shown})")
        self._thread = threading.Thread(target=self._run, name="agentrail-hot-reload", daemon=True)
        self._thread.start()
        self._synth_thread = threading.Thread(target=self._resynthesize_loop, name="agentrail-resynth", daemon=True)
        self._synth_thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for thread in (self._thread, self._synth_thread):
            if thread is not None:
                thread.join(timeout=5)

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
        current = synth_inputs(self.project, patterns=self._patterns, context=self._context, state_dir=self.state_dir)
        known = set(current.files) | set(self._synthesized.files if self._synthesized is not None else ())
        inputs = sorted({self._relative(p) for p in others} & known)
        if not inputs or not changes_since(self._synthesized, current):
            return
        self.resynthesize(inputs)

    def resynthesize(self, inputs: Iterable[str]) -> None:
        """Queue a re-synth and redeploy after an edit of ``inputs`` (project-relative names); edits made
        while one runs are taken together by the next."""
        with self._wake:
            self._pending.extend(i for i in inputs if i not in self._pending)
            self.settled.clear()
            self._wake.notify_all()

    def _resynthesize_loop(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                while not self._pending and not self._stop.is_set():
                    self.settled.set()
                    self._wake.wait(timeout=1.0)
                inputs, self._pending = self._pending, []
            if not inputs:
                continue
            try:
                self._resynthesize_now(inputs)
            except Exception as error:  # the watcher and the running deployment must outlive any failure here
                self._say(f"[agentrail local] redeploy after {', '.join(inputs)} failed: {type(error).__name__}: {error}")

    def _resynthesize_now(self, inputs: list[str]) -> list[AppliedChange] | None:
        files = ", ".join(inputs[:3]) + (" ..." if len(inputs) > 3 else "")
        self._say(
            f"[agentrail local] {files} changed: synthesizing again in the background (the APIs serve the running deployment meanwhile)"
        )
        started = time.perf_counter()
        current = synth_inputs(self.project, patterns=self._patterns, context=self._context, state_dir=self.state_dir)
        self._synths += 1
        output = self.state_dir / "resynth" / str(self._synths)
        shutil.rmtree(output, ignore_errors=True)
        try:
            synthesize(self.project, output, patterns=self._patterns, context=self._context)
        except SynthError as error:
            lines = [line for line in str(error).splitlines() if line.strip()]
            detail = " | ".join(lines[-6:])
            self._say(f"[agentrail local] re-synthesis after {files} failed; still serving the previous deployment: {detail}")
            shutil.rmtree(output, ignore_errors=True)
            return None
        if self._stop.is_set():  # local mode is stopping: nothing to redeploy onto
            return None
        changes = self.cloud.redeploy(output)
        self._synthesized = current
        seconds = time.perf_counter() - started
        self._say(f"[agentrail local] {describe_redeploy(files, changes)} ({seconds:.1f} s, moto's state kept)")
        for change in changes:
            if change.action == "not applied":
                self._say(f"[agentrail local]   not applied: {change.describe().removeprefix('not applied ')}")
        if self._ready_file is not None:
            self.cloud.write_ready_file(self._ready_file)
        self._remove_unused_synths(keep=output)
        return changes

    def _remove_unused_synths(self, keep: Path) -> None:
        """Delete earlier re-synth folders that no function runs from any more."""
        running = [p.resolve() for p in self.cloud.running_paths()]
        for folder in (self.state_dir / "resynth").iterdir():
            if folder == keep or any(p.is_relative_to(folder.resolve()) for p in running):
                continue
            shutil.rmtree(folder, ignore_errors=True)

    def _label(self, name: str) -> str:
        assert self.cloud.environments is not None
        return next((d.logical_id for d in self.cloud.environments.functions if d.name == name), name)

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.project).as_posix() if path.is_relative_to(self.project) else str(path)
