"""Signed task webhooks: the notifier POSTs the ``Task Finished`` event to the caller's URL, signed with a Secrets Manager secret."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import httpx
import pytest
from agentrail_runtime.signatures import SIGNATURE_HEADER, InvalidSignature, verify
from agentrail_runtime.tasks.notifier import WebhookDeliveryFailed, WebhookNotifier
from agentrail_runtime.tasks.webhook import InvalidCallbackUrl

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

SECRET_NAME = "agentrail/webhook-signing"
SECRET_VALUE = b"whsec-9c1f4e7a2b5d8e0f3a6c9d2e5f8a1b4c"


class Receiver:
    """The caller's webhook endpoint: records each request and answers ``status`` (or fails to connect)."""

    def __init__(self, status: int = 204, *, unreachable: bool = False) -> None:
        self.status = status
        self.unreachable = unreachable
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.unreachable:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(self.status)


@pytest.fixture
def notifier(aws, clock) -> Callable[[Receiver], WebhookNotifier]:
    """A notifier whose signing secret is read from (moto) Secrets Manager, posting to ``receiver``; it signs at the test's clock."""

    def build(receiver: Receiver) -> WebhookNotifier:
        client = httpx.Client(transport=httpx.MockTransport(receiver))
        return WebhookNotifier(SECRET_NAME, http_client=client)

    return build


@pytest.fixture
def finished(load_event) -> dict:
    return copy.deepcopy(load_event("tasks/task-finished.json")["detail"])


def test_the_notification_is_signed_with_the_secret_and_verifies(notifier, finished, clock):
    now = int(clock.now)
    receiver = Receiver()

    outcome = notifier(receiver).deliver(finished)

    assert outcome == {"delivered": True, "status_code": 204}
    [request] = receiver.requests
    assert (request.method, str(request.url)) == ("POST", "https://hooks.example.com/agentrail/tasks")
    assert request.headers["Content-Type"] == "application/json"
    assert verify(SECRET_VALUE, request.headers[SIGNATURE_HEADER], request.content, now=now + 5) == now
    assert json.loads(request.content) == {
        "task_id": finished["task_id"],
        "task_type": "default",
        "status": "succeeded",
        "finished_at": finished["finished_at"],
        "steps": 3,
        "usage": {"input_tokens": 1706, "output_tokens": 76},
        "cost_usd": 0.0,
        "error": None,
    }


def test_the_notification_does_not_verify_with_another_secret_or_a_changed_body(notifier, finished, clock):
    now = int(clock.now)
    receiver = Receiver()
    notifier(receiver).deliver(finished)
    [request] = receiver.requests

    with pytest.raises(InvalidSignature):
        verify(b"not-the-secret", request.headers[SIGNATURE_HEADER], request.content, now=now)
    with pytest.raises(InvalidSignature):
        verify(SECRET_VALUE, request.headers[SIGNATURE_HEADER], request.content.replace(b"succeeded", b"failed"), now=now)


def test_the_notification_carries_neither_the_owner_nor_the_correlation_id(notifier, finished):
    receiver = Receiver()

    notifier(receiver).deliver(finished)

    body = json.loads(receiver.requests[0].content)
    assert "owner" not in body and "callback_url" not in body and "correlation_id" not in body


@pytest.mark.parametrize("status", [301, 404, 500, 503])
def test_a_receiver_answering_other_than_2xx_fails_the_delivery_so_it_is_retried(notifier, finished, status):
    with pytest.raises(WebhookDeliveryFailed, match=f"HTTP {status}"):
        notifier(Receiver(status)).deliver(finished)


def test_an_unreachable_receiver_fails_the_delivery_without_leaking_the_url(notifier, finished):
    with pytest.raises(WebhookDeliveryFailed, match="unreachable") as failed:
        notifier(Receiver(unreachable=True)).deliver(finished)

    assert "hooks.example.com" not in str(failed.value)


def test_a_task_without_a_callback_url_is_not_delivered(notifier, finished):
    receiver = Receiver()
    finished["callback_url"] = None

    assert notifier(receiver).deliver(finished) == {"delivered": False, "reason": "no callback_url"}
    assert receiver.requests == []


def test_a_callback_url_aimed_inside_is_refused_before_any_request(notifier, finished):
    receiver = Receiver()
    finished["callback_url"] = "https://169.254.169.254/latest/meta-data/"

    with pytest.raises(InvalidCallbackUrl):
        notifier(receiver).deliver(finished)
    assert receiver.requests == []


def test_the_notifier_handler_reads_the_eventbridge_event(aws, task_handler, load_event, lambda_context):
    event = load_event("tasks/task-finished.json")
    event["detail"]["callback_url"] = None

    assert task_handler("task_notifier").handler(event, lambda_context) == {"delivered": False, "reason": "no callback_url"}


def test_the_shared_task_finished_event_has_the_shape_the_task_events_have(
    aws, task_handler, api_event, call, lambda_context, load_event
):
    api = task_handler("tasks").handler
    task_id = call(api, api_event("submit", body={"message": "Calculate 2 + 2"})).body["task_id"]
    call(api, api_event("cancel-task", task_id=task_id))

    [published] = aws.task_events()

    shared = load_event("tasks/task-finished.json")
    assert set(published) <= set(shared)  # moto's envelope lacks "account", which EventBridge adds
    assert set(published["detail"]) == set(shared["detail"])
    assert (published["source"], published["detail-type"]) == (shared["source"], shared["detail-type"])
