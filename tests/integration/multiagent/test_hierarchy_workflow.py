"""The HierarchicalAgents state machine as the construct synthesizes it, executed by moto's Step Functions.

Its Lambda tasks run the supervisor handler in this process (``workflow_function``); retry waits are under a second.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.integration.conftest import REPO_ROOT, render_definition

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture(scope="session")
def hierarchy_definition(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The ASL of HierarchicalAgents, every retry wait under a second, every Lambda task the workflow function."""
    import aws_cdk as cdk
    from aws_cdk import Duration

    from agentrail_constructs import AsyncAgent, HierarchicalAgents, HierarchicalOptions, RetryOptions

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("hierarchy")), context={**context, "aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "Hierarchy", env=cdk.Environment(account="123456789012", region="us-east-1"))
    second = Duration.seconds(1)
    retries = RetryOptions(service_interval=second, model_interval=second, max_delay=second)
    agents = HierarchicalAgents(
        stack, "Supervisor", tasks=AsyncAgent(stack, "Tasks"), options=HierarchicalOptions(retries=retries)
    )
    template = app.synth().get_stack_by_name(stack.stack_name).template
    machine = template["Resources"][stack.get_logical_id(agents.state_machine.node.default_child)]
    return render_definition(template, machine["Properties"]["DefinitionString"])


def finished(sfn: Any, execution_arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (execution := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution is still running"
        time.sleep(0.02)
    return execution


def test_a_task_cancelled_before_its_workflow_planned_it_ends_the_execution_cleanly_without_any_work(
    aws, hierarchy_definition, supervisor, stored_task, owner, workflow_function, lambda_context
):
    # given: a hierarchical task cancelled while its execution waited to start (or an execution redriven after it finished)
    module = supervisor()
    function = workflow_function(lambda event: module.handler(event, lambda_context))
    task_id = stored_task("Research Lambda", task_id="c" * 32, task_type="research")
    aws.store.cancel(task_id, owner=owner)
    sfn = aws.sfn
    machine = sfn.create_state_machine(
        name="agentrail-hierarchy", definition=hierarchy_definition, roleArn="arn:aws:iam::123456789012:role/agentrail"
    )["stateMachineArn"]
    # when: its execution runs
    execution_arn = sfn.start_execution(
        stateMachineArn=machine, input=json.dumps({"task_id": task_id, "correlation_id": "corr-cancelled"})
    )["executionArn"]
    execution = finished(sfn, execution_arn)
    # then: it succeeds having only planned and re-announced the finished task: no subtask, no spend, still cancelled
    assert execution["status"] == "SUCCEEDED", execution
    assert [i.event["action"] for i in function.invocations] == ["plan", "synthesize"]
    record = aws.task(task_id)
    assert (record.status.value, record.usage.total_tokens) == ("cancelled", 0)
    assert aws.store.subtasks(task_id) == []
