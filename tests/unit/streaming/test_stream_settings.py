"""The streaming settings and wire format, without AWS: what the construct's environment means to the runtime."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from agentrail_runtime import aws, contract
from agentrail_runtime.streaming import (
    ConnectionPublisher,
    ConnectionStore,
    ConnectTickets,
    EventLog,
    StreamEvent,
    StreamSettings,
    post_config,
)


@pytest.fixture
def stream_env(env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("TICKET_TABLE", "CONNECTION_TABLE", "EVENT_TABLE", "CONNECTIONS_URL"):
        env.delenv(f"{contract.STREAM_ENV_PREFIX}{name}", raising=False)
    return env


def test_the_contracts_variables_load_into_the_settings(stream_env):
    # Given the environment the construct writes, by the contract's names
    stream_env.setenv(contract.STREAM_TICKET_TABLE_ENV, "tickets")
    stream_env.setenv(contract.STREAM_CONNECTION_TABLE_ENV, "connections")
    stream_env.setenv(contract.STREAM_EVENT_TABLE_ENV, "events")
    stream_env.setenv(contract.STREAM_CONNECTIONS_URL_ENV, "https://abc123.execute-api.us-east-1.amazonaws.com/prod")

    settings = StreamSettings()

    assert (settings.ticket_table, settings.connection_table, settings.event_table) == ("tickets", "connections", "events")
    assert settings.connections_url == "https://abc123.execute-api.us-east-1.amazonaws.com/prod"


def test_the_defaults_are_a_minute_per_ticket_two_hours_and_ten_minutes_per_connection_and_an_hour_of_events(stream_env):
    settings = StreamSettings()

    assert (settings.ticket_ttl_seconds, settings.connection_ttl_seconds, settings.event_ttl_seconds) == (60, 7800, 3600)
    assert settings.post_timeout_seconds == 2.0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AGENT_STREAM_CONNECTION_TTL_SECONDS", "3600"),
        ("AGENT_STREAM_TICKET_TTL_SECONDS", "3600"),
        ("AGENT_STREAM_EVENT_TTL_SECONDS", "10"),
        ("AGENT_STREAM_POST_TIMEOUT_SECONDS", "30"),
        ("AGENT_STREAM_CONNECTIONS_URL", "abc123.execute-api.us-east-1.amazonaws.com/prod"),
    ],
)
def test_a_setting_out_of_bounds_fails_at_cold_start(stream_env, variable, value):
    stream_env.setenv(variable, value)

    with pytest.raises(ValidationError):
        StreamSettings()


@pytest.mark.parametrize(
    ("build", "variable"),
    [
        (lambda s: ConnectTickets.from_settings(s), contract.STREAM_TICKET_TABLE_ENV),
        (lambda s: ConnectionStore.from_settings(s), contract.STREAM_CONNECTION_TABLE_ENV),
        (lambda s: EventLog.from_settings(s), contract.STREAM_EVENT_TABLE_ENV),
        (lambda s: ConnectionPublisher.from_settings(s, ConnectionStore("connections")), contract.STREAM_CONNECTIONS_URL_ENV),
    ],
    ids=["tickets", "connections", "events", "publisher"],
)
def test_a_store_built_without_its_variable_names_the_variable(stream_env, build, variable):
    with pytest.raises(ValueError, match=variable):
        build(StreamSettings())


def test_stores_built_from_the_settings_carry_their_ttls(stream_env):
    stream_env.setenv(contract.STREAM_TICKET_TABLE_ENV, "tickets")
    stream_env.setenv(contract.STREAM_CONNECTION_TABLE_ENV, "connections")
    stream_env.setenv(contract.STREAM_EVENT_TABLE_ENV, "events")
    stream_env.setenv("AGENT_STREAM_TICKET_TTL_SECONDS", "30")
    stream_env.setenv("AGENT_STREAM_CONNECTION_TTL_SECONDS", "9000")
    stream_env.setenv("AGENT_STREAM_EVENT_TTL_SECONDS", "600")
    settings = StreamSettings()

    assert (ConnectTickets.from_settings(settings).table_name, ConnectTickets.from_settings(settings).ttl_seconds) == (
        "tickets",
        30,
    )
    assert ConnectionStore.from_settings(settings).ttl_seconds == 9000
    assert EventLog.from_settings(settings).ttl_seconds == 600


def test_an_event_goes_on_the_wire_as_its_fields_and_its_number():
    event = StreamEvent(event_id=7, event={"type": "tool_call", "name": "get_weather", "event_id": "spoofed"})

    assert json.loads(event.wire()) == {"event_id": 7, "type": "tool_call", "name": "get_weather"}


def test_a_post_is_one_attempt_whatever_the_retry_configuration_of_the_other_clients():
    merged = aws.RETRIES.merge(post_config(1.5))

    assert merged.retries == {"mode": "standard", "total_max_attempts": 1}
    assert (merged.connect_timeout, merged.read_timeout) == (1.5, 1.5)
