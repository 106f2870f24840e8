"""AsgiAgent: an ASGI app behind the stack's REST API, on ``ANY /`` and ``ANY /{proxy+}``, validated where its
OpenAPI document says, with the ASGI layer; and a path that does not import fails the synth in one sentence."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template

from agentrail_constructs import AgentApiOptions, ApiAuth, AsgiAgent, AsgiLayer
from agentrail_constructs.asgi import validated_operations
from agentrail_constructs.function import AgentFunctionOptions
from agentrail_constructs.stacks.asgi import EXAMPLE_APP
from tests.infra.conftest import REPO_ROOT, TEST_ENV

EXAMPLE = REPO_ROOT / "examples" / "fastapi_agent"


def asgi_stack(app_factory: Callable[..., cdk.App], name: str = "Asgi", **options: Any) -> tuple[cdk.Stack, AsgiAgent]:
    stack = cdk.Stack(app_factory(), name, env=TEST_ENV)
    options.setdefault("app", EXAMPLE_APP)
    options.setdefault("code", EXAMPLE)
    return stack, AsgiAgent(stack, "AsgiAgent", **options)


@pytest.fixture(scope="module")
def example(app_factory: Callable[..., cdk.App]) -> tuple[Template, AsgiAgent]:
    stack, agent = asgi_stack(app_factory, "AsgiExample")
    return Template.from_stack(stack), agent


def methods(template: Template) -> dict[str, dict[str, Any]]:
    return template.find_resources("AWS::ApiGateway::Method")


def method_on(template: Template, path_part: str | None, http_method: str) -> dict[str, Any]:
    """The method ``http_method`` on the resource whose PathPart is ``path_part`` (None: the API's root)."""
    resources = template.find_resources("AWS::ApiGateway::Resource")
    for method in methods(template).values():
        properties = method["Properties"]
        if properties["HttpMethod"] != http_method:
            continue
        resource = properties["ResourceId"]
        if path_part is None and "Fn::GetAtt" in resource and resource["Fn::GetAtt"][1] == "RootResourceId":
            return properties
        if path_part is not None and "Ref" in resource and resources[resource["Ref"]]["Properties"]["PathPart"] == path_part:
            return properties
    raise AssertionError(f"no {http_method} method on {path_part or '/'}")


def test_the_app_is_served_on_any_root_and_any_proxy_path_with_iam_auth(example):
    template, _ = example

    for part in (None, "{proxy+}"):
        method = method_on(template, part, "ANY")
        assert method["AuthorizationType"] == "AWS_IAM"
        assert method["Integration"]["Type"] == "AWS_PROXY"
        # every route goes to the function's live alias
        assert "LiveAlias" in json.dumps(method["Integration"]["Uri"])


def test_the_stage_throttles_traces_and_logs_access_like_every_agent_api(example):
    template, _ = example

    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "TracingEnabled": True,
            "MethodSettings": Match.array_with(
                [Match.object_like({"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100, "DataTraceEnabled": False})]
            ),
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
        },
    )


def test_the_function_runs_the_asgi_handler_with_the_app_path_traced_with_the_asgi_layer(example):
    template, agent = example

    function = template.find_resources("AWS::Lambda::Function", {"Metadata": {"agentrail:handler": "asgi"}})
    assert len(function) == 1
    (properties,) = [f["Properties"] for f in function.values()]
    assert properties["Environment"]["Variables"]["AGENT_ASGI_APP"] == EXAMPLE_APP
    assert "AGENT_ASGI_LIFESPAN" not in properties["Environment"]["Variables"]  # off, the default
    assert properties["TracingConfig"] == {"Mode": "Active"}
    layers = json.dumps(properties["Layers"])
    assert agent.asgi_layer is not None
    assert template.find_resources("AWS::Lambda::LayerVersion", {"Metadata": {"agentrail:layer": "asgi"}})
    assert Template.from_stack(cdk.Stack.of(agent)).to_json()  # renders
    assert "AgentrailAsgiLayer" in layers and "AgentCodeLayer" in layers


def test_the_body_of_an_operation_in_the_apps_openapi_document_is_validated_by_a_model_generated_from_it(example):
    template, agent = example

    invoke = method_on(template, "invoke", "POST")
    assert invoke["AuthorizationType"] == "AWS_IAM"
    assert invoke["RequestValidatorId"]
    (model_ref,) = invoke["RequestModels"].values()
    model = template.find_resources("AWS::ApiGateway::Model")[model_ref["Ref"]]["Properties"]["Schema"]
    # generated from FastAPI's InvokeBody: its bounds and extra="forbid", in draft-04
    assert model["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert model["required"] == ["message"]
    assert model["properties"]["message"]["minLength"] == 1 and model["properties"]["message"]["maxLength"] == 4000
    assert model["additionalProperties"] is False
    assert [(o.method, o.path) for o in agent.validated_operations] == [("POST", "/invoke")]
    # the other methods of /invoke still reach the app (its own 405), not a gateway 403
    assert method_on(template, "invoke", "ANY")["AuthorizationType"] == "AWS_IAM"


def test_an_api_key_api_requires_the_key_on_every_asgi_route(app_factory):
    stack, _ = asgi_stack(app_factory, api_options=AgentApiOptions(auth=ApiAuth.api_key(clients=["acme"])), openapi=None)
    template = Template.from_stack(stack)

    for method in methods(template).values():
        assert method["Properties"]["ApiKeyRequired"] is True
    template.resource_count_is("AWS::ApiGateway::Model", 0)  # openapi=None: no gateway validation


def test_an_http_api_serves_the_app_on_any_root_and_any_proxy_with_iam(app_factory):
    stack, agent = asgi_stack(app_factory, api_options=AgentApiOptions(kind="http"))
    template = Template.from_stack(stack)

    routes = template.find_resources("AWS::ApiGatewayV2::Route")
    keys = sorted(r["Properties"]["RouteKey"] for r in routes.values())
    assert keys == ["ANY /", "ANY /{proxy+}"]
    assert {r["Properties"]["AuthorizationType"] for r in routes.values()} == {"AWS_IAM"}
    assert agent.validated_operations == []


def test_lifespan_other_than_off_reaches_the_handler(app_factory):
    stack, _ = asgi_stack(app_factory, lifespan="auto", openapi=None)

    Template.from_stack(stack).has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"AGENT_ASGI_APP": EXAMPLE_APP, "AGENT_ASGI_LIFESPAN": "auto"})}},
    )


def test_an_app_path_that_does_not_import_fails_the_synth_in_one_sentence(app_factory, tmp_path: Path):
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\napp = None\n")

    with pytest.raises(
        ValueError,
        match=r"^AsgiAgent app='broken:app' does not import from .*: ModuleNotFoundError: No module named 'not_a_module_anywhere'$",
    ):
        asgi_stack(app_factory, app="broken:app", code=tmp_path)


def test_an_app_attribute_that_is_missing_fails_the_synth_in_one_sentence(app_factory):
    with pytest.raises(
        ValueError, match=r"^AsgiAgent app='fastapi_agent.main:nothing' does not import from .*: AttributeError: .*nothing"
    ):
        asgi_stack(app_factory, app="fastapi_agent.main:nothing")


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("fastapi_agent.main", r"must be module:attribute"),
        ("app:app", r"shadowed by the Lambda handler's own app.py"),
    ],
)
def test_a_malformed_app_path_fails_before_anything_is_imported(app_factory, app: str, message: str):
    with pytest.raises(ValueError, match=message):
        asgi_stack(app_factory, app=app)


def test_code_that_is_not_a_folder_fails_naming_the_fix(app_factory, tmp_path: Path):
    with pytest.raises(ValueError, match=r"is not a folder: point it at the folder your app's module is in"):
        asgi_stack(app_factory, code=tmp_path / "missing")


def test_agent_code_in_the_function_options_is_refused_in_favour_of_code(app_factory):
    with pytest.raises(ValueError, match=r"leave function_options.agent_code unset"):
        asgi_stack(app_factory, function_options=AgentFunctionOptions(agent_code=str(EXAMPLE)))


def test_the_constructs_never_import_the_app_into_the_cdk_process(example):
    import sys

    # the example was synthesized in this process (the module fixture) by a subprocess import only
    assert "fastapi_agent" not in sys.modules and "fastapi_agent.main" not in sys.modules
    assert example[1].app_class == "FastAPI"


def test_the_asgi_layer_is_one_per_stack_and_architecture(app_factory):
    stack = cdk.Stack(app_factory(), "Layers", env=TEST_ENV)
    first = AsgiLayer.of(stack, runtime=cdk.aws_lambda.Runtime.PYTHON_3_13, architecture=cdk.aws_lambda.Architecture.ARM_64)
    again = AsgiLayer.of(stack, runtime=cdk.aws_lambda.Runtime.PYTHON_3_13, architecture=cdk.aws_lambda.Architecture.ARM_64)

    assert first is again


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/items": {
            "post": {
                "operationId": "create_item",
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}},
            }
        },
        "/items/{item_id}/tags": {
            "put": {
                "requestBody": {
                    "content": {"application/json": {"schema": {"type": "array", "prefixItems": [{"type": "string"}]}}}
                }
            }
        },
        "/{tenant}/notes": {"post": {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}},
        "/health": {"get": {}},
    },
    "components": {
        "schemas": {
            "Item": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 20, "title": "Name"}},
                "required": ["name"],
            }
        }
    },
}


def test_only_json_bodies_with_a_draft4_form_off_a_literal_first_segment_are_validated():
    found, skipped = validated_operations(DOCUMENT)

    assert [(o.method, o.path, o.name) for o in found] == [("POST", "/items", "CreateItem")]
    assert found[0].schema["properties"]["name"] == {"type": "string", "maxLength": 20}  # title dropped: draft-04
    assert skipped == [
        "PUT /items/{item_id}/tags: JSON Schema keyword 'prefixItems' has no draft-04 equivalent",
        "POST /{tenant}/notes: a path parameter first would be a sibling of /{proxy+}",
    ]


def test_a_document_file_of_yours_validates_its_operations_and_warns_about_the_rest(app_factory, tmp_path: Path):
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(DOCUMENT))
    stack, agent = asgi_stack(app_factory, openapi=document)
    template = Template.from_stack(stack)

    assert method_on(template, "items", "POST")["RequestModels"]
    assert method_on(template, "items", "ANY")  # the app still answers GET /items
    # and the paths below /items (GET /items/7) reach the app too, not the gateway's 403 for a missing resource
    proxies = [
        r for r in template.find_resources("AWS::ApiGateway::Resource").values() if r["Properties"]["PathPart"] == "{proxy+}"
    ]
    assert len(proxies) == 2
    warnings = Annotations.from_stack(stack).find_warning("*", Match.any_value())
    assert sum("not validated at the gateway" in json.dumps(w.entry.data) for w in warnings) == 2
    assert len(agent.skipped_operations) == 2


def test_an_openapi_path_that_is_not_a_file_fails_naming_the_choices(app_factory, tmp_path: Path):
    with pytest.raises(ValueError, match=r"is not a file: pass 'app', a JSON file, or None"):
        asgi_stack(app_factory, openapi=tmp_path / "missing.json")
