"""The agent pool's knobs on AgentFunction: reserved and provisioned concurrency, and autoscaling of the latter."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest

from agentrail_constructs import AgentFunction, AgentFunctionOptions, ProvisionedConcurrencyScaling


@pytest.fixture(scope="module")
def scaled(synthesize: Any) -> tuple[AgentFunction, Any]:
    """An AgentFunction whose provisioned concurrency scales between 2 and 8 at 60% utilization, under 20 reserved."""
    options = AgentFunctionOptions(
        reserved_concurrent_executions=20,
        provisioned_scaling=ProvisionedConcurrencyScaling(min_capacity=2, max_capacity=8, utilization_target=0.6),
    )
    return synthesize(lambda stack: AgentFunction(stack, "Agent", options=options))


def test_default_function_has_no_provisioned_concurrency_and_no_scaling(stateless_template: Any) -> None:
    props = next(iter(stateless_template.find_resources("AWS::Lambda::Alias").values()))["Properties"]

    assert "ProvisionedConcurrencyConfig" not in props
    stateless_template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)


def test_provisioned_concurrency_is_set_on_the_live_alias(synthesize: Any) -> None:
    function, synth = synthesize(
        lambda stack: AgentFunction(stack, "Agent", options=AgentFunctionOptions(provisioned_concurrency=3))
    )

    alias = synth.properties(function.alias)

    assert alias["Name"] == "live"
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 3}
    synth.template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)


def test_reserved_concurrency_caps_the_function(scaled: tuple[AgentFunction, Any]) -> None:
    function, synth = scaled

    assert synth.properties(function.function)["ReservedConcurrentExecutions"] == 20


def test_scaling_starts_the_alias_at_its_minimum_capacity(scaled: tuple[AgentFunction, Any]) -> None:
    function, synth = scaled

    assert synth.properties(function.alias)["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}


def only(synth: Any, resource_type: str) -> tuple[str, dict[str, Any]]:
    found = synth.of_type(resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def test_scaling_targets_the_live_alias_provisioned_concurrency(scaled: tuple[AgentFunction, Any]) -> None:
    function, synth = scaled
    alias = synth.logical_id(function.alias)

    _, target = only(synth, "AWS::ApplicationAutoScaling::ScalableTarget")

    assert target["ServiceNamespace"] == "lambda"
    assert target["ScalableDimension"] == "lambda:function:ProvisionedConcurrency"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 8)
    assert f'"Ref": "{alias}"' in json.dumps(target["ResourceId"])
    assert synth.render(target["ResourceId"]) == f"function:{alias}:live"


def test_scaling_tracks_provisioned_concurrency_utilization_at_the_target(scaled: tuple[AgentFunction, Any]) -> None:
    _, synth = scaled
    target, _ = only(synth, "AWS::ApplicationAutoScaling::ScalableTarget")

    synth.template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "ScalingTargetId": {"Ref": target},
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {"PredefinedMetricType": "LambdaProvisionedConcurrencyUtilization"},
                "TargetValue": 0.6,
            },
        },
    )


# -- validation ------------------------------------------------------------------------


def test_scaling_minimum_above_maximum_is_refused() -> None:
    scaling = ProvisionedConcurrencyScaling(min_capacity=5, max_capacity=4)

    with pytest.raises(ValueError, match="min_capacity <= max_capacity"):
        AgentFunctionOptions(provisioned_scaling=scaling).validate()


def test_scaling_minimum_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="1 <= min_capacity"):
        AgentFunctionOptions(provisioned_scaling=ProvisionedConcurrencyScaling(min_capacity=0)).validate()


@pytest.mark.parametrize("target", [0.05, 0.95])
def test_utilization_target_outside_10_to_90_percent_is_refused(target: float) -> None:
    scaling = ProvisionedConcurrencyScaling(utilization_target=target)

    with pytest.raises(ValueError, match=r"utilization_target must be between 0\.1 and 0\.9"):
        AgentFunctionOptions(provisioned_scaling=scaling).validate()


def test_provisioned_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="provisioned_concurrency must be at least 1"):
        AgentFunctionOptions(provisioned_concurrency=0).validate()


def test_reserved_concurrency_below_the_provisioned_concurrency_is_refused() -> None:
    with pytest.raises(ValueError, match=r"reserved_concurrent_executions must be at least the provisioned concurrency \(5\)"):
        AgentFunctionOptions(reserved_concurrent_executions=4, provisioned_concurrency=5).validate()


def test_reserved_concurrency_below_the_scaling_maximum_is_refused() -> None:
    options = AgentFunctionOptions(
        reserved_concurrent_executions=5, provisioned_scaling=ProvisionedConcurrencyScaling(max_capacity=10)
    )

    with pytest.raises(ValueError, match=r"at least the provisioned concurrency \(10\)"):
        options.validate()


def test_agent_function_validates_its_pool_options(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="reserved_concurrent_executions"):
        AgentFunction(stack, "Agent", options=AgentFunctionOptions(reserved_concurrent_executions=1, provisioned_concurrency=2))
