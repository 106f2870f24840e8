"""Signed task webhooks: the notifier POSTs the ``Task Finished`` event to the caller's URL, to the address it vetted,
signed with the owner's key derived from a Secrets Manager secret."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence

import httpx
import pytest

from agentrail_runtime.signatures import SIGNATURE_HEADER, InvalidSignature, receiver_secret, verify
from agentrail_runtime.tasks.notifier import WebhookDeliveryFailed, WebhookNotifier
from agentrail_runtime.tasks.webhook import CallbackPolicy, InvalidCallbackUrl

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

SECRET_NAME = "agentrail/webhook-signing"
SECRET_VALUE = b"whsec-9c1f4e7a2b5d8e0f3a6c9d2e5f8a1b4c"
HOOKS_ADDRESS = "52.94.236.248"
# The caller of events/tasks/*.json assumed this role; an assumed role's identity is the role (README, "Who the caller is").
OWNER = "iam:arn:aws:iam::123456789012:role/agentrail-caller"


class Dns:
    """Fixed answers (this machine has no DNS), in turn: the n-th lookup of a host gets its n-th answer (the last one after)."""

    def __init__(self, **answers: Sequence[Sequence[str]]) -> None:
        self.answers = {host.replace("_", "."): list(turns) for host, turns in answers.items()}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        turns = self.answers[host]
        self.asked.append(host)
        return turns[min(self.asked.count(host), len(turns)) - 1]


class Receiver:
    """The caller's webhook endpoint: records each request and answers ``status`` (or fails to connect)."""

    def __init__(self, status: int = 204, *, unreachable: bool = False) -> None:
        self.status = status
        self.unreachable = unreachable
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        # The transport connects to request.url's host: that is the address the call reaches.
        self.requests.append(request)
        if self.unreachable:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(self.status)


@pytest.fixture
def notifier(aws, clock) -> Callable[..., WebhookNotifier]:
    """A notifier whose signing secret is read from (moto) Secrets Manager, posting to ``receiver``; it signs at the test's clock.

    ``hooks.example.com`` resolves to a public address unless ``dns`` says otherwise.
    """

    def build(receiver: Receiver, *, dns: Dns | None = None) -> WebhookNotifier:
        client = httpx.Client(transport=httpx.MockTransport(receiver))
        resolver = dns or Dns(hooks_example_com=[[HOOKS_ADDRESS]])
        return WebhookNotifier(SECRET_NAME, http_client=client, callbacks=CallbackPolicy(resolver=resolver))

    return build


@pytest.fixture
def finished(load_event) -> dict:
    return copy.deepcopy(load_event("tasks/task-finished.json")["detail"])


def test_the_notification_is_signed_with_the_owners_key_and_verifies(notifier, finished, clock):
    now = int(clock.now)
    receiver = Receiver()

    outcome = notifier(receiver).deliver(finished)

    assert outcome == {"delivered": True, "status_code": 204}
    [request] = receiver.requests
    assert (request.method, request.url.path) == ("POST", "/agentrail/tasks")
    assert request.headers["Content-Type"] == "application/json"
    owner_key = receiver_secret(SECRET_VALUE, OWNER).encode()
    assert verify(owner_key, request.headers[SIGNATURE_HEADER], request.content, now=now + 5) == now
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
    owner_key = receiver_secret(SECRET_VALUE, OWNER).encode()

    with pytest.raises(InvalidSignature):
        verify(b"not-the-secret", request.headers[SIGNATURE_HEADER], request.content, now=now)
    with pytest.raises(InvalidSignature):
        verify(owner_key, request.headers[SIGNATURE_HEADER], request.content.replace(b"succeeded", b"failed"), now=now)


def test_one_owners_receiver_can_neither_verify_nor_forge_another_owners_notifications(notifier, finished, clock):
    now = int(clock.now)
    receiver = Receiver()
    other = dict(finished, owner="iam:arn:aws:iam::123456789012:user/mallory")
    notifier(receiver).deliver(finished)
    notifier(receiver).deliver(other)
    [for_owner, for_other] = receiver.requests
    mallory_key = receiver_secret(SECRET_VALUE, other["owner"]).encode()

    assert verify(mallory_key, for_other.headers[SIGNATURE_HEADER], for_other.content, now=now) == now
    with pytest.raises(InvalidSignature, match="mismatch"):
        verify(mallory_key, for_owner.headers[SIGNATURE_HEADER], for_owner.content, now=now)
    with pytest.raises(InvalidSignature, match="mismatch"):
        verify(SECRET_VALUE, for_owner.headers[SIGNATURE_HEADER], for_owner.content, now=now)


def test_the_notifier_connects_to_the_vetted_address_and_presents_the_name_for_tls_and_host(notifier, finished):
    receiver = Receiver()
    finished["callback_url"] = "https://hooks.example.com:8443/agentrail/tasks?source=agentrail"

    notifier(receiver).deliver(finished)

    [request] = receiver.requests
    assert (request.url.host, request.url.port) == (HOOKS_ADDRESS, 8443)
    assert request.url.raw_path == b"/agentrail/tasks?source=agentrail"
    assert request.headers["Host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


def test_a_dns_rebind_after_the_check_cannot_redirect_the_call(notifier, finished):
    receiver = Receiver()
    dns = Dns(hooks_example_com=[[HOOKS_ADDRESS], ["127.0.0.1"], ["169.254.169.254"]])

    notifier(receiver, dns=dns).deliver(finished)

    [request] = receiver.requests
    assert request.url.host == HOOKS_ADDRESS
    assert dns.asked == ["hooks.example.com"]


@pytest.mark.parametrize(
    ("url", "answers"),
    [
        ("https://2852039166/latest/meta-data/", None),
        ("https://127.1/", None),
        ("https://169.254.169.254.nip.io/latest/meta-data/", ["169.254.169.254"]),
        ("https://localhost./", ["127.0.0.1"]),
        ("https://rebound.example.com/", ["64:ff9b::a9fe:a9fe"]),
    ],
    ids=["decimal-imds", "short-loopback", "wildcard-dns", "localhost-dot", "nat64-imds"],
)
def test_the_reviewed_ssrf_urls_are_refused_before_any_request(notifier, finished, url, answers):
    receiver = Receiver()
    finished["callback_url"] = url
    host = url.split("/")[2].rstrip(".")
    dns = Dns(hooks_example_com=[[HOOKS_ADDRESS]], **({host.replace(".", "_"): [answers]} if answers else {}))

    with pytest.raises(InvalidCallbackUrl):
        notifier(receiver, dns=dns).deliver(finished)
    assert receiver.requests == []


def test_a_host_that_does_not_resolve_fails_the_delivery_so_it_is_retried(notifier, finished):
    dns = Dns(hooks_example_com=[[]])

    with pytest.raises(WebhookDeliveryFailed, match="does not resolve"):
        notifier(Receiver(), dns=dns).deliver(finished)


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


def test_each_caller_reads_its_own_webhook_key_from_the_api(aws, task_handler, api_event, call):
    api = task_handler("tasks").handler
    event = api_event("get-task")
    event.update(resource="/webhooks/secret", path="/webhooks/secret", pathParameters=None)
    other = copy.deepcopy(event)
    other["requestContext"]["identity"]["userArn"] = "arn:aws:iam::123456789012:user/mallory"

    mine, theirs = call(api, event), call(api, other)

    assert mine.status == theirs.status == 200
    assert mine.headers["Cache-Control"] == "no-store"
    assert event["requestContext"]["identity"]["userArn"].startswith("arn:aws:sts::123456789012:assumed-role/agentrail-caller/")
    assert mine.body["secret"] == receiver_secret(SECRET_VALUE, OWNER)
    assert theirs.body["secret"] == receiver_secret(SECRET_VALUE, "iam:arn:aws:iam::123456789012:user/mallory")
    assert mine.body["secret"] != theirs.body["secret"]
    assert mine.body["header"] == SIGNATURE_HEADER
