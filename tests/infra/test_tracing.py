"""One trace end to end, in every pattern: traced stages, functions and state machines; the optional OTel export."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest

from agentrail_constructs import PATTERN_STACKS, AgentApiOptions, AgentFunction, AgentFunctionOptions, OtelExportOptions

from .conftest import TEST_ENV, SynthesizedStack

COLLECTOR_CONFIG = "/var/task/collector.yaml"


@pytest.fixture(scope="module")
def http_pattern_stacks(app_factory: Callable[..., cdk.App]) -> dict[str, SynthesizedStack]:
    """Every pattern behind an HTTP API (``-c api=http``) instead of a REST API."""
    app = app_factory()
    stacks = {
        name: stack(app, f"Http-{name}", env=TEST_ENV, api_options=AgentApiOptions(kind="http"))
        for name, stack in PATTERN_STACKS.items()
    }
    return {name: SynthesizedStack(stack) for name, stack in stacks.items()}


@pytest.fixture(scope="module")
def otel_pattern_stacks(app_factory: Callable[..., cdk.App]) -> dict[str, SynthesizedStack]:
    """Every pattern with ``AgentFunctionOptions(otel_export=...)``."""
    app = app_factory()
    options = AgentFunctionOptions(otel_export=OtelExportOptions(collector_config_uri=COLLECTOR_CONFIG))
    stacks = {name: stack(app, f"Otel-{name}", env=TEST_ENV, function_options=options) for name, stack in PATTERN_STACKS.items()}
    return {name: SynthesizedStack(stack) for name, stack in stacks.items()}


def functions(synth: SynthesizedStack) -> dict[str, dict[str, Any]]:
    return synth.of_type("AWS::Lambda::Function")


def test_every_function_of_every_pattern_has_active_tracing(pattern_stacks, http_pattern_stacks) -> None:
    untraced = {
        f"{name}/{lid}"
        for name, synth in {**pattern_stacks, **{f"http-{k}": v for k, v in http_pattern_stacks.items()}}.items()
        for lid, props in functions(synth).items()
        if props.get("TracingConfig") != {"Mode": "Active"}
    }

    assert untraced == set()
    assert all(functions(synth) for synth in pattern_stacks.values())


def test_every_rest_stage_of_every_pattern_traces_with_x_ray(pattern_stacks) -> None:
    stages = {
        f"{name}/{lid}": props
        for name, synth in pattern_stacks.items()
        for lid, props in synth.of_type("AWS::ApiGateway::Stage").items()
    }

    assert {name for name, props in stages.items() if props.get("TracingEnabled") is not True} == set()
    assert {name.split("/")[0] for name in stages} >= set(PATTERN_STACKS)


def test_every_state_machine_of_every_pattern_traces_with_x_ray(pattern_stacks, http_pattern_stacks) -> None:
    machines = {
        f"{name}/{lid}": props
        for name, synth in {**pattern_stacks, **{f"http-{k}": v for k, v in http_pattern_stacks.items()}}.items()
        for lid, props in synth.of_type("AWS::StepFunctions::StateMachine").items()
    }

    assert {name for name, props in machines.items() if props.get("TracingConfiguration") != {"Enabled": True}} == set()
    assert {name.split("/")[0] for name in machines} >= {"async", "hierarchical"}


def test_an_http_api_has_no_x_ray_so_its_trace_starts_at_the_traced_function_behind_each_route(http_pattern_stacks) -> None:
    for name, synth in http_pattern_stacks.items():
        stages = synth.of_type("AWS::ApiGatewayV2::Stage")
        integrations = synth.of_type("AWS::ApiGatewayV2::Integration")

        assert stages, name
        assert not [props for props in stages.values() if "TracingEnabled" in props or "TracingConfig" in props], name
        assert integrations, name
        assert {props["IntegrationType"] for props in integrations.values()} == {"AWS_PROXY"}, name


# -- the optional OpenTelemetry export --------------------------------------------------------------------


def test_otel_export_is_off_by_default(pattern_stacks) -> None:
    for name, synth in pattern_stacks.items():
        for lid, props in functions(synth).items():
            variables = props.get("Environment", {}).get("Variables", {})
            assert "AWS_LAMBDA_EXEC_WRAPPER" not in variables, f"{name}/{lid}"
            assert "aws-otel-python" not in str(props.get("Layers")), f"{name}/{lid}"


def test_otel_export_gives_every_agent_function_of_every_pattern_the_adot_layer_wrapper_and_collector_config(
    otel_pattern_stacks,
) -> None:
    for name, synth in otel_pattern_stacks.items():
        agent_functions = [c for c in synth.stack.node.find_all() if isinstance(c, AgentFunction)]
        assert agent_functions, name
        for agent_function in agent_functions:
            props = synth.properties(agent_function.function)
            variables = props["Environment"]["Variables"]
            assert variables.get("AWS_LAMBDA_EXEC_WRAPPER") == "/opt/otel-instrument", agent_function.node.path
            assert variables["OPENTELEMETRY_COLLECTOR_CONFIG_URI"] == COLLECTOR_CONFIG, agent_function.node.path
            layers = cdk.Stack.of(agent_function).to_json_string(props["Layers"])
            assert "aws-otel-python-arm64-ver-" in str(synth.stack.resolve(layers)), agent_function.node.path
            assert props["TracingConfig"] == {"Mode": "Active"}


def test_otel_export_names_the_layer_of_the_function_architecture_without_a_lookup(stack: cdk.Stack) -> None:
    options = AgentFunctionOptions(
        architecture=cdk.aws_lambda.Architecture.X86_64,
        otel_export=OtelExportOptions(environment={"OTEL_SERVICE_NAME": "billing"}),
    )
    agent = AgentFunction(stack, "Agent", options=options)

    synth = SynthesizedStack(stack)
    props = synth.properties(agent.function)
    assert "arn:aws:lambda:us-east-1:901920570463:layer:aws-otel-python-amd64-ver-" in str(props["Layers"])
    assert props["Environment"]["Variables"]["OTEL_SERVICE_NAME"] == "billing"
    assert "OPENTELEMETRY_COLLECTOR_CONFIG_URI" not in props["Environment"]["Variables"]


@pytest.mark.parametrize("variable", ["AWS_LAMBDA_EXEC_WRAPPER", "OPENTELEMETRY_COLLECTOR_CONFIG_URI"])
def test_otel_export_refuses_to_set_what_it_owns_through_its_environment(stack: cdk.Stack, variable: str) -> None:
    options = AgentFunctionOptions(otel_export=OtelExportOptions(environment={variable: "/opt/other"}))

    with pytest.raises(ValueError, match=f"may not set {variable}"):
        AgentFunction(stack, "Agent", options=options)


def test_otel_export_refuses_an_empty_collector_config_uri(stack: cdk.Stack) -> None:
    options = AgentFunctionOptions(otel_export=OtelExportOptions(collector_config_uri=" "))

    with pytest.raises(ValueError, match="collector_config_uri is empty"):
        AgentFunction(stack, "Agent", options=options)
