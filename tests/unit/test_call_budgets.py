"""The benchmarks' exact call budgets and their before-and-after report."""

from benchmarks.base_revision import before_and_after
from benchmarks.call_budgets import IDEMPOTENCY, SIDE_EFFECT_CHECKPOINT, TASK_EVENT, TASK_WRITES, budget_results, total


def test_a_path_costs_the_sum_of_its_parts_by_operation():
    assert total(IDEMPOTENCY, TASK_WRITES, TASK_EVENT) == {
        "DynamoDB.PutItem": 1,
        "DynamoDB.UpdateItem": 3,
        "EventBridge.PutEvents": 1,
    }
    assert total(TASK_WRITES, SIDE_EFFECT_CHECKPOINT, times={SIDE_EFFECT_CHECKPOINT.part: 3}) == {"DynamoDB.UpdateItem": 8}


def test_a_budget_is_exact_one_call_more_or_one_fewer_fails_it():
    budget = total(IDEMPOTENCY, TASK_WRITES, TASK_EVENT)

    met = budget_results("worker", dict(budget), budget, baseline="bare")
    one_more = budget_results("worker", {**budget, "DynamoDB.UpdateItem": 4}, budget, baseline="bare")
    one_fewer = budget_results("worker", {**budget, "EventBridge.PutEvents": 0}, budget, baseline="bare")
    unbudgeted = budget_results("worker", {**budget, "SQS.SendMessage": 1}, budget, baseline="bare")

    assert all(result.passed for result in met)
    assert [r.name for r in one_more if not r.passed] == ["worker: DynamoDB.UpdateItem", "worker: all AWS calls"]
    assert [r.name for r in one_fewer if not r.passed] == ["worker: EventBridge.PutEvents", "worker: all AWS calls"]
    assert [r.name for r in unbudgeted if not r.passed] == ["worker: SQS.SendMessage", "worker: all AWS calls"]


def test_before_and_after_pairs_rows_by_name_and_names_the_rows_only_one_revision_has():
    before = {
        "task_throughput": [
            {"name": "AWS calls per task", "value": 9.0, "unit": "calls"},
            {"name": "gone", "value": 1.0, "unit": "ms"},
        ]
    }
    after = {
        "task_throughput": [
            {"name": "AWS calls per task", "value": 5.0, "unit": "calls"},
            {"name": "new", "value": 2.0, "unit": "ms"},
        ]
    }

    lines = before_and_after(before, after)

    assert "| AWS calls per task | 9 calls | 5 calls | 0.56 |" in lines
    assert "\nOnly after: new." in lines
    assert "\nOnly before: gone." in lines
