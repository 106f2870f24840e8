"""A plan as text: what to build and why, how to deploy it, what it costs, and where containers would win."""

from __future__ import annotations

import textwrap

from agentrail_cli.plan.compare import PLATFORM_LABELS
from agentrail_cli.plan.cost import CostLine
from agentrail_cli.plan.plan import Plan
from agentrail_cli.plan.recommend import Decision
from agentrail_cli.plan.usage import Basis

__all__ = ["money", "render_plan"]

_MARK = {Basis.COUNTED: "", Basis.ESTIMATED: " *", Basis.GIVEN: " †"}


def money(usd: float) -> str:
    """USD with as many digits as a small figure needs: ``$1,234.50``, ``$0.0123``, ``$0.000042``."""
    if usd == 0:
        return "$0"
    if abs(usd) >= 100:
        return f"${usd:,.0f}"
    if abs(usd) >= 1:
        return f"${usd:,.2f}"
    digits = 2
    while abs(usd) < 10 ** (-digits + 1) and digits < 8:
        digits += 1
    return f"${usd:.{digits + 1}f}"


def _seconds(value: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} s"


def _count(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:,.4g}"


def _line(line: CostLine) -> str:
    label = f"{line.model.split(':', 1)[-1]} {line.item}" if line.model else f"{line.service} {line.item}"
    quantity = (
        f"{_count(line.quantity_per_task)} {line.unit.split(' (')[0]}"
        if line.kind != "fixed"
        else f"{_count(line.quantity_per_month)}/month"
    )
    return f"  {label[:58]:<58} {quantity[:30]:<30} {money(line.usd_per_1000_tasks):>11} {money(line.usd_per_month):>11}{_MARK[line.basis]}"


def _decision(mark: str, decision: Decision) -> str:
    return textwrap.fill(
        f"{mark} {decision.subject}: {decision.reason} [{', '.join(decision.driven_by)}]", 118, subsequent_indent="    "
    )


def render_plan(plan: Plan, *, chart_path: str | None = None) -> str:
    """The plan as the CLI prints it."""
    r, rec, cost = plan.requirements, plan.recommendation, plan.cost
    s = rec.settings
    out: list[str] = []
    out.append(f"Plan: {r.name} ({r.region}; prices {cost.prices_version}, as of {cost.prices_as_of})")
    out.append("")
    out.append(f"Recommended: {' + '.join(rec.patterns)}")
    out.extend(_decision("+", d) for d in rec.chosen)
    out.append("Rejected:")
    out.extend(_decision("-", d) for d in rec.rejected)
    out.append("")
    out.append("Settings:")
    settings = [
        f"memory {s.memory_mb} MB ({s.architecture})",
        f"API function timeout {_seconds(s.timeout_seconds)}",
        f"API: {s.api.upper()}" + (" + WebSocket streaming" if s.streaming else ""),
    ]
    optional: tuple[tuple[int | None, str], ...] = (
        (s.worker_timeout_seconds, f"worker timeout {_seconds(s.worker_timeout_seconds or 0)}"),
        (s.execution_timeout_seconds, f"workflow execution timeout {_seconds(s.execution_timeout_seconds or 0)}"),
        (s.batch_size, f"queue batch size {s.batch_size}, worker max concurrency {s.worker_max_concurrency}"),
        (s.reserved_concurrency, f"reserved concurrency {s.reserved_concurrency}"),
        (s.provisioned_concurrency, f"provisioned concurrency {s.provisioned_concurrency}"),
        (s.session_ttl_seconds, f"session TTL {_seconds(s.session_ttl_seconds or 0)}"),
        (s.approval_timeout_seconds, f"approval timeout {_seconds(s.approval_timeout_seconds or 0)}"),
    )
    settings.extend(text for value, text in optional if value)
    if s.security != "standard":
        settings.append(f"security profile: {s.security}")
    out.extend(f"  {line}" for line in settings)
    out.append("")
    out.append(f"Deploy: cdk deploy {rec.cdk_arguments}")
    out.append("Or in app.py:")
    out.extend(f"  {line}" for line in rec.stanza(r).splitlines())
    out.append("")
    out.append(
        f"Cost: one task = {cost.unit}; {r.tasks_per_month:,.0f} tasks a month ({r.requests_per_hour:,.0f} requests an hour)"
    )
    out.append(f"  {'Item':<58} {'Per task':<30} {'Per 1,000':>11} {'Per month':>11}")
    out.extend(_line(line) for line in cost.lines)
    out.append(
        f"  {'Total':<58} {money(cost.usd_per_task) + ' per task':<30} {money(cost.usd_per_1000_tasks):>11} {money(cost.usd_per_month):>11}"
    )
    out.append(
        f"  of which AWS {money(cost.aws_usd_per_task * 1000)} and model tokens {money(cost.token_usd_per_task * 1000)} per 1,000 tasks; fixed {money(cost.fixed_usd_per_month)} a month"
    )
    out.append(
        "  Unmarked: counted in local mode (call-count file). * estimated from documented rates (AWS does it on its side). † given by the requirements."
    )
    out.extend(textwrap.fill(f"  {note}", 118, subsequent_indent="  ") for note in cost.notes)
    if not plan.counts_fresh:
        out.append(
            "  ! The call counts were measured on other code than this; refresh them with the plan_calls benchmark (`python -m benchmarks --only plan_calls` in the agentrail repository)."
        )
    if plan.over_budget:
        out.append(
            f"  ! Over budget: {money(cost.usd_per_month)} a month against {money(r.budget_usd_per_month or 0)}. "
            "Tokens are most of it: a smaller model, fewer model calls per task, or shorter prompts lower it most."
        )
    out.append("")
    out.append("Compute compared (the rest of the bill is the same on every platform):")
    here = r.tasks_per_month / 730
    monthly = ", ".join(f"{PLATFORM_LABELS[p]} {money(usd)}" for p, usd in plan.compute_at_traffic().items())
    out.append(f"  At your {here:,.4g} tasks an hour, compute a month: {monthly}.")
    out.extend(textwrap.fill(f"  {c.summary}", 118, subsequent_indent="    ") for c in plan.comparison.crossovers)
    out.extend(textwrap.fill(f"  {note}", 118, initial_indent="  ", subsequent_indent="    ") for note in plan.comparison.notes)
    if chart_path:
        out.append(f"  Chart of monthly cost against traffic: {chart_path}")
    if rec.warnings:
        out.append("")
        out.append("Warnings:")
        out.extend(textwrap.fill(f"  ! {w}", 118, subsequent_indent="    ") for w in rec.warnings)
    return "\n".join(out) + "\n"
