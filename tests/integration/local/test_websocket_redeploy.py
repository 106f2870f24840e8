"""A redeploy serves a WebSocket API's new routes on its running server, without dropping its connections, and a new
WebSocket API on a server of its own."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.sync.client import connect

from agentrail_local.cloud import LocalCloud

pytestmark = pytest.mark.slow
HANDLERS = Path(__file__).parent / "fixtures" / "websocket"
STACK = "Local-Sockets-Redeploy"
WAIT = 20


def _build(outdir: Path, *, version: int) -> Path:
    import aws_cdk as cdk
    from aws_cdk import aws_apigatewayv2 as apigwv2
    from aws_cdk import aws_apigatewayv2_integrations as integrations
    from aws_cdk import aws_lambda as lambda_

    app = cdk.App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True})
    stack = cdk.Stack(app, STACK)
    echo = lambda_.Function(
        stack,
        "Echo",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="ws_routes.echo_event",
        code=lambda_.Code.from_asset(str(HANDLERS)),
    )
    api = apigwv2.WebSocketApi(
        stack,
        "Chat",
        default_route_options=apigwv2.WebSocketRouteOptions(
            integration=integrations.WebSocketLambdaIntegration("Echoing", echo), return_response=True
        ),
    )
    apigwv2.WebSocketStage(stack, "Dev", web_socket_api=api, stage_name="dev", auto_deploy=True)
    if version == 2:
        api.add_route("shout", integration=integrations.WebSocketLambdaIntegration("Shout", echo), return_response=True)
        extra = apigwv2.WebSocketApi(
            stack,
            "Extra",
            default_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("ExtraDefault", echo), return_response=True
            ),
        )
        apigwv2.WebSocketStage(stack, "ExtraDev", web_socket_api=extra, stage_name="dev", auto_deploy=True)
    app.synth()
    return outdir


def test_a_redeploy_serves_a_new_route_on_the_open_connection_and_a_new_api_on_its_own_server(
    tmp_path_factory: pytest.TempPathFactory, local_cloud: Callable[..., LocalCloud]
) -> None:
    base = tmp_path_factory.mktemp("websocket-redeploy")
    first, second = _build(base / "v1", version=1), _build(base / "v2", version=2)
    # This interpreter runs the functions: the handlers' module imports boto3, which Lambda's runtime has.
    cloud = local_cloud(first, python=sys.executable)
    (before,) = cloud.websocket_endpoints()

    with connect(before.url, open_timeout=WAIT, close_timeout=5) as client:
        client.send(json.dumps({"action": "shout"}))
        routed_before = json.loads(client.recv(timeout=WAIT))["requestContext"]["routeKey"]
        changes = cloud.redeploy(second)
        client.send(json.dumps({"action": "shout"}))
        routed_after = json.loads(client.recv(timeout=WAIT))["requestContext"]["routeKey"]
    after = {e.logical_id.rstrip("0123456789ABCDEF"): e for e in cloud.websocket_endpoints()}
    with connect(after["Extra"].url, open_timeout=WAIT, close_timeout=5) as extra:
        extra.send("hello")
        extra_event = json.loads(extra.recv(timeout=WAIT))

    assert not [c for c in changes if c.action == "not applied"]
    assert (routed_before, routed_after) == ("$default", "shout")
    assert after["Chat"].url == before.url
    assert after["Extra"].url != before.url and extra_event["body"] == "hello"
