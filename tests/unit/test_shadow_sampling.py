"""The shadow sample is a hash of the request id (the same request is always in or out), and a tool with side effects
declares what it returns in a shadow run."""

from __future__ import annotations

import pytest

from agentrail_runtime.agent import DryRunCall, tool
from agentrail_runtime.agent.tools import DRY_RUN_DEFAULT
from agentrail_runtime.shadow import ShadowSampler, sampled

REQUEST_IDS = [f"c6af9ac6-7b61-11e6-9a41-{n:012d}" for n in range(10_000)]


def test_the_same_request_id_is_always_in_or_always_out_of_the_sample():
    first = [sampled(rid, 10) for rid in REQUEST_IDS[:500]]
    again = [sampled(rid, 10) for rid in REQUEST_IDS[:500]]

    assert first == again


def test_about_the_given_share_of_request_ids_is_sampled():
    share = sum(sampled(rid, 10) for rid in REQUEST_IDS) / len(REQUEST_IDS)

    assert 0.09 <= share <= 0.11  # deterministic: the hash of these 10,000 ids, a tolerance of one point


def test_a_larger_share_keeps_every_request_a_smaller_one_sampled():
    assert all(sampled(rid, 50) for rid in REQUEST_IDS[:2000] if sampled(rid, 5))


def test_zero_samples_nothing_and_a_hundred_samples_everything():
    assert not any(sampled(rid, 0) for rid in REQUEST_IDS[:100])
    assert all(sampled(rid, 100) for rid in REQUEST_IDS[:100])


def test_a_sampler_without_a_queue_samples_nothing_whatever_its_share():
    sampler = ShadowSampler(queue_url=None, percent=100, sqs=object())

    assert sampler.percent == 0
    assert sampler.offer("req", lambda: pytest.fail("nothing is built for a request out of the sample")) is False


def test_a_share_out_of_range_is_refused():
    with pytest.raises(ValueError, match="percent must be between 0 and 100"):
        ShadowSampler(queue_url="https://sqs/q", percent=101)


def test_a_dry_run_result_on_a_tool_without_side_effects_is_refused():
    with pytest.raises(ValueError, match="only a tool with side_effects=True has one"):

        @tool(dry_run={"sent": False})
        def read_only(x: int) -> int:
            """Reads."""
            return x


def test_a_tool_with_side_effects_in_dry_run_returns_its_declared_result_and_records_the_call():
    ran: list[int] = []

    @tool(side_effects=True, dry_run={"charged": False})
    def charge(cents: int) -> dict[str, bool]:
        """Charge the card."""
        ran.append(cents)
        return {"charged": True}

    calls: list[DryRunCall] = []
    stub = charge.in_dry_run(calls)

    assert stub.invoke(stub.validate({"cents": 500})) == {"charged": False}
    assert ran == []
    assert calls == [DryRunCall(tool="charge", arguments={"cents": 500}, result={"charged": False})]


def test_a_tool_with_side_effects_that_declares_nothing_returns_the_default_stub_and_others_run_as_they_are():
    @tool(side_effects=True)
    def notify(who: str) -> str:
        """Notify someone."""
        return "notified"

    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    calls: list[DryRunCall] = []

    assert notify.in_dry_run(calls).invoke(notify.validate({"who": "ops"})) == {**DRY_RUN_DEFAULT, "tool": "notify"}
    assert add.in_dry_run(calls) is add
