"""Resources are created after everything they reference or depend on."""

from __future__ import annotations

import pytest

from agentrail_local.cloudformation.deployer import creation_order, dependencies
from agentrail_local.cloudformation.intrinsics import references
from agentrail_local.cloudformation.resources.base import TemplateError


def test_references_finds_ref_getatt_and_sub_variables_but_not_pseudo_or_local_names() -> None:
    value = {
        "A": {"Ref": "Table"},
        "B": {"Fn::GetAtt": ["Role", "Arn"]},
        "C": {"Fn::GetAtt": "Queue.Arn"},
        "D": {"Fn::Sub": "${Bucket}/${Topic.TopicName}/${!NotARef}"},
        "E": {"Fn::Sub": ["${Local}-${Key}", {"Local": {"Ref": "Alias"}}]},
    }

    found = set(references(value))

    assert found == {"Table", "Role", "Queue", "Bucket", "Topic", "Key", "Alias"}


def test_dependencies_include_depends_on_and_ignore_parameters_and_self() -> None:
    resources = {"Function": {}, "Role": {}, "Policy": {}}
    definition = {
        "Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Name": {"Ref": "EnvParameter"}, "Me": {"Ref": "Function"}},
        "DependsOn": "Policy",
    }

    assert dependencies("Function", definition, resources) == {"Role", "Policy"}


def test_depends_on_an_undefined_resource_is_refused() -> None:
    with pytest.raises(TemplateError, match="Ghost"):
        dependencies("Function", {"DependsOn": ["Ghost"]}, {"Function": {}})


def test_creation_order_puts_dependencies_first_and_keeps_template_order_otherwise() -> None:
    resources = {
        "Alias": {"Properties": {"FunctionName": {"Ref": "Function"}, "FunctionVersion": {"Fn::GetAtt": ["Version", "Version"]}}},
        "LogGroup": {"Properties": {}},
        "Function": {"Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}}, "DependsOn": ["Policy"]},
        "Version": {"Properties": {"FunctionName": {"Ref": "Function"}}},
        "Policy": {"Properties": {"Roles": [{"Ref": "Role"}]}},
        "Role": {"Properties": {}},
    }

    order = creation_order(resources)

    assert order.index("Role") < order.index("Policy") < order.index("Function") < order.index("Version") < order.index("Alias")
    assert order[:2] == ["LogGroup", "Role"]


def test_a_dependency_cycle_names_the_resources_in_it() -> None:
    resources = {"A": {"Properties": {"X": {"Ref": "B"}}}, "B": {"Properties": {"Y": {"Ref": "A"}}}, "C": {}}

    with pytest.raises(TemplateError, match="circular dependency between A, B"):
        creation_order(resources)
