"""RuntimeSettings: every AGENT_* variable, validated at cold start with messages that name the fix."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from agentrail_runtime.config import DependencyCheck, RuntimeSettings
from agentrail_runtime.metering.pricing import ModelPrice


@pytest.fixture
def agent_env(env):
    """The environment without any AGENT_* variable of the machine running the tests."""
    for name in [n for n in os.environ if n.startswith("AGENT_")]:
        env.delenv(name)
    return env


def test_defaults_run_the_demo_agent_on_the_local_model(agent_env):
    settings = RuntimeSettings()

    assert settings.model == "local"
    assert settings.models == ("local",)
    assert settings.definition == "agentrail_runtime.demo:definition"
    assert (settings.max_steps, settings.token_budget, settings.max_output_tokens) == (8, 20_000, 1024)
    assert settings.max_request_bytes == 16_384
    assert settings.model_max_attempts == 4
    assert settings.price_table == {}
    assert settings.health_checks == ()


def test_an_unknown_provider_fails_with_the_setting_and_the_accepted_forms(agent_env):
    agent_env.setenv("AGENT_MODEL", "foo:bar")

    with pytest.raises(
        ValidationError, match=r"AGENT_MODEL: unknown model 'foo:bar': use 'local', 'bedrock:<model-id>' or 'openai:<model>'"
    ):
        RuntimeSettings()


def test_a_provider_without_a_model_id_is_refused(agent_env):
    agent_env.setenv("AGENT_MODEL", "bedrock:")

    with pytest.raises(ValidationError, match="AGENT_MODEL: model spec 'bedrock:' names no model id"):
        RuntimeSettings()


def test_openai_models_need_the_api_key_secret(agent_env):
    agent_env.setenv("AGENT_MODEL", "openai:gpt-4o-mini")

    with pytest.raises(
        ValidationError, match=r"openai models need AGENT_OPENAI_API_KEY_SECRET \(a Secrets Manager name or ARN\)"
    ):
        RuntimeSettings()

    agent_env.setenv("AGENT_OPENAI_API_KEY_SECRET", "agentrail/openai")
    assert RuntimeSettings().models == ("openai:gpt-4o-mini",)


def test_allowed_models_are_a_comma_list_after_the_default_without_repeats(agent_env):
    agent_env.setenv("AGENT_MODEL", "bedrock:amazon.nova-lite-v1:0")
    agent_env.setenv("AGENT_ALLOWED_MODELS", " local , bedrock:us.amazon.nova-pro-v1:0,,bedrock:amazon.nova-lite-v1:0 ")

    settings = RuntimeSettings()

    assert settings.allowed_models == ("local", "bedrock:us.amazon.nova-pro-v1:0", "bedrock:amazon.nova-lite-v1:0")
    assert settings.models == ("bedrock:amazon.nova-lite-v1:0", "local", "bedrock:us.amazon.nova-pro-v1:0")


def test_a_bad_entry_in_allowed_models_names_that_setting(agent_env):
    agent_env.setenv("AGENT_ALLOWED_MODELS", "local,gpt-4o")

    with pytest.raises(ValidationError, match="AGENT_ALLOWED_MODELS: unknown model 'gpt-4o'"):
        RuntimeSettings()


def test_price_table_is_json_of_prices_per_million_tokens(agent_env):
    agent_env.setenv("AGENT_PRICE_TABLE", '{"bedrock:amazon.nova-lite": {"input_per_million": 0.07, "output_per_million": 0.28}}')

    assert RuntimeSettings().price_table == {
        "bedrock:amazon.nova-lite": ModelPrice(input_per_million=0.07, output_per_million=0.28)
    }


def test_a_price_table_with_a_negative_price_is_refused(agent_env):
    agent_env.setenv("AGENT_PRICE_TABLE", '{"local": {"input_per_million": -1, "output_per_million": 0}}')

    with pytest.raises(ValidationError, match="price_table"):
        RuntimeSettings()


def test_health_checks_are_json_of_kind_and_name(agent_env):
    agent_env.setenv(
        "AGENT_HEALTH_CHECKS",
        '[{"kind": "dynamodb", "name": "sessions"}, {"kind": "sqs", "name": "https://sqs.us-east-1.amazonaws.com/123456789012/tasks"}]',
    )

    assert RuntimeSettings().health_checks == (
        DependencyCheck(kind="dynamodb", name="sessions"),
        DependencyCheck(kind="sqs", name="https://sqs.us-east-1.amazonaws.com/123456789012/tasks"),
    )


def test_a_health_check_of_an_unknown_kind_is_refused(agent_env):
    agent_env.setenv("AGENT_HEALTH_CHECKS", '[{"kind": "redis", "name": "cache"}]')

    with pytest.raises(ValidationError, match="health_checks"):
        RuntimeSettings()


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("AGENT_MAX_STEPS", "0", "max_steps"),
        ("AGENT_MAX_STEPS", "many", "max_steps"),
        ("AGENT_TOKEN_BUDGET", "0", "token_budget"),
        ("AGENT_MAX_REQUEST_BYTES", "100", "max_request_bytes"),
        ("AGENT_MODEL_MAX_ATTEMPTS", "11", "model_max_attempts"),
    ],
)
def test_limits_out_of_range_name_the_field(agent_env, variable, value, field):
    agent_env.setenv(variable, value)

    with pytest.raises(ValidationError, match=field):
        RuntimeSettings()
