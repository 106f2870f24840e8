"""Every body API Gateway validates is validated with the model generated from the handler's pydantic model.

API Gateway rejects a body before the function runs; the handler validates it
again. If the two disagree, a caller either gets a gateway 400 for a body the
OpenAPI document allows, or reaches the function with one the gateway should
have stopped. So the gateway's models are generated (``make schemas``), every
route with a body is checked against its handler's model, and sample bodies get
the same verdict from both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from jsonschema import Draft4Validator, Draft202012Validator
from pydantic import BaseModel, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from agentrail_constructs.request_models import request_models
from agentrail_runtime.api.erasure import ErasureRequest
from agentrail_runtime.api.gateway_models import openapi_documents, request_bodies
from agentrail_runtime.api.sessions import CreateSessionRequest, MessageRequest, SessionFeedbackRequest, StateUpdate
from agentrail_runtime.api.stateless import InvokeRequest
from agentrail_runtime.api.tasks import TaskFeedbackRequest
from agentrail_runtime.approvals.models import MAX_COMMENT_CHARS, DecisionRequest
from agentrail_runtime.tasks.service import TaskSubmission

ACCEPT, REJECT = True, False
Route = tuple[str, str]


@pytest.fixture(scope="module")
def handler_bodies() -> dict[Route, tuple[str, dict[str, Any]]]:
    """``(METHOD, path)`` -> (pydantic model, draft-04 schema) of every route of every agent API that takes a body."""
    bodies: dict[Route, tuple[str, dict[str, Any]]] = {}
    for document in openapi_documents().values():
        bodies.update(request_bodies(document))
    return bodies


def gateway_models_by_route(synthesized: Any) -> dict[Route, dict[str, Any] | None]:
    """``(METHOD, path)`` -> the schema of the route's ``AWS::ApiGateway::Model`` (None without one)."""
    models = synthesized.of_type("AWS::ApiGateway::Model")
    found: dict[Route, dict[str, Any] | None] = {}
    for route, method in synthesized.routes().items():
        reference = (method.get("RequestModels") or {}).get("application/json")
        found[route] = models[reference["Ref"]]["Schema"] if reference else None
    return found


def test_every_route_with_a_body_in_every_pattern_is_validated_with_its_handlers_generated_model(
    pattern_stacks: dict[str, Any], handler_bodies: dict[Route, tuple[str, dict[str, Any]]]
) -> None:
    generated = request_models()
    seen: set[Route] = set()
    for name, synthesized in pattern_stacks.items():
        if name == "asgi":
            continue  # its models come from the ASGI app's own OpenAPI document (tests/infra/test_asgi_agent.py)
        for route, schema in gateway_models_by_route(synthesized).items():
            if route not in handler_bodies:
                assert schema is None, f"{name}: {route} has a model but its handler reads no body"
                continue
            model, expected = handler_bodies[route]
            assert schema == expected == generated[model], f"{name}: {route} is not validated with {model}"
            seen.add(route)

    assert seen == set(handler_bodies), f"routes with a body no pattern deploys: {set(handler_bodies) - seen}"


def test_the_routes_with_a_body_are_the_ones_the_api_documents(handler_bodies: dict[Route, tuple[str, dict[str, Any]]]) -> None:
    assert {route: model for route, (model, _) in handler_bodies.items()} == {
        ("POST", "/invoke"): "InvokeRequest",
        ("POST", "/sessions"): "CreateSessionRequest",
        ("POST", "/sessions/{session_id}/messages"): "MessageRequest",
        ("PUT", "/sessions/{session_id}/state"): "StateUpdate",
        ("POST", "/sessions/{session_id}/feedback"): "SessionFeedbackRequest",
        ("POST", "/tasks"): "TaskSubmission",
        ("POST", "/tasks/{task_id}/feedback"): "TaskFeedbackRequest",
        ("POST", "/approvals/{approval_id}/decision"): "DecisionRequest",
        ("POST", "/erase"): "ErasureRequest",
    }


MESSAGE_BODIES: list[tuple[Any, bool]] = [
    ({"message": "What is the capital of France?"}, ACCEPT),
    ({"message": "hi", "model": "bedrock:amazon.nova-lite-v1:0"}, ACCEPT),
    ({"message": "  padded on both sides  "}, ACCEPT),
    ({"message": "héllo wörld ✓"}, ACCEPT),
    ({"message": "x" * 8000}, ACCEPT),
    ({"message": "é" * 8000}, ACCEPT),
    ({"message": "hi", "model": "m" * 200}, ACCEPT),
    ({"message": "hi", "model": None}, ACCEPT),
    ({"message": "x" * 8001}, REJECT),
    ({"message": ""}, REJECT),
    ({"message": "   \n\t "}, REJECT),
    ({"message": None}, REJECT),
    ({"message": 42}, REJECT),
    ({"message": True}, REJECT),
    ({"message": ["hi"]}, REJECT),
    ({"message": {"text": "hi"}}, REJECT),
    ({}, REJECT),
    ({"model": "local"}, REJECT),
    ({"message": "hi", "stream": True}, REJECT),
    ({"message": "hi", "model": ""}, REJECT),
    ({"message": "hi", "model": "   "}, REJECT),
    ({"message": "hi", "model": "m" * 201}, REJECT),
    ({"message": "hi", "model": 7}, REJECT),
    ([{"message": "hi"}], REJECT),
    ("hi", REJECT),
    (None, REJECT),
]

FEEDBACK_BODIES: list[tuple[Any, bool]] = [
    ({"score": 1}, ACCEPT),
    ({"score": 5, "comment": "Right answer."}, ACCEPT),
    ({"thumbs": "up"}, ACCEPT),
    ({"thumbs": "down", "comment": None}, ACCEPT),
    ({"score": 3, "comment": "c" * 2000}, ACCEPT),
    ({"score": 0}, REJECT),
    ({"score": 6}, REJECT),
    ({"score": "4"}, REJECT),
    ({"score": 4.5}, REJECT),
    ({"score": 4.0}, REJECT),
    ({"score": True}, REJECT),
    ({"score": None}, REJECT),
    ({"thumbs": None}, REJECT),
    ({"thumbs": "sideways"}, REJECT),
    ({"score": 4, "thumbs": "up"}, REJECT),
    ({"score": None, "thumbs": "up"}, REJECT),
    ({}, REJECT),
    ({"comment": "only a comment"}, REJECT),
    ({"score": 4, "stars": 5}, REJECT),
    ({"score": 4, "comment": "c" * 2001}, REJECT),
    ([{"score": 4}], REJECT),
    ("up", REJECT),
    (None, REJECT),
]

#: model name -> (pydantic model, [(body, verdict)]): each body must get the same verdict from API Gateway and pydantic.
SAMPLE_BODIES: dict[str, tuple[type[BaseModel], list[tuple[Any, bool]]]] = {
    "InvokeRequest": (InvokeRequest, MESSAGE_BODIES),
    "MessageRequest": (MessageRequest, MESSAGE_BODIES),
    "TaskSubmission": (
        TaskSubmission,
        [
            *MESSAGE_BODIES,
            ({"message": "hi", "task_type": "long", "callback_url": "https://example.com/hook"}, ACCEPT),
            ({"message": "hi", "metadata": {"k": "v" * 256}}, ACCEPT),
            ({"message": "hi", "metadata": {f"k{i}": "v" for i in range(16)}}, ACCEPT),
            ({"message": "hi", "metadata": {"k": "v" * 257}}, REJECT),
            ({"message": "hi", "metadata": {f"k{i}": "v" for i in range(17)}}, REJECT),
            ({"message": "hi", "metadata": {"k": 1}}, REJECT),
            ({"message": "hi", "task_type": "Long"}, REJECT),
            ({"message": "hi", "task_type": "a" * 33}, REJECT),
            ({"message": "hi", "callback_url": ""}, REJECT),
            ({"message": "hi", "callback_url": "0"}, REJECT),
            ({"message": "hi", "callback_url": "example.com/hook"}, REJECT),
            ({"message": "hi", "callback_url": "HTTPS://example.com"}, ACCEPT),
            ({"message": "hi", "callback_url": "h" * 2049}, REJECT),
        ],
    ),
    "DecisionRequest": (
        DecisionRequest,
        [
            ({"decision": "approve"}, ACCEPT),
            ({"decision": "reject", "comment": "not this account"}, ACCEPT),
            ({"decision": "reject", "comment": None}, ACCEPT),
            ({"decision": "approve", "comment": "c" * MAX_COMMENT_CHARS}, ACCEPT),
            ({"decision": "approve", "comment": "c" * (MAX_COMMENT_CHARS + 1)}, REJECT),
            ({"decision": "maybe"}, REJECT),
            ({"decision": "APPROVE"}, REJECT),
            ({}, REJECT),
            ({"decision": "approve", "approver": "me"}, REJECT),
            (None, REJECT),
        ],
    ),
    "SessionFeedbackRequest": (
        SessionFeedbackRequest,
        [
            *FEEDBACK_BODIES,
            ({"score": 4, "turn": 1}, ACCEPT),
            ({"thumbs": "up", "turn": None}, ACCEPT),
            ({"score": 4, "turn": 0}, REJECT),
            ({"score": 4, "turn": "1"}, REJECT),
            ({"score": 4, "turn": 1.0}, REJECT),
        ],
    ),
    "TaskFeedbackRequest": (TaskFeedbackRequest, [*FEEDBACK_BODIES, ({"score": 4, "turn": 1}, REJECT)]),
    "CreateSessionRequest": (
        CreateSessionRequest,
        [
            ({}, ACCEPT),
            ({"state": {"language": "fr"}}, ACCEPT),
            ({"state": None}, ACCEPT),
            ({"state": "fr"}, REJECT),
            ({"state": ["fr"]}, REJECT),
            ({"name": "x"}, REJECT),
            ("session", REJECT),
        ],
    ),
    "ErasureRequest": (
        ErasureRequest,
        [
            ({}, ACCEPT),
            ({"principal": "iam:arn:aws:iam::123456789012:user/alice"}, ACCEPT),
            ({"principal": "cognito:7d1e2f3a"}, ACCEPT),
            ({"principal": ""}, REJECT),
            ({"principal": "x" * 513}, REJECT),
            ({"principal": 42}, REJECT),
            ({"principal": "apikey:abc", "everyone": True}, REJECT),
        ],
    ),
    "StateUpdate": (
        StateUpdate,
        [
            ({"data": {"language": "fr"}, "expected_version": 0}, ACCEPT),
            ({"data": {}, "expected_version": 7}, ACCEPT),
            ({"data": {}, "expected_version": -1}, REJECT),
            ({"data": {}, "expected_version": "1"}, REJECT),
            ({"data": {}, "expected_version": 1.5}, REJECT),
            ({"data": {}, "expected_version": 1.0}, REJECT),
            ({"data": {}, "expected_version": True}, REJECT),
            ({"data": {}}, REJECT),
            ({"expected_version": 0}, REJECT),
            ({"data": None, "expected_version": 0}, REJECT),
            ({"data": {}, "expected_version": 0, "extra": 1}, REJECT),
        ],
    ),
}

CASES = [
    pytest.param(name, model, body, verdict, id=f"{name}-{json.dumps(body)[:40]}")
    for name, (model, samples) in SAMPLE_BODIES.items()
    for body, verdict in samples
]


def test_every_model_with_a_body_has_sample_bodies() -> None:
    assert set(SAMPLE_BODIES) == set(request_models())


@pytest.mark.parametrize(("name", "model", "body", "verdict"), CASES)
def test_gateway_and_handler_give_the_same_verdict(name: str, model: type[BaseModel], body: Any, verdict: bool) -> None:
    schema = request_models()[name]
    Draft4Validator.check_schema(schema)
    # The body travels as JSON text; both sides see what json.loads makes of it.
    parsed = json.loads(json.dumps(body))

    gateway_accepts = Draft4Validator(schema).is_valid(parsed)
    try:
        model.model_validate(parsed)
        handler_accepts = True
    except ValidationError:
        handler_accepts = False

    assert (gateway_accepts, handler_accepts) == (verdict, verdict)


def test_the_constructs_read_the_runtime_contract_without_importing_the_runtime_or_pydantic() -> None:
    # Given a Python where pydantic cannot be imported, when the constructs load the contract...
    code = (
        "import sys; sys.modules['pydantic'] = None\n"
        "from agentrail_constructs.contract import contract\n"
        "from agentrail_constructs.request_models import request_model\n"
        "request_model('InvokeRequest')\n"
        "print(contract.MODEL_SPEC.pattern, 'agentrail_runtime' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)

    # ...they still work, and the runtime package itself was never imported.
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [r"^(local|(bedrock|openai):[\w.:/-]+)$", "False"]


#: JSON Schema (2020-12, the OpenAPI document's dialect) counts 1.0 as an integer; draft-04 (API Gateway) and
#: pydantic's strict int do not. The document says so in the field's description: both refuse it with 400.
#: (model, body) -> the field whose description says so.
SPEC_CANNOT_TELL = {
    ("StateUpdate", json.dumps({"data": {}, "expected_version": 1.0})): "expected_version",
    ("SessionFeedbackRequest", json.dumps({"score": 4.0})): "score",
    ("TaskFeedbackRequest", json.dumps({"score": 4.0})): "score",
    ("SessionFeedbackRequest", json.dumps({"score": 4, "turn": 1.0})): "turn",
}


@pytest.fixture(scope="module")
def components() -> dict[str, Any]:
    """The request schemas of every agent API's OpenAPI document, by model name."""
    found: dict[str, Any] = {}
    for document in openapi_documents().values():
        found.update(document["components"]["schemas"])
    return found


@pytest.mark.parametrize(("name", "model", "body", "verdict"), CASES)
def test_the_openapi_documents_schema_gives_the_same_verdict_as_the_gateway_and_the_handler(
    components: dict[str, Any], name: str, model: type[BaseModel], body: Any, verdict: bool
) -> None:
    resource = Resource.from_contents({"components": {"schemas": components}}, default_specification=DRAFT202012)
    spec = Draft202012Validator(
        {"$ref": f"urn:agentrail:openapi#/components/schemas/{name}"},
        registry=Registry().with_resource("urn:agentrail:openapi", resource),
    )

    spec_accepts = spec.is_valid(json.loads(json.dumps(body)))

    if (name, json.dumps(body)) in SPEC_CANNOT_TELL:
        assert (spec_accepts, verdict) == (ACCEPT, REJECT)
        field = components[name]["properties"][SPEC_CANNOT_TELL[(name, json.dumps(body))]]
        assert "a JSON integer" in json.dumps(field)
    else:
        assert spec_accepts == verdict
