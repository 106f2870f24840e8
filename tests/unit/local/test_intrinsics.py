"""Intrinsic functions as the template reader resolves them."""

from __future__ import annotations

from typing import Any

import pytest

from agentrail_local.cloudformation.intrinsics import Resolver, Scope
from agentrail_local.cloudformation.resources.base import DeployedResource, TemplateError


def _resolver(
    *,
    resources: dict[str, DeployedResource] | None = None,
    parameters: dict[str, Any] | None = None,
    conditions: dict[str, Any] | None = None,
    mappings: dict[str, Any] | None = None,
    exports: dict[str, Any] | None = None,
    stack_outputs: dict[str, dict[str, Any]] | None = None,
    skipped: frozenset[str] = frozenset(),
) -> Resolver:
    return Resolver(
        Scope(
            stack_name="Demo-Stack",
            parameters=parameters or {},
            conditions=conditions or {},
            mappings=mappings or {},
            resources=resources or {},
            exports=exports or {},
            stack_outputs=stack_outputs or {},
            skipped=skipped,
        )
    )


QUEUE = DeployedResource(
    logical_id="Queue",
    type="AWS::SQS::Queue",
    physical_id="http://moto/123456789012/demo-queue",
    ref="http://moto/123456789012/demo-queue",
    attributes={"Arn": "arn:aws:sqs:us-east-1:123456789012:demo-queue", "QueueName": "demo-queue"},
)


def test_pseudo_parameters_resolve_to_the_local_account_and_region() -> None:
    resolver = _resolver()

    resolved = resolver.resolve(
        [
            {"Ref": "AWS::AccountId"},
            {"Ref": "AWS::Region"},
            {"Ref": "AWS::Partition"},
            {"Ref": "AWS::StackName"},
            {"Ref": "AWS::URLSuffix"},
        ]
    )

    assert resolved == ["123456789012", "us-east-1", "aws", "Demo-Stack", "amazonaws.com"]


def test_ref_and_getatt_return_the_deployed_values_in_both_getatt_forms() -> None:
    resolver = _resolver(resources={"Queue": QUEUE})

    assert resolver.resolve({"Ref": "Queue"}) == QUEUE.ref
    assert resolver.resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == QUEUE.attributes["Arn"]
    assert resolver.resolve({"Fn::GetAtt": "Queue.QueueName"}) == "demo-queue"


def test_getatt_of_an_attribute_the_handler_does_not_know_names_resource_and_attribute() -> None:
    resolver = _resolver(resources={"Queue": QUEUE})

    with pytest.raises(TemplateError, match=r"Queue\.Colour.*AWS::SQS::Queue"):
        resolver.resolve({"Fn::GetAtt": ["Queue", "Colour"]})


def test_getatt_of_a_placeholder_makes_up_an_arn_or_id() -> None:
    stream = DeployedResource(
        "Stream",
        "AWS::Kinesis::Stream",
        "Demo-Stream-X",
        "Demo-Stream-X",
        {"Arn": "arn:aws:kinesis:us-east-1:123456789012:stream/Demo-Stream-X"},
        placeholder=True,
    )
    resolver = _resolver(resources={"Stream": stream})

    assert resolver.resolve({"Fn::GetAtt": ["Stream", "StreamArn"]}).startswith("arn:aws:kinesis:")
    assert resolver.resolve({"Fn::GetAtt": ["Stream", "ShardCount"]}) == "Demo-Stream-X"


def test_join_turns_numbers_and_booleans_into_cloudformation_text() -> None:
    resolver = _resolver(resources={"Queue": QUEUE})

    joined = resolver.resolve(
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":", 3, ":", True, ":", {"Fn::GetAtt": ["Queue", "QueueName"]}]]}
    )

    assert joined == "arn:aws:3:true:demo-queue"


def test_sub_string_form_substitutes_refs_attributes_and_keeps_escaped_literals() -> None:
    resolver = _resolver(resources={"Queue": QUEUE}, parameters={"Env": "dev"})

    text = resolver.resolve({"Fn::Sub": "${AWS::Region}/${Env}/${Queue.QueueName}/${!Literal}"})

    assert text == "us-east-1/dev/demo-queue/${Literal}"


def test_sub_list_form_prefers_its_own_variables_which_may_be_intrinsics() -> None:
    resolver = _resolver(resources={"Queue": QUEUE})

    text = resolver.resolve({"Fn::Sub": ["${Name}-${AWS::AccountId}", {"Name": {"Fn::GetAtt": ["Queue", "QueueName"]}}]})

    assert text == "demo-queue-123456789012"


def test_select_and_split_and_getazs_compose() -> None:
    resolver = _resolver()

    assert resolver.resolve({"Fn::Select": ["1", {"Fn::Split": [",", "a,b,c"]}]}) == "b"
    assert resolver.resolve({"Fn::Select": [0, {"Fn::GetAZs": ""}]}) == "us-east-1a"


def test_select_out_of_range_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match="out of range"):
        _resolver().resolve({"Fn::Select": [5, ["a"]]})


def test_conditions_combine_equals_not_and_or_and_nested_conditions() -> None:
    conditions = {
        "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
        "IsNotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
        "InUsEast": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]},
        "DevInUsEast": {"Fn::And": [{"Condition": "IsNotProd"}, {"Condition": "InUsEast"}]},
        "ProdOrUsEast": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "InUsEast"}]},
    }
    resolver = _resolver(parameters={"Env": "dev"}, conditions=conditions)

    assert [resolver.condition(name) for name in conditions] == [False, True, True, True, True]
    assert resolver.resolve({"Fn::If": ["IsProd", "big", "small"]}) == "small"


def test_novalue_removes_the_key_or_list_item_it_lands_in() -> None:
    resolver = _resolver(parameters={"Env": "dev"}, conditions={"IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]}})

    resolved = resolver.resolve(
        {
            "Name": "kept",
            "Size": {"Fn::If": ["IsProd", 10, {"Ref": "AWS::NoValue"}]},
            "Items": ["a", {"Fn::If": ["IsProd", "b", {"Ref": "AWS::NoValue"}]}],
        }
    )

    assert resolved == {"Name": "kept", "Items": ["a"]}


def test_findinmap_base64_and_tojsonstring() -> None:
    resolver = _resolver(mappings={"Sizes": {"dev": {"Memory": 512}}})

    assert resolver.resolve({"Fn::FindInMap": ["Sizes", "dev", "Memory"]}) == 512
    assert resolver.resolve({"Fn::Base64": "hi"}) == "aGk="
    assert resolver.resolve({"Fn::ToJsonString": {"a": [1, 2]}}) == '{"a":[1,2]}'


def test_cross_stack_values_come_from_exports_and_stack_outputs() -> None:
    resolver = _resolver(exports={"Shared-QueueUrl": "http://q"}, stack_outputs={"Data": {"PoolArn": "arn:pool"}})

    assert resolver.resolve({"Fn::ImportValue": "Shared-QueueUrl"}) == "http://q"
    assert (
        resolver.resolve({"Fn::GetStackOutput": {"StackName": "Data", "Region": {"Ref": "AWS::Region"}, "OutputName": "PoolArn"}})
        == "arn:pool"
    )


def test_import_of_a_value_no_stack_exports_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match="no stack of this assembly exports it"):
        _resolver().resolve({"Fn::ImportValue": "Missing"})


def test_unknown_function_and_unknown_ref_are_refused_by_name() -> None:
    resolver = _resolver()

    with pytest.raises(TemplateError, match="Fn::Cidr is not supported"):
        resolver.resolve({"Fn::Cidr": ["10.0.0.0/16", 2, 8]})
    with pytest.raises(TemplateError, match="'Nowhere'"):
        resolver.resolve({"Ref": "Nowhere"})


def test_ref_to_a_resource_left_out_by_its_condition_says_so() -> None:
    with pytest.raises(TemplateError, match="Condition left out"):
        _resolver(skipped=frozenset({"ProdOnly"})).resolve({"Ref": "ProdOnly"})
