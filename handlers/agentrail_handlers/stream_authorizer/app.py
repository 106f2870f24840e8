"""Streaming API, ``$connect`` authorizer: redeems the connect ticket in ``?ticket=`` (single use, short-lived)."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.observability import observed
from agentrail_runtime.streaming import ConnectTickets, load_stream_settings
from agentrail_runtime.streams.authorizer import authorize

tickets = ConnectTickets.from_settings(load_stream_settings())


@observed(correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: LambdaContext) -> dict:
    return authorize(event, tickets)
