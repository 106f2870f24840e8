"""The cost chart: valid SVG, one line per platform, a legend, the crossovers marked and the requirement's traffic."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from agentrail_cli.plan.chart import cost_chart_svg
from agentrail_cli.plan.compare import PLATFORM_LABELS, Comparison, ComputeProfile, Platform, compare
from agentrail_cli.plan.cost import estimate
from agentrail_cli.plan.prices import PriceFile
from agentrail_cli.plan.usage import FixedMonthly, TaskUsage
from tests.unit.plan.plan_helpers import counted

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def comparison(shipped_prices: PriceFile) -> Comparison:
    usage = TaskUsage(
        pattern="stateless",
        unit="request",
        quantities={"lambda_requests": counted(1), "lambda_gb_seconds": counted(10), "http_api_requests": counted(1)},
    )
    result = estimate(usage, FixedMonthly(), shipped_prices, "us-east-1", tasks_per_month=100_000)
    profile = ComputeProfile(wall_seconds_per_task=10, vcpus=0.5, concurrency_per_container=20, agentcore_idle_seconds_per_task=0)
    return compare(result, profile, shipped_prices, "us-east-1", at_tasks_per_hour=150)


def parsed(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_the_chart_is_valid_xml_and_accessible(comparison: Comparison) -> None:
    root = parsed(cost_chart_svg(comparison, title="Stateless agent, us-east-1"))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Stateless agent, us-east-1"  # type: ignore[union-attr]
    description = root.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    assert all(crossover.summary in description for crossover in comparison.crossovers)


def test_the_chart_draws_one_path_per_platform_each_with_its_own_colour_and_dash(comparison: Comparison) -> None:
    paths = [element for element in parsed(cost_chart_svg(comparison)).iter(f"{SVG}path") if element.get("class") == "series"]
    assert sorted(path.get("data-platform") or "" for path in paths) == sorted(platform.value for platform in Platform)
    assert len({path.get("stroke") for path in paths}) == 3
    assert len({path.get("stroke-dasharray") for path in paths}) == 3
    for path in paths:
        assert (path.get("d") or "").count("L") == len(comparison.tasks_per_hour) - 1


def test_the_legend_names_every_platform_and_the_crossover_mark(comparison: Comparison) -> None:
    root = parsed(cost_chart_svg(comparison))
    legend = next(group for group in root.iter(f"{SVG}g") if group.get("class") == "legend")
    texts = [text.text for text in legend.iter(f"{SVG}text")]
    assert texts == [*(PLATFORM_LABELS[platform] for platform in Platform), "crossover"]


def test_each_crossover_is_marked_and_labelled(comparison: Comparison) -> None:
    root = parsed(cost_chart_svg(comparison))
    marks = [group for group in root.iter(f"{SVG}g") if group.get("class") == "crossover"]
    expected = [crossover.alternative.value for crossover in comparison.crossovers for _ in crossover.points[:3]]
    assert expected, "the fixture must cross somewhere"
    assert [mark.get("data-platform") for mark in marks] == expected
    for mark in marks:
        assert mark.find(f"{SVG}circle") is not None
        assert "cheaper" in (mark.find(f"{SVG}text").text or "")  # type: ignore[union-attr]


def test_the_axes_have_decade_ticks_and_you_are_here_marks_the_requirement(comparison: Comparison) -> None:
    root = parsed(cost_chart_svg(comparison))
    x_ticks = [text.text for text in root.iter(f"{SVG}text") if text.get("class") == "x-tick"]
    assert x_ticks == ["1", "10", "100", "1k", "10k", "100k", "1M"]
    y_ticks = [text.text or "" for text in root.iter(f"{SVG}text") if text.get("class") == "y-tick"]
    assert y_ticks and all(tick.startswith("$") for tick in y_ticks)
    axis_labels = " ".join(text.text or "" for text in root.iter(f"{SVG}text"))
    assert "tasks per hour" in axis_labels and "USD per month" in axis_labels
    here = next(group for group in root.iter(f"{SVG}g") if group.get("class") == "you-are-here")
    assert "you are here: 150/h" in (here.find(f"{SVG}text").text or "")  # type: ignore[union-attr]


def test_without_a_requirement_traffic_there_is_no_you_are_here(comparison: Comparison) -> None:
    root = parsed(cost_chart_svg(comparison.model_copy(update={"at_tasks_per_hour": None})))
    assert not [group for group in root.iter(f"{SVG}g") if group.get("class") == "you-are-here"]
