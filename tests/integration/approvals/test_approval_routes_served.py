"""``POST /approvals/{id}/webhook`` is served, and documented, exactly when webhook decisions are configured."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def test_without_webhook_groups_the_webhook_route_is_neither_served_nor_documented(deployment, api_event, call):
    approvals = deployment(webhook_secret=None, webhook_groups=())

    reply = call(approvals.app, api_event("webhook", approval_id="c936f5d95235cfa5ffa25657ee0bd7e8"))
    document = json.loads(approvals.app.get_openapi_json_schema())

    assert (reply.status, reply.body["error"]) == (404, "not_found")
    assert "/approvals/{approval_id}/webhook" not in document["paths"]
    assert "/approvals/{approval_id}/decision" in document["paths"]


def test_with_webhook_groups_the_webhook_route_is_served_and_documented_with_its_401(deployment, api_event, call):
    approvals = deployment()

    reply = call(approvals.app, api_event("webhook", approval_id="c936f5d95235cfa5ffa25657ee0bd7e8"))
    document = json.loads(approvals.app.get_openapi_json_schema())

    assert (reply.status, reply.body["error"]) == (401, "invalid_signature")
    assert "401" in document["paths"]["/approvals/{approval_id}/webhook"]["post"]["responses"]


def test_the_sam_list_event_lists_the_callers_pending_approvals(deployment, load_event, call):
    approvals = deployment()

    reply = call(approvals.app, load_event("sam/approvals/list.json"))

    assert (reply.status, reply.body) == (200, {"approvals": []})
