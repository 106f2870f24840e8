"""Schedules follow local mode's lifecycle: a redeploy fires the new schedule, ``stop()`` ends every thread at once.

A module of its own: one local cloud per process, and each test here starts and stops one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agentrail_local.cloud import LocalCloud
from tests.integration.local.conftest import quiet_cloud
from tests.integration.local.test_schedules import PERIOD, RECORDER_ARN, TEMPLATE, _assembly, _schedule, _wait_for

pytestmark = pytest.mark.slow


def _often_assembly(root: Path, job: str) -> Path:
    resources = {k: v for k, v in TEMPLATE["Resources"].items() if k in ("RecorderRole", "Recorder")}
    resources["Often"] = _schedule("rate(1 minute)", {"Arn": RECORDER_ARN, "Input": json.dumps({"job": job})})
    _assembly(root)
    (root / "Scheduled.template.json").write_text(json.dumps({"Resources": resources}))
    return root


def _start(tmp_path: Path) -> LocalCloud:
    return quiet_cloud(_often_assembly(tmp_path / "cdk.out", "often"), tmp_path / "state", schedule_seconds=PERIOD).start()


def test_a_redeployed_schedule_updates_moto_and_fires_its_new_input(tmp_path: Path) -> None:
    cloud = _start(tmp_path)
    try:
        _wait_for(cloud, "often", 1)

        changes = cloud.redeploy(_often_assembly(tmp_path / "cdk.out.2", "changed"))

        assert [(c.logical_id, c.action, c.properties) for c in changes] == [("Often", "updated", ("Target",))]
        assert _wait_for(cloud, "changed", 2)
        assert cloud.clients is not None
        name = cloud.deployments[0].resource("Often").ref
        target = cloud.clients("scheduler").get_schedule(Name=name)["Target"]
        assert json.loads(target["Input"]) == {"job": "changed"}
    finally:
        cloud.stop()


def test_stop_ends_every_schedule_thread_within_its_bounded_wait(tmp_path: Path) -> None:
    cloud = _start(tmp_path)
    try:
        _wait_for(cloud, "often", 1)
        runner = cloud.schedules
        assert runner is not None and len(runner.targets) == 1
    finally:
        started = time.monotonic()
        cloud.stop()
        took = time.monotonic() - started
    fired = (tmp_path / "state" / "logs").rglob("*.log")
    logged = sum(path.read_text().count("scheduled {") for path in fired)
    time.sleep(3 * PERIOD)

    assert cloud.schedules is None and took < 10
    assert not any(thread.is_alive() for thread in runner._threads)
    assert sum(path.read_text().count("scheduled {") for path in (tmp_path / "state" / "logs").rglob("*.log")) == logged
