"""Reading local mode's ready file: the operations target (``Target.local``) and the API client (``from_ready_file``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentrail_cli.client import AgentApiClient
from agentrail_cli.operations import Target, TargetError
from agentrail_local.apigateway.auth import APPROVER, DEFAULT_PRINCIPALS, verify_sigv4

LOCAL, OTHER = DEFAULT_PRINCIPALS[:2]
MOTO = "http://127.0.0.1:5999"


def _api(stack: str, pattern: str, port: int, *, auth: str = "iam", api_key: str | None = None) -> dict[str, Any]:
    return {"stack": stack, "pattern": pattern, "url": f"http://127.0.0.1:{port}/v1", "auth": auth, "api_key": api_key}


def _ready_file(folder: Path, apis: list[dict[str, Any]], stacks: dict[str, dict[str, str]]) -> Path:
    """A ready file with the keys :meth:`LocalCloud.ready_document` writes (those the readers use)."""
    path = folder / "local.json"
    document = {
        "region": "us-east-1",
        "moto_endpoint": MOTO,
        "principals": [p.as_dict() for p in DEFAULT_PRINCIPALS],
        "apis": apis,
        "stacks": stacks,
    }
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def ready_file(tmp_path: Path) -> Path:
    return _ready_file(
        tmp_path,
        [
            _api("Agentrail-Stateless", "stateless", 3000, auth="api_key", api_key="k" * 40),
            _api("Agentrail-Async", "async", 3001),
        ],
        {
            "Agentrail-Stateless": {"ApiUrl": "http://127.0.0.1:3000/v1"},
            "Agentrail-Async": {"ApiUrl": "http://127.0.0.1:3001/v1", "TaskTableName": "tasks"},
            "Agentrail-Network": {"VpcId": "vpc-1"},
        },
    )


def _signer(auth: httpx.Auth | None) -> str:
    """The local principal whose SigV4 signature ``auth`` puts on a request."""
    assert auth is not None
    request = next(auth.auth_flow(httpx.Request("GET", "http://127.0.0.1:3001/v1/approvals")))
    return verify_sigv4(
        method="GET", url=str(request.url), headers=dict(request.headers), body=b"", principals=DEFAULT_PRINCIPALS
    ).name


# -- Target.local ---------------------------------------------------------------------------------


def test_a_local_target_is_the_stack_serving_the_pattern_reached_as_the_named_principal(ready_file: Path) -> None:
    target = Target.local(ready_file, stack=None, pattern="async", principal=APPROVER)

    assert (target.stack, target.outputs["TaskTableName"]) == ("Agentrail-Async", "tasks")
    assert (target.endpoint_url, target.api_url) == (MOTO, "http://127.0.0.1:3001/v1")
    credentials = target.session.get_credentials()
    assert credentials is not None and credentials.access_key == "AKIDLOCALAPPROVER"
    assert target.session.region_name == "us-east-1"
    assert _signer(target.auth) == APPROVER


def test_a_local_target_acts_as_the_first_principal_by_default(ready_file: Path) -> None:
    target = Target.local(ready_file, stack=None, pattern="async", principal=None)

    assert _signer(target.auth) == LOCAL.name


def test_a_named_stack_is_chosen_whatever_the_pattern(ready_file: Path) -> None:
    target = Target.local(ready_file, stack="Agentrail-Stateless", pattern=None, principal=None)

    assert (target.stack, target.api_url) == ("Agentrail-Stateless", "http://127.0.0.1:3000/v1")


def test_a_stack_without_an_api_is_a_target_whose_api_names_what_is_missing(ready_file: Path) -> None:
    target = Target.local(ready_file, stack="Agentrail-Network", pattern=None, principal=None)

    assert target.outputs == {"VpcId": "vpc-1"} and target.api_url is None
    with pytest.raises(TargetError, match="stack Agentrail-Network has no ApiUrl output"):
        target.api()


def test_without_a_ready_file_the_target_says_to_start_local_mode(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="not found: start `agentrail local` first, or pass --stack"):
        Target.local(tmp_path / "local.json", stack=None, pattern="async", principal=None)


def test_a_pattern_served_by_several_stacks_asks_for_a_stack(tmp_path: Path) -> None:
    ready_file = _ready_file(tmp_path, [_api("A", "async", 3000), _api("B", "async", 3001)], {"A": {}, "B": {}})

    with pytest.raises(TargetError, match=r"2 local stacks match; pass --stack \(one of: A, B\)"):
        Target.local(ready_file, stack=None, pattern="async", principal=None)


def test_a_stack_local_mode_does_not_serve_is_refused_with_the_ones_it_does(ready_file: Path) -> None:
    with pytest.raises(
        TargetError, match=r"serves no stack 'Nope' \(it serves: Agentrail-Async, Agentrail-Network, Agentrail-Stateless\)"
    ):
        Target.local(ready_file, stack="Nope", pattern=None, principal=None)


def test_an_unknown_principal_is_refused_with_the_known_ones(ready_file: Path) -> None:
    known = ", ".join(p.name for p in DEFAULT_PRINCIPALS)

    with pytest.raises(TargetError, match=f"no local principal named 'mallory'; known: {known}"):
        Target.local(ready_file, stack=None, pattern="async", principal="mallory")


# -- AgentApiClient.from_ready_file ---------------------------------------------------------------


def _headers_sent(client: AgentApiClient, seen: list[httpx.Request]) -> httpx.Headers:
    with client:
        client.request("GET", "/health")
    return seen[-1].headers


def test_the_client_of_an_api_key_api_sends_its_key(ready_file: Path) -> None:
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(200))

    headers = _headers_sent(AgentApiClient.from_ready_file(ready_file, pattern="stateless", transport=transport), seen)

    assert headers["x-api-key"] == "k" * 40 and "Authorization" not in headers


def test_the_client_of_an_iam_api_signs_as_the_named_principal(ready_file: Path) -> None:
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(200))

    headers = _headers_sent(
        AgentApiClient.from_ready_file(ready_file, pattern="async", principal=OTHER.name, transport=transport), seen
    )

    assert f"Credential={OTHER.access_key_id}/" in headers["Authorization"] and "x-api-key" not in headers


@pytest.mark.parametrize(("pattern", "found"), [("hierarchical", 0), (None, 2)])
def test_a_client_needs_exactly_one_api_of_its_pattern(ready_file: Path, pattern: str | None, found: int) -> None:
    with pytest.raises(LookupError, match=f"{found} APIs in .* match pattern={pattern!r}"):
        AgentApiClient.from_ready_file(ready_file, pattern=pattern)


def test_a_client_for_an_unknown_principal_is_refused(ready_file: Path) -> None:
    with pytest.raises(LookupError, match="no local principal named 'mallory'"):
        AgentApiClient.from_ready_file(ready_file, pattern="async", principal="mallory")
