"""``python -m benchmarks [--only cold,warm,synth,assets] [--repeat N] [--quick] [--check] [--base REV]``.

Prints a Markdown report on stdout (progress on stderr) and writes the same
figures to ``benchmarks/results/latest.json``. Exit status: 0, or 1 when a
figure could not be measured, or with ``--check`` when a target was missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks.base_revision import BaseCheckout, before_and_after
from benchmarks.benchmark import RunContext
from benchmarks.registry import all_benchmarks
from benchmarks.report import RESULTS_DIR, Figure, machine_facts, render, started_at, write_json


def _parse(argv: list[str] | None, keys: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Speed and size figures of agentrail, each a ratio against a baseline measured in the same run.",
    )
    parser.add_argument(
        "--only",
        type=lambda text: [part.strip() for part in text.split(",") if part.strip()],
        default=keys,
        help=f"comma-separated figures to run (default: all of {','.join(keys)})",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        metavar="N",
        help="repetitions of every selected figure: fresh processes (cold), invocations per handler (warm), "
        "synths per app (synth); default 15, 2000, 3",
    )
    parser.add_argument("--quick", action="store_true", help="few repetitions, for a smoke run (5, 300, 1)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--base",
        metavar="REV",
        help="also measure each figure on revision REV (a git worktree), right before this checkout's, and report "
        "before and after",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json", help="JSON results file")
    args = parser.parse_args(argv)
    unknown = [key for key in args.only if key not in keys]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(keys)}")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def main(argv: list[str] | None = None) -> int:
    registry = all_benchmarks()
    args = _parse(argv, list(registry))
    selected = [b for key, b in registry.items() if key in args.only]
    run_info = {
        "started": started_at(),
        "figures": [b.key for b in selected],
        "quick": args.quick,
        "repetitions": {b.key: b.repetitions_for(override=args.repeat, quick=args.quick) for b in selected},
        "load_average_1min": {"start": _load()},
    }
    figures: list[Figure] = []
    failed = False
    began = time.perf_counter()
    before: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="agentrail-bench-") as workdir:
        context = RunContext(workdir=Path(workdir), quick=args.quick)
        base = BaseCheckout.create(args.base, Path(workdir)) if args.base else None
        if base is not None:
            run_info["base_revision"] = base.revision
        for benchmark in selected:
            repetitions = run_info["repetitions"][benchmark.key]
            if base is not None:
                context.progress(f"{benchmark.title}: the base revision {base.revision[:12]} first")
                try:
                    report = base.run(
                        benchmark.key, repeat=args.repeat, quick=args.quick, output=Path(workdir) / f"base-{benchmark.key}.json"
                    )
                    before[benchmark.key] = [row for figure in report["figures"] for row in figure["results"]]
                except Exception:  # a figure the base revision lacks or cannot measure: "after" only
                    traceback.print_exc()
            context.progress(f"{benchmark.title}: starting ({repetitions or 1} repetition(s))")
            started = time.perf_counter()
            try:
                figure = benchmark.run(context, repetitions)
            except Exception as error:  # one broken figure must not hide the others
                failed = True
                traceback.print_exc()
                figure = Figure(key=benchmark.key, title=benchmark.title, notes=[f"NOT MEASURED: {error}"])
            figure.seconds = time.perf_counter() - started
            figures.append(figure)
        if base is not None:
            base.remove()
    run_info["seconds"] = round(time.perf_counter() - began, 1)
    run_info["load_average_1min"]["end"] = _load()
    machine = machine_facts()
    print(render(figures, machine, run_info))
    if base is not None:
        after = {figure.key: [result.to_dict() for result in figure.results] for figure in figures}
        print("\n".join(["", *before_and_after(before, after)]))
        run_info["before"] = before
    write_json(args.output, figures, machine, run_info)
    print(f"\nWrote {args.output.resolve()} ({run_info['seconds']} s in all).")
    missed = any(r.passed is False for f in figures for r in f.results)
    return 1 if failed or (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
