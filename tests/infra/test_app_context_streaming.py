"""The app's ``streaming`` and ``streaming_auth`` context keys: the stateful pattern's WebSocket API and how it
authorizes ``$connect``."""

from __future__ import annotations

from collections.abc import Callable

import aws_cdk as cdk
import pytest

from agentrail_constructs.app_config import AppConfig
from agentrail_constructs.stacks import PATTERN_STACKS


def stateful_options(app_factory: Callable[..., cdk.App], **context: str) -> dict:
    app = app_factory(context={"patterns": "stateful", **context})
    return AppConfig.from_context(app, tuple(PATTERN_STACKS)).stack_options("stateful")


def test_without_the_streaming_key_the_stateful_pattern_does_not_stream(app_factory: Callable[..., cdk.App]) -> None:
    assert "streaming_options" not in stateful_options(app_factory)


@pytest.mark.parametrize(("given", "auth"), [({}, "ticket"), ({"streaming_auth": "iam"}, "iam")])
def test_streaming_true_streams_with_tickets_unless_streaming_auth_says_iam(
    app_factory: Callable[..., cdk.App], given: dict[str, str], auth: str
) -> None:
    options = stateful_options(app_factory, streaming="true", **given)

    assert options["streaming_options"].auth == auth


def test_streaming_auth_without_streaming_fails_naming_the_key_to_add(app_factory: Callable[..., cdk.App]) -> None:
    with pytest.raises(ValueError, match="add -c streaming=true"):
        stateful_options(app_factory, streaming_auth="iam")


def test_an_unknown_streaming_auth_fails_naming_the_choices(app_factory: Callable[..., cdk.App]) -> None:
    with pytest.raises(ValueError, match="'streaming_auth' must be one of ticket, iam"):
        stateful_options(app_factory, streaming="true", streaming_auth="cognito")


def test_a_streaming_value_that_is_no_boolean_fails(app_factory: Callable[..., cdk.App]) -> None:
    with pytest.raises(ValueError, match="streaming"):
        stateful_options(app_factory, streaming="yes please")
