"""Task webhooks: EventBridge "Task Finished" events with a callback URL, POSTed with an HMAC-SHA256 signature.

A failed delivery raises: Lambda's asynchronous retries back off, and what
still fails lands in the dead-letter queue of the rule's target.
"""

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.observability import observed
from agentrail_runtime.tasks.notifier import WebhookNotifier
from agentrail_runtime.tasks.settings import WebhookSettings

notifier = WebhookNotifier.from_settings(WebhookSettings())


@observed("detail.correlation_id")
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict:
    return notifier.deliver(event.detail)
