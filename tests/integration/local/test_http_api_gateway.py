"""Local mode serves an HTTP API (``-c api=http``): ``AWS::ApiGatewayV2::*`` read from the template, payload 2.0
events, IAM SigV4, stage throttling and access logs, over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentrail_cli.client import IamAuth
from agentrail_cli.synth import synthesize
from agentrail_local.apigateway.auth import DEFAULT_PRINCIPALS
from agentrail_local.apigateway.model import TokenBucket
from agentrail_local.cloud import ApiEndpoint, LocalCloud

pytestmark = pytest.mark.slow
ALICE, BOB = DEFAULT_PRINCIPALS[:2]
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def http_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real app's stateful stack under ``-c api=http``, synthesized by the pinned CDK CLI."""
    output = tmp_path_factory.getbasetemp() / "assembly-stateful-http"
    if not (output / "manifest.json").is_file():
        synthesize(REPO_ROOT, output, patterns="stateful", context={"api": "http"})
    return output


@pytest.fixture(scope="module")
def cloud(local_cloud: Callable[..., LocalCloud], http_assembly: Path) -> LocalCloud:
    return local_cloud(http_assembly)


@pytest.fixture(scope="module")
def api(cloud: LocalCloud) -> ApiEndpoint:
    """The stateful pattern's API, which must be the HTTP API of the template."""
    (served,) = cloud.apis
    assert served.kind == "http"
    return cloud.endpoint(pattern="stateful")


def _http(api: ApiEndpoint, principal: Any | None = ALICE) -> httpx.Client:
    auth = IamAuth.from_keys(principal.access_key_id, principal.secret_access_key) if principal else None
    return httpx.Client(base_url=api.url + "/", auth=auth, timeout=30)


def test_the_http_api_deploys_from_its_apigatewayv2_resources_without_warnings(cloud: LocalCloud, api: ApiEndpoint) -> None:
    (deployment,) = cloud.deployments

    assert len(deployment.of_type("AWS::ApiGatewayV2::Api")) == 1
    assert not deployment.of_type("AWS::ApiGateway::RestApi")
    assert not [w for w in cloud.warnings if "ApiGatewayV2" in w]
    assert (api.auth, api.stage) == ("iam", "v1")
    assert {"POST /sessions", "POST /sessions/{session_id}/messages", "GET /health"} <= set(api.routes)


def test_a_signed_caller_owns_its_session_through_the_payload_2_0_event(api: ApiEndpoint) -> None:
    with _http(api) as alice, _http(api, BOB) as bob:
        created = alice.post("sessions", json={})
        session_id = created.json()["session_id"]
        turn = alice.post(f"sessions/{session_id}/messages", json={"message": "Calculate 6 * 7"})
        as_bob = bob.get(f"sessions/{session_id}")

    assert created.status_code == 201, created.text
    assert (turn.status_code, turn.json()["answer"]) == (200, "calculator returned 42.")
    assert (as_bob.status_code, as_bob.json()["error"]) == (404, "session_not_found")


def test_the_functions_own_contract_answers_reach_the_caller(api: ApiEndpoint) -> None:
    with _http(api) as alice:
        plain = alice.post("sessions", content=b'{"ttl_seconds": 60}', headers={"Content-Type": "text/plain"})
        broken = alice.post("sessions", content=b'{"ttl', headers={"Content-Type": "application/json"})

    assert (plain.status_code, plain.json()["error"]) == (415, "unsupported_media_type")
    assert (broken.status_code, broken.json()["error"]) == (400, "invalid_json")


def test_the_gateway_answers_for_itself_as_an_http_api_does(api: ApiEndpoint) -> None:
    with _http(api, None) as anonymous, _http(api) as alice:
        unsigned = anonymous.get("health")
        unknown = alice.get("admin/users")

    assert (unsigned.status_code, unsigned.json()) == (403, {"message": "Forbidden"})
    assert (unknown.status_code, unknown.json()) == (404, {"message": "Not Found"})


def test_the_stage_throttles_and_its_429_carries_no_retry_after(cloud: LocalCloud, api: ApiEndpoint) -> None:
    # Given the stage's throttle read from the template (the construct's 50 per second, bursts of 100),
    (served,) = cloud.apis
    stage = served.default_stage
    bucket = stage.bucket("/health", "GET")
    assert bucket is not None and (bucket.rate, bucket.burst) == (50.0, 100)
    # and, so that no clock decides the outcome, a bucket of one request that never refills in its place,
    stage._buckets[("/health", "GET")] = TokenBucket(rate=1e-9, burst=1)

    with _http(api) as alice:
        admitted, throttled = alice.get("health"), alice.get("health")

    # then the gateway's own 429 is an HTTP API's: no custom gateway response, so no Retry-After.
    assert admitted.status_code == 200
    assert (throttled.status_code, throttled.json()) == (429, {"message": "Too Many Requests"})
    assert "retry-after" not in throttled.headers


def test_each_request_is_one_json_access_log_line_with_its_route_key(cloud: LocalCloud, api: ApiEndpoint) -> None:
    with _http(api) as alice:
        alice.post("sessions", json={})

    (served,) = cloud.apis
    lines = [json.loads(line) for line in (cloud.log_dir / f"{served.logical_id}.access.log").read_text().splitlines()]
    created = [line for line in lines if line["routeKey"] == "POST /sessions" and line["status"] == "201"]
    assert created and created[-1]["user"] == ALICE.user_id
