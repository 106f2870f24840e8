"""Local mode serves a CDK ``WebSocketApi``: deployed into moto's apigatewayv2, served with the ``websockets`` library on
127.0.0.1, its ``$connect`` authorized by a Lambda REQUEST authorizer (or SigV4), its messages routed by
``$request.body.action``, and its @connections API answering a function's boto3 client, 410 included."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from agentrail_local.apigateway.auth import DEFAULT_PRINCIPALS
from agentrail_local.cloud import LocalCloud, WebSocketEndpoint

pytestmark = pytest.mark.slow
HANDLERS = Path(__file__).parent / "fixtures" / "websocket"
STACK = "Local-Sockets"
#: Every wait on a socket or a log is bounded.
WAIT = 20


def build_websocket_app(outdir: Path) -> None:
    """``Local-Sockets``: ``Chat`` (a REQUEST authorizer on ``$connect`` checking the ``ticket`` query parameter,
    ``$disconnect``, a two-way ``$default``, a one-way ``sendMessage`` and a two-way ``poke``; stage ``dev`` with access
    logs) and ``Servers`` (``$connect`` with IAM and a two-way ``ping``, no ``$default``)."""
    import aws_cdk as cdk
    from aws_cdk import aws_apigatewayv2 as apigwv2
    from aws_cdk import aws_apigatewayv2_authorizers as authorizers
    from aws_cdk import aws_apigatewayv2_integrations as integrations
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_logs as logs

    app = cdk.App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True})
    stack = cdk.Stack(app, STACK)
    code = lambda_.Code.from_asset(str(HANDLERS))

    def function(name: str, handler: str) -> lambda_.Function:
        return lambda_.Function(
            stack,
            name,
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler=f"ws_routes.{handler}",
            code=code,
            timeout=cdk.Duration.seconds(10),
        )

    connect, disconnect, echo = (
        function("Connect", "connect"),
        function("Disconnect", "disconnect"),
        function("Echo", "echo_event"),
    )
    send, poke, authorize = function("Send", "send_message"), function("Poke", "poke"), function("Authorize", "authorize")
    crash = function("Crash", "crash")
    chat = apigwv2.WebSocketApi(
        stack,
        "Chat",
        connect_route_options=apigwv2.WebSocketRouteOptions(
            integration=integrations.WebSocketLambdaIntegration("ConnectIntegration", connect),
            authorizer=authorizers.WebSocketLambdaAuthorizer(
                "Tickets", authorize, identity_source=["route.request.querystring.ticket"]
            ),
        ),
        disconnect_route_options=apigwv2.WebSocketRouteOptions(
            integration=integrations.WebSocketLambdaIntegration("DisconnectIntegration", disconnect)
        ),
        default_route_options=apigwv2.WebSocketRouteOptions(
            integration=integrations.WebSocketLambdaIntegration("DefaultIntegration", echo), return_response=True
        ),
    )
    chat.add_route("sendMessage", integration=integrations.WebSocketLambdaIntegration("SendIntegration", send))
    chat.add_route("poke", integration=integrations.WebSocketLambdaIntegration("PokeIntegration", poke), return_response=True)
    chat.add_route("crash", integration=integrations.WebSocketLambdaIntegration("CrashIntegration", crash))
    stage = apigwv2.WebSocketStage(stack, "Dev", web_socket_api=chat, stage_name="dev", auto_deploy=True)
    access_logs = logs.LogGroup(stack, "ChatAccess", removal_policy=cdk.RemovalPolicy.DESTROY)
    access_format = {"requestId": "$context.requestId", "eventType": "$context.eventType", "routeKey": "$context.routeKey",
                     "connectionId": "$context.connectionId", "status": "$context.status"}  # fmt: skip
    cfn_stage = stage.node.default_child
    assert isinstance(cfn_stage, apigwv2.CfnStage)
    cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
        destination_arn=access_logs.log_group_arn, format=json.dumps(access_format)
    )
    for sender in (send, poke):
        chat.grant_manage_connections(sender)
        sender.add_environment("CALLBACK_URL", stage.callback_url)
    cdk.CfnOutput(stack, "ChatUrl", value=stage.url)
    cdk.CfnOutput(stack, "ChatCallbackUrl", value=stage.callback_url)

    servers = apigwv2.WebSocketApi(
        stack,
        "Servers",
        connect_route_options=apigwv2.WebSocketRouteOptions(
            integration=integrations.WebSocketLambdaIntegration("ServersConnect", connect),
            authorizer=authorizers.WebSocketIamAuthorizer(),
        ),
    )
    servers.add_route("ping", integration=integrations.WebSocketLambdaIntegration("Ping", echo), return_response=True)
    apigwv2.WebSocketStage(stack, "Live", web_socket_api=servers, stage_name="live", auto_deploy=True)
    app.synth()


@pytest.fixture(scope="module")
def websocket_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.getbasetemp() / "assembly-websocket"
    if not (output / "manifest.json").is_file():
        build_websocket_app(output)
    return output


@pytest.fixture(scope="module")
def cloud(local_cloud: Callable[..., LocalCloud], websocket_assembly: Path) -> LocalCloud:
    # This interpreter runs the functions: its packages hold boto3, which Lambda's runtime has.
    return local_cloud(websocket_assembly, python=sys.executable)


def _endpoint(cloud: LocalCloud, logical_id: str) -> WebSocketEndpoint:
    (found,) = [e for e in cloud.websocket_endpoints() if e.logical_id.startswith(logical_id)]
    return found


@pytest.fixture(scope="module")
def chat(cloud: LocalCloud) -> WebSocketEndpoint:
    return _endpoint(cloud, "Chat")


@pytest.fixture(scope="module")
def servers(cloud: LocalCloud) -> WebSocketEndpoint:
    return _endpoint(cloud, "Servers")


def _connect(url: str, **options: Any) -> ClientConnection:
    return ws_connect(url, open_timeout=WAIT, close_timeout=5, **options)


@pytest.fixture
def client(chat: WebSocketEndpoint) -> Iterator[ClientConnection]:
    with _connect(f"{chat.url}?ticket=good-ticket") as connection:
        yield connection


def _exchange(connection: ClientConnection, message: dict[str, Any] | str) -> Any:
    connection.send(message if isinstance(message, str) else json.dumps(message))
    return json.loads(connection.recv(timeout=WAIT))


def _management(endpoint: WebSocketEndpoint) -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint.callback_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _log_lines(cloud: LocalCloud, logical_prefix: str, key: str) -> list[dict[str, Any]]:
    found = []
    for definition in cloud.environments.functions if cloud.environments else ():
        if definition.logical_id.startswith(logical_prefix):
            path = cloud.function_log(definition.logical_id)
            for line in path.read_text().splitlines() if path.is_file() else ():
                start = line.find("{")
                if start >= 0 and f'"{key}"' in line:
                    found.append(json.loads(line[start:])[key])
    return found


def _wait_for(check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"nothing after {WAIT} s")


# -- deploy ----------------------------------------------------------------------------------------------------------


def test_the_websocket_apis_deploy_into_moto_and_their_outputs_name_the_local_servers(
    cloud: LocalCloud, chat: WebSocketEndpoint
) -> None:
    (deployment,) = cloud.deployments
    apis = {a["Name"]: a for a in cloud.clients("apigatewayv2").get_apis()["Items"]} if cloud.clients else {}
    chat_id = deployment.resources[chat.logical_id].ref
    routes = cloud.clients("apigatewayv2").get_routes(ApiId=chat_id)["Items"] if cloud.clients else []

    assert apis["Chat"]["ProtocolType"] == "WEBSOCKET" and apis["Chat"]["ApiId"] == chat_id
    assert {r["RouteKey"] for r in routes} == {"$connect", "$disconnect", "$default", "sendMessage", "poke", "crash"}
    assert (chat.stage, chat.auth) == ("dev", "custom")
    assert chat.url.startswith("ws://127.0.0.1:") and chat.url.endswith("/dev")
    assert deployment.outputs["ChatUrl"] == chat.url
    assert deployment.outputs["ChatCallbackUrl"] == chat.callback_url
    assert not [w for w in cloud.warnings if "ApiGatewayV2" in w]


# -- $connect ---------------------------------------------------------------------------------------------------------


def test_a_connect_without_a_ticket_is_401_and_with_a_wrong_one_403(chat: WebSocketEndpoint) -> None:
    with pytest.raises(InvalidStatus) as missing:
        _connect(chat.url)
    with pytest.raises(InvalidStatus) as wrong:
        _connect(f"{chat.url}?ticket=stolen")

    assert missing.value.response.status_code == 401
    assert json.loads(missing.value.response.body) == {"message": "Unauthorized"}
    assert wrong.value.response.status_code == 403


def test_a_connect_integration_answering_non_2xx_refuses_the_handshake_with_its_status(chat: WebSocketEndpoint) -> None:
    with pytest.raises(InvalidStatus) as refused:
        _connect(f"{chat.url}?ticket=good-ticket&refuse=yes")

    assert (refused.value.response.status_code, refused.value.response.body) == (409, b"refused by $connect")


def test_a_connect_integration_that_fails_refuses_the_handshake_with_502(chat: WebSocketEndpoint) -> None:
    with pytest.raises(InvalidStatus) as refused:
        _connect(f"{chat.url}?ticket=good-ticket&refuse=crash")

    assert refused.value.response.status_code == 502
    assert json.loads(refused.value.response.body) == {"message": "Internal server error"}


def test_a_route_whose_function_fails_gets_api_gateways_internal_server_error_frame(client: ClientConnection) -> None:
    answer = _exchange(client, {"action": "crash"})
    after = _exchange(client, {"action": "still-there"})

    assert answer["message"] == "Internal server error" and answer["connectionId"] and answer["requestId"]
    assert after["requestContext"]["routeKey"] == "$default"


def test_the_connect_event_has_the_handshakes_query_string_and_headers(cloud: LocalCloud, chat: WebSocketEndpoint) -> None:
    with _connect(f"{chat.url}?ticket=good-ticket&lang=fr", additional_headers={"X-Client": "tests"}) as connection:
        connection_id = _exchange(connection, {"action": "none"})["requestContext"]["connectionId"]

    event = _wait_for(
        lambda: [e for e in _log_lines(cloud, "Connect", "connect_event") if e["requestContext"]["connectionId"] == connection_id]
    )[0]
    context = event["requestContext"]
    assert (context["routeKey"], context["eventType"], context["messageDirection"]) == ("$connect", "CONNECT", "IN")
    assert event["queryStringParameters"] == {"ticket": "good-ticket", "lang": "fr"}
    assert event["headers"]["X-Client"] == "tests" and event["multiValueHeaders"]["X-Client"] == ["tests"]
    assert context["authorizer"]["principalId"] == "user-1" and context["authorizer"]["user_id"] == "user-1"
    assert {"stage", "apiId", "requestId", "connectedAt", "domainName", "identity", "requestTimeEpoch"} <= set(context)
    assert event["isBase64Encoded"] is False


# -- messages ---------------------------------------------------------------------------------------------------------


def test_a_message_without_a_matching_action_goes_to_default_with_the_message_event(
    client: ClientConnection, chat: WebSocketEndpoint
) -> None:
    event = _exchange(client, {"action": "unknown-action", "text": "hello"})
    not_json = _exchange(client, "this is { not json")

    context = event["requestContext"]
    assert (context["routeKey"], context["eventType"], context["messageDirection"]) == ("$default", "MESSAGE", "IN")
    assert json.loads(event["body"]) == {"action": "unknown-action", "text": "hello"}
    assert event["isBase64Encoded"] is False
    assert context["stage"] == "dev" and context["connectedAt"] <= context["requestTimeEpoch"]
    assert context["authorizer"]["user_id"] == "user-1" and context["authorizer"]["tier"] == 3
    assert {"messageId", "requestId", "connectionId", "apiId", "domainName", "identity"} <= set(context)
    assert (not_json["requestContext"]["routeKey"], not_json["body"]) == ("$default", "this is { not json")


def test_a_binary_message_reaches_default_base64_encoded(client: ClientConnection) -> None:
    client.send(b"\x00\x01binary")
    event = json.loads(client.recv(timeout=WAIT))

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\x01binary"


def test_a_one_way_route_answers_through_the_management_api_from_the_callback_url_in_its_environment(
    client: ClientConnection,
) -> None:
    answer = _exchange(client, {"action": "sendMessage", "text": "hi there"})

    assert answer["echo"] == "hi there"
    assert answer["authorizer"]["principalId"] == "user-1"


def test_an_unknown_action_on_an_api_without_default_gets_api_gateways_error_frame(servers: WebSocketEndpoint) -> None:
    with _connect(servers.url, additional_headers=_signed_headers(servers.url)) as connection:
        answer = _exchange(connection, {"action": "nothing-here"})

    assert answer["message"] == "Forbidden"
    assert answer["connectionId"] and answer["requestId"]


# -- @connections -----------------------------------------------------------------------------------------------------


def test_a_gone_connection_answers_410_gone_to_boto3_raw_http_and_a_function(
    cloud: LocalCloud, chat: WebSocketEndpoint, client: ClientConnection
) -> None:
    with _connect(f"{chat.url}?ticket=good-ticket") as leaving:
        gone_id = _exchange(leaving, {"action": "whoami"})["requestContext"]["connectionId"]
    management = _management(chat)

    with pytest.raises(management.exceptions.GoneException) as raised:
        management.post_to_connection(ConnectionId=gone_id, Data=b"late")
    raw = httpx.post(
        f"{chat.callback_url}/@connections/{gone_id}",
        content=b"late",
        headers={"Authorization": _raw_signature(chat.callback_url, gone_id)},
    )
    from_function = _exchange(client, {"action": "poke", "target": gone_id})

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    assert (raw.status_code, raw.headers["x-amzn-ErrorType"], raw.content) == (410, "GoneException", b"")
    assert from_function == {"gone": True, "status": 410}
    disconnects = _wait_for(
        lambda: [e for e in _log_lines(cloud, "Disconnect", "disconnect_event") if e["requestContext"]["connectionId"] == gone_id]
    )
    context = disconnects[0]["requestContext"]
    assert (context["routeKey"], context["eventType"], context["disconnectStatusCode"]) == ("$disconnect", "DISCONNECT", 1000)


def test_get_and_delete_connection_describe_and_close_a_live_connection(
    chat: WebSocketEndpoint, client: ClientConnection
) -> None:
    connection_id = _exchange(client, {"action": "whoami"})["requestContext"]["connectionId"]
    management = _management(chat)

    described = management.get_connection(ConnectionId=connection_id)
    management.post_to_connection(ConnectionId=connection_id, Data=b"x" * (40 * 1024))
    large = client.recv(timeout=WAIT)
    management.delete_connection(ConnectionId=connection_id)
    with pytest.raises(ConnectionClosed) as closed:
        client.recv(timeout=WAIT)

    assert described["Identity"]["SourceIp"] == "127.0.0.1"
    assert described["ConnectedAt"] <= described["LastActiveAt"]
    assert large == "x" * (40 * 1024)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    with pytest.raises(management.exceptions.GoneException):
        management.get_connection(ConnectionId=connection_id)


def test_an_unsigned_management_call_is_forbidden(chat: WebSocketEndpoint, client: ClientConnection) -> None:
    connection_id = _exchange(client, {"action": "whoami"})["requestContext"]["connectionId"]

    unsigned = httpx.post(f"{chat.callback_url}/@connections/{connection_id}", content=b"hi")

    assert (unsigned.status_code, unsigned.headers["x-amzn-ErrorType"]) == (403, "ForbiddenException")
    assert unsigned.json() == {"message": "Missing Authentication Token"}


# -- bad frames -------------------------------------------------------------------------------------------------------


def test_a_frame_over_32_kb_closes_the_connection_with_1009_and_the_server_serves_on(chat: WebSocketEndpoint) -> None:
    with _connect(f"{chat.url}?ticket=good-ticket", max_size=None) as connection:
        connection.send("y" * (32 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            connection.recv(timeout=WAIT)
    with _connect(f"{chat.url}?ticket=good-ticket") as after:
        answer = _exchange(after, {"action": "still-there"})

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert answer["requestContext"]["routeKey"] == "$default"


def test_a_malformed_frame_closes_that_connection_with_1002_and_the_server_serves_on(chat: WebSocketEndpoint) -> None:
    host, port = chat.url.removeprefix("ws://").split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT) as raw:
        key = base64.b64encode(os.urandom(16)).decode()
        raw.sendall(
            f"GET /dev?ticket=good-ticket HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        handshake = b""
        while b"\r\n\r\n" not in handshake:
            handshake += raw.recv(4096)
        # Opcode 0x3 is reserved: no WebSocket peer may send it (RFC 6455, 5.2).
        raw.sendall(bytes([0x83, 0x80]) + os.urandom(4))
        closing = raw.recv(4096)
    with _connect(f"{chat.url}?ticket=good-ticket") as after:
        answer = _exchange(after, {"action": "still-there"})

    assert handshake.startswith(b"HTTP/1.1 101")
    assert closing[0] == 0x88 and int.from_bytes(closing[2:4], "big") == 1002
    assert answer["requestContext"]["routeKey"] == "$default"


# -- IAM --------------------------------------------------------------------------------------------------------------


def _signed_headers(url: str, principal: Any = DEFAULT_PRINCIPALS[0]) -> dict[str, str]:
    http_url = url.replace("ws://", "http://", 1)
    request = AWSRequest(method="GET", url=http_url, headers={"Host": http_url.split("/")[2]})
    SigV4Auth(principal.credentials(), "execute-api", "us-east-1").add_auth(request)
    return {k: v for k, v in request.headers.items() if k.lower() != "host"}


def _raw_signature(callback_url: str, connection_id: str) -> str:
    request = AWSRequest(method="POST", url=f"{callback_url}/@connections/{connection_id}", data=b"late")
    SigV4Auth(DEFAULT_PRINCIPALS[0].credentials(), "execute-api", "us-east-1").add_auth(request)
    return str(request.headers["Authorization"])


def test_an_iam_connect_takes_a_local_principals_signature_and_refuses_an_unsigned_one(servers: WebSocketEndpoint) -> None:
    with pytest.raises(InvalidStatus) as unsigned:
        _connect(servers.url)
    with _connect(servers.url, additional_headers=_signed_headers(servers.url)) as connection:
        event = _exchange(connection, {"action": "ping"})

    assert (unsigned.value.response.status_code, servers.auth) == (403, "iam")
    identity = event["requestContext"]["identity"]
    assert identity["userArn"] == DEFAULT_PRINCIPALS[0].user_arn
    assert identity["accessKey"] == DEFAULT_PRINCIPALS[0].access_key_id
    assert event["requestContext"]["routeKey"] == "ping"


def test_the_stage_access_log_has_a_line_per_connect_message_and_disconnect(cloud: LocalCloud, chat: WebSocketEndpoint) -> None:
    with _connect(f"{chat.url}?ticket=good-ticket") as connection:
        connection_id = _exchange(connection, {"action": "logged"})["requestContext"]["connectionId"]
    log = cloud.log_dir / f"{chat.logical_id}.access.log"

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in log.read_text().splitlines() if connection_id in line] if log.is_file() else []

    seen = _wait_for(lambda: (found := lines()) and len(found) == 3 and found)
    assert [(line["eventType"], line["routeKey"], line["status"]) for line in seen] == [
        ("CONNECT", "$connect", "200"),
        ("MESSAGE", "$default", "200"),
        ("DISCONNECT", "$disconnect", "200"),
    ]


def test_agentrail_local_prints_and_writes_the_websocket_url_and_its_connections_url(
    cloud: LocalCloud, chat: WebSocketEndpoint, tmp_path: Path
) -> None:
    from agentrail_cli.main import _print_endpoints

    printed = io.StringIO()
    _print_endpoints(cloud, printed, seconds=1.0, ready_file=tmp_path / "ready.json")
    ready = json.loads(cloud.write_ready_file(tmp_path / "ready.json").read_text())

    assert chat.url in printed.getvalue()
    assert f"@connections API of {chat.stack} ({chat.logical_id}): {chat.callback_url}" in printed.getvalue()
    listed = {a["logical_id"]: a for a in ready["websocket_apis"]}
    assert (listed[chat.logical_id]["url"], listed[chat.logical_id]["callback_url"]) == (chat.url, chat.callback_url)
