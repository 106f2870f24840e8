"""ErasureOptions: who may erase a principal's data through ``POST /erase`` (data-subject requests).

The route is on every pattern API that keeps data (StatefulAgent, AsyncAgent and the multi-agent patterns on it);
each store grants the deletes it needs (``grant_erasure`` of SessionTable, TaskTable and ApprovalWorkflow;
DailyBudgets grants DeleteItem of the counters to the function :func:`serve_erasure` marked).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_lambda as lambda_

from agentrail_constructs.api import AgentApi
from agentrail_constructs.contract import contract
from agentrail_constructs.function import AgentFunction
from agentrail_constructs.request_models import request_model


@dataclass(frozen=True, kw_only=True)
class ErasureOptions:
    """Who may erase another principal's data; anyone may erase their own."""

    operators: Sequence[str] = ()
    """Principal patterns (fnmatch) that may erase anyone's data, e.g.
    ``["iam:arn:aws:iam::111122223333:role/PrivacyOperator"]`` (a role pattern admits the role's sessions).
    Default: none."""
    operator_group: str = "operators"
    """Callers in this Cognito group may erase anyone's data. Default: ``operators``."""


def serve_erasure(api: AgentApi, agent_function: AgentFunction, target: lambda_.IFunction, options: ErasureOptions) -> None:
    """Route ``POST /erase`` on ``api`` to ``target`` (the ``live`` alias of ``agent_function``), tell the function who
    the operators are, and mark it (:meth:`AgentFunction.serve_erasure`: the stores' erasure grants, before or after)."""
    agent_function.serve_erasure()
    agent_function.add_environment(contract.ERASE_OPERATORS_ENV, json.dumps(list(options.operators)))
    agent_function.add_environment(contract.ERASE_OPERATOR_GROUP_ENV, options.operator_group)
    api.add_function_route(
        "/erase", "POST", target, request_schema=request_model("ErasureRequest"), operation_name="ErasePrincipal"
    )


__all__ = ["ErasureOptions", "serve_erasure"]
