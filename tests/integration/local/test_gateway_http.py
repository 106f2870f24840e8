"""The local API Gateway over HTTP: authentication, routing, validation, throttling and the Lambda proxy event."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentrail_cli.client import ApiKeyAuth, IamAuth, TokenAuth
from agentrail_local.apigateway.auth import DEFAULT_PRINCIPALS
from agentrail_local.cloud import ApiEndpoint, LocalCloud

pytestmark = pytest.mark.slow
ALICE, BOB = DEFAULT_PRINCIPALS[:2]


@pytest.fixture(scope="module")
def cloud(local_cloud: Callable[..., LocalCloud], services_assembly: Path) -> LocalCloud:
    return local_cloud(services_assembly, prewarm=True)


@pytest.fixture(scope="module")
def api(cloud: LocalCloud) -> ApiEndpoint:
    return cloud.endpoint(stack="Local-Edge")


def _http(api: ApiEndpoint, auth: httpx.Auth | None = None) -> httpx.Client:
    return httpx.Client(base_url=api.url + "/", auth=auth, timeout=30)


def _as(principal: Any) -> IamAuth:
    return IamAuth.from_keys(principal.access_key_id, principal.secret_access_key)


def _event(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()["event"]


def test_iam_route_passes_each_signers_identity_to_the_function(api: ApiEndpoint) -> None:
    with _http(api, _as(ALICE)) as alice, _http(api, _as(BOB)) as bob:
        as_alice = _event(alice.get("iam"))["requestContext"]["identity"]
        as_bob = _event(bob.get("iam"))["requestContext"]["identity"]

    assert as_alice["userArn"] == "arn:aws:iam::123456789012:user/agentrail-local"
    assert as_bob["userArn"] == "arn:aws:iam::123456789012:user/agentrail-other"
    assert (as_alice["accessKey"], as_alice["accountId"]) == ("AKIDLOCALAGENTRAIL", "123456789012")
    assert as_alice["caller"] == as_alice["user"] != as_bob["user"]


def test_unsigned_and_badly_signed_requests_are_refused_with_gateway_defaults(api: ApiEndpoint) -> None:
    wrong_secret = IamAuth.from_keys(ALICE.access_key_id, "wrong-secret")

    with _http(api) as anonymous, _http(api, wrong_secret) as impostor:
        unsigned = anonymous.get("iam")
        forged = impostor.get("iam")

    assert (unsigned.status_code, unsigned.json()) == (403, {"message": "Missing Authentication Token"})
    assert unsigned.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert forged.status_code == 403
    assert "signature" in forged.json()["message"]


def test_unknown_routes_and_methods_look_like_missing_authentication(api: ApiEndpoint) -> None:
    with _http(api, _as(ALICE)) as client:
        unknown_path = client.get("nowhere")
        unknown_method = client.delete("iam")

    assert [unknown_path.status_code, unknown_method.status_code] == [403, 403]
    assert unknown_path.json() == {"message": "Missing Authentication Token"}


def test_the_event_carries_path_query_stage_and_header_details(cloud: LocalCloud, api: ApiEndpoint) -> None:
    with _http(api, _as(ALICE)) as client:
        event = _event(client.get("items/a-1", params=[("tag", "x"), ("tag", "y"), ("q", "1")], headers={"X-Custom": "yes"}))

    assert (event["resource"], event["path"], event["httpMethod"]) == ("/items/{item_id}", "/items/a-1", "GET")
    assert event["pathParameters"] == {"item_id": "a-1"}
    assert event["queryStringParameters"] == {"tag": "y", "q": "1"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["x", "y"], "q": ["1"]}
    assert event["stageVariables"] == {"flavour": "local"}
    assert event["headers"]["X-Custom"] == "yes" and event["multiValueHeaders"]["X-Custom"] == ["yes"]
    context = event["requestContext"]
    assert (context["stage"], context["resourcePath"], context["path"]) == ("test", "/items/{item_id}", "/test/items/a-1")
    assert context["apiId"] == next(a.api_id for a in cloud.apis if a.stack_name == "Local-Edge")
    assert len(context["requestId"]) == 36
    assert event["isBase64Encoded"] is False and event["body"] is None


def test_greedy_proxy_resource_takes_any_method_and_nested_paths(api: ApiEndpoint) -> None:
    with _http(api, _as(ALICE)) as client:
        event = _event(client.delete("files/a/b/c.txt"))

    assert (event["resource"], event["httpMethod"]) == ("/files/{proxy+}", "DELETE")
    assert event["pathParameters"] == {"proxy": "a/b/c.txt"}


def test_paths_are_served_with_and_without_the_stage_prefix(api: ApiEndpoint) -> None:
    root = api.url.rsplit("/", 1)[0]

    with httpx.Client(auth=_as(ALICE)) as client:
        prefixed = client.get(f"{root}/test/iam")
        bare = client.get(f"{root}/iam")

    assert [prefixed.status_code, bare.status_code] == [200, 200]


def test_api_key_route_needs_the_generated_key_and_reports_it_in_the_identity(api: ApiEndpoint) -> None:
    assert api.api_key and len(api.api_key) == 40

    with _http(api) as anonymous, _http(api, ApiKeyAuth("wrong")) as wrong, _http(api, ApiKeyAuth(api.api_key)) as keyed:
        missing = anonymous.get("keyed")
        invalid = wrong.get("keyed")
        identity = _event(keyed.get("keyed"))["requestContext"]["identity"]

    assert (missing.status_code, missing.json()) == (403, {"message": "Forbidden"})
    assert invalid.status_code == 403
    assert (identity["apiKey"], identity["apiKeyId"]) == (api.api_key, api.api_key_id)


def _cognito_token(cloud: LocalCloud) -> str:
    assert cloud.clients is not None
    services = next(d for d in cloud.deployments if d.stack_name == "Local-Services")
    pool = next(iter(services.of_type("AWS::Cognito::UserPool"))).ref
    client_id = next(iter(services.of_type("AWS::Cognito::UserPoolClient"))).ref
    idp = cloud.clients("cognito-idp")
    idp.admin_create_user(UserPoolId=pool, Username="ada", TemporaryPassword="Temp-passw0rd!")
    idp.admin_set_user_password(UserPoolId=pool, Username="ada", Password="Real-passw0rd!", Permanent=True)
    result = idp.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ada", "PASSWORD": "Real-passw0rd!"},
    )
    return result["AuthenticationResult"]["IdToken"]


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.signature"


def test_cognito_route_passes_the_tokens_claims_and_refuses_missing_or_foreign_tokens(
    cloud: LocalCloud, api: ApiEndpoint
) -> None:
    token = _cognito_token(cloud)
    foreign = _unsigned_jwt(
        {"sub": "x", "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other", "exp": time.time() + 600}
    )
    expired = _unsigned_jwt(
        {"sub": "x", "iss": json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["iss"], "exp": 1}
    )

    with _http(api, TokenAuth(token)) as user, _http(api) as anonymous:
        claims = _event(user.get("me"))["requestContext"]["authorizer"]["claims"]
        missing = anonymous.get("me")
        wrong_pool = anonymous.get("me", headers={"Authorization": foreign})
        too_old = anonymous.get("me", headers={"Authorization": expired})

    assert claims["cognito:username"] == "ada"
    assert (missing.status_code, missing.json()) == (401, {"message": "Unauthorized"})
    assert [wrong_pool.status_code, too_old.status_code] == [401, 401]


def test_request_validation_refuses_bad_json_schema_violations_and_missing_parameters(api: ApiEndpoint) -> None:
    with _http(api) as client:
        malformed = client.post(
            "validated", params={"lang": "en"}, content=b'{"note": "secret-marker', headers={"Content-Type": "application/json"}
        )
        too_long = client.post("validated", params={"lang": "en"}, json={"note": "secret-marker-far-too-long"})
        no_lang = client.post("validated", json={"note": "ok"})
        valid = client.post("validated", params={"lang": "en"}, json={"note": "ok"})

    assert (malformed.status_code, malformed.json()) == (400, {"message": "Invalid request body"})
    assert too_long.status_code == 400 and "secret-marker" not in too_long.text
    assert no_lang.status_code == 400
    assert json.loads(_event(valid)["body"]) == {"note": "ok"}


def test_a_method_throttled_to_one_request_per_second_answers_429_on_the_second(api: ApiEndpoint) -> None:
    with _http(api) as client:
        statuses = [client.get("throttled").status_code for _ in range(3)]

    assert statuses[0] == 200
    assert 429 in statuses[1:]


def test_a_throttled_answer_says_when_to_retry_in_retry_after(api: ApiEndpoint) -> None:
    with _http(api) as client:
        answers = [client.get("throttled") for _ in range(3)]

    throttled = [a for a in answers if a.status_code == 429]
    assert throttled, [a.status_code for a in answers]
    assert all(int(a.headers["Retry-After"]) >= 1 for a in throttled)


def _in_parallel(api: ApiEndpoint, path: str, count: int) -> list[httpx.Response]:
    with _http(api) as client, ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: client.get(path, params={"seconds": "1"}), range(count)))


def test_ten_parallel_requests_to_a_function_without_reserved_concurrency_all_succeed(api: ApiEndpoint) -> None:
    answers = _in_parallel(api, "slow", 10)

    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers if a.status_code != 200]
    assert len({a.json()["pid"] for a in answers}) > 1  # scaled out, as Lambda does


def test_requests_beyond_reserved_concurrency_get_429_with_retry_after(api: ApiEndpoint) -> None:
    answers = _in_parallel(api, "reserved", 3)

    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] == 200 and statuses[-1] == 429, statuses
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status_code == 429)


def test_function_errors_and_malformed_proxy_responses_become_502(api: ApiEndpoint) -> None:
    with _http(api) as client:
        failed = client.get("fail")
        malformed = client.get("malformed")

    assert (failed.status_code, failed.json()) == (502, {"message": "Internal server error"})
    assert malformed.status_code == 502
    assert "the order is not valid" not in failed.text


def test_a_body_over_ten_megabytes_is_request_too_large(api: ApiEndpoint) -> None:
    with _http(api, _as(ALICE)) as client:
        response = client.post("files/upload", content=b"x" * (10 * 1024 * 1024 + 1))

    assert response.status_code == 413


def test_binary_media_types_arrive_base64_encoded_and_multi_value_headers_come_back(api: ApiEndpoint) -> None:
    with _http(api, _as(ALICE)) as client:
        response = client.put("files/blob.bin", content=b"\x00\x01\xff", headers={"Content-Type": "application/octet-stream"})

    event = _event(response)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\x01\xff"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.headers["x-handler"] == "echo"


def test_a_204_goes_out_without_a_body_so_the_next_response_on_the_connection_is_intact(api: ApiEndpoint) -> None:
    with _http(api) as client:
        first = client.delete("empty")
        second = client.delete("empty")

    assert (first.status_code, first.content, second.status_code, second.content) == (204, b"", 204, b"")
    assert "content-length" not in first.headers
