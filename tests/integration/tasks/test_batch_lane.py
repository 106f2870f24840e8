"""The batch lane through its handlers, on moto: tasks submitted with ``"lane": "batch"`` wait in the task table, a tick
flushes them into one job (the local model's, emulated over the same S3 files, or Bedrock's through a Stubber), and
a later tick finishes each task once, with its event, whatever crashes, failed jobs or broken output come between."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from agentrail_runtime import contract
from agentrail_runtime.batch.files import BatchFiles
from agentrail_runtime.batch.jobs import BatchJobs
from agentrail_runtime.batch.records import to_converse_response
from agentrail_runtime.clock import now as runtime_now
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.demo import batch_definition
from agentrail_runtime.models.base import Message, ModelResponse, Usage
from agentrail_runtime.service import AgentService
from agentrail_runtime.tasks import TaskService, TaskSubmission
from agentrail_runtime.tasks.batch_lane import BatchLane, BatchLaneError, job_name
from agentrail_runtime.tasks.events import TaskEvents
from agentrail_runtime.tasks.models import TaskStatus
from agentrail_runtime.tasks.settings import BatchLaneSettings
from agentrail_runtime.tasks.store import TaskStore

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

TABLE = "agentrail-tasks"
RESULTS = "agentrail-task-results"
BUS = "agentrail-task-events"
LANE_BUCKET = "agentrail-batch-lane"
ROLE = "arn:aws:iam::123456789012:role/agentrail-batch"
NOVA = "bedrock:amazon.nova-lite-v1:0"
MAX_AGE = 600


@pytest.fixture
def lane_aws(aws) -> Any:
    """The task account plus what BatchLane adds: the ``by_batch`` index and the lane's bucket."""
    aws.dynamodb.update_table(
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": contract.TASK_BATCH_ATTRIBUTE, "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": contract.TASK_BATCH_INDEX,
                    "KeySchema": [
                        {"AttributeName": contract.TASK_BATCH_ATTRIBUTE, "KeyType": "HASH"},
                        {"AttributeName": "created_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            }
        ],
    )
    aws.s3.create_bucket(Bucket=LANE_BUCKET)
    return aws


def lane_environment(aws: Any, **batch: str) -> dict[str, str]:
    settings = {"ENABLED": "true", "BUCKET": LANE_BUCKET, "ROLE_ARN": ROLE, "FLUSH_SIZE": "3", "MAX_AGE_SECONDS": str(MAX_AGE)}
    return {
        "AGENT_DEFINITION": "agentrail_runtime.demo:batch_definition",
        "AGENT_TASK_TABLE": TABLE,
        "AGENT_TASK_BUCKET": RESULTS,
        "AGENT_TASK_QUEUE_URL": aws.queue_url,
        "AGENT_TASK_EVENT_BUS": BUS,
        "AGENT_TASK_ROUTES": json.dumps({"default": "queue", "long": aws.state_machine_arn}),
        **{f"AGENT_BATCH_{key}": value for key, value in (settings | batch).items()},
    }


@pytest.fixture
def handlers(lane_aws, handler_module, clock) -> Callable[..., tuple[Any, Any]]:
    """The tasks API and the lane's function, initialized as the constructs configure them."""

    def load(**batch: str) -> tuple[Any, Any]:
        environment = lane_environment(lane_aws, **batch)
        return handler_module("tasks", environment).handler, handler_module("batch_lane", environment).handler

    return load


@pytest.fixture
def submit(call, api_event) -> Callable[..., Any]:
    def post(api: Any, message: str, **fields: Any) -> Any:
        return call(api, api_event("submit", body={"message": message, **fields}))

    return post


def read(call, api_event, api: Any, task_id: str) -> dict[str, Any]:
    reply = call(api, api_event("get-task", task_id=task_id))
    assert reply.status == 200, reply.body
    return reply.body


def lane_files(s3: Any) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=LANE_BUCKET).get("Contents", []))


def test_three_batch_tasks_are_flushed_as_one_job_and_each_finishes_once_with_its_event(
    lane_aws, handlers, submit, call, api_event, lambda_context, clock
):
    api, tick = handlers()
    messages = ["My invoice is wrong", "The app crashes on start", "Where is my parcel?"]
    ids = []
    for message in messages:
        reply = submit(api, message, lane="batch")
        assert reply.status == 202, reply.body
        ids.append(reply.body["task_id"])
    assert lane_aws.queued() == []  # nothing goes to the on-demand queue
    waiting = read(call, api_event, api, ids[0])
    assert (waiting["status"], waiting["lane"], waiting["batch_job"]) == ("queued", "batch", None)

    flushed = tick({}, lambda_context)

    assert (flushed["jobs_submitted"], flushed["batched"], flushed["answered"]) == (1, 3, 0)
    name = job_name(ids, min(read(call, api_event, api, i)["created_at"] for i in ids))
    assert lane_files(lane_aws.s3) == [
        f"batch/{name}/input/records.jsonl",
        f"batch/{name}/output/{name}/records.jsonl.out",
    ]
    body = lane_aws.s3.get_object(Bucket=LANE_BUCKET, Key=f"batch/{name}/input/records.jsonl")["Body"].read()
    records = [json.loads(line) for line in body.splitlines()]
    assert sorted(r["recordId"] for r in records) == sorted(ids)  # submitted in the same second: in any order
    by_task = {r["recordId"]: r["modelInput"] for r in records}
    assert by_task[ids[0]]["system"] == [{"text": batch_definition.system_prompt}]
    assert by_task[ids[1]]["messages"] == [{"role": "user", "content": [{"text": messages[1]}]}]
    batched = read(call, api_event, api, ids[0])
    assert batched["status"] == "batched"
    job = batched["batch_job"]
    assert job["job_arn"].endswith(f"model-invocation-job/{name}")
    assert job["answer_by"] - job["submitted_at"] == 24 * 3600 == contract.BATCH_WINDOW_HOURS * 3600

    collected = tick({}, lambda_context)

    assert collected["answered"] == 3
    assert lane_files(lane_aws.s3) == []  # the job's files went once its tasks kept their answers
    for task_id in ids:
        task = read(call, api_event, api, task_id)
        assert task["status"] == "succeeded"
        assert task["result"]["answer"]
        assert task["steps"] == 1 and task["usage"]["output_tokens"] > 0
        assert list(task["spend_by_model"]) == ["local"]
        assert task["spend"]["demo-summarizer"]["calls"] == 1
    finished = lane_aws.task_events()
    assert sorted(e["detail"]["task_id"] for e in finished) == sorted(ids)
    assert {e["detail"]["status"] for e in finished} == {"succeeded"}

    again = tick({}, lambda_context)  # the job is closed: nothing more happens
    assert (again["answered"], again["jobs_submitted"], again["failed"]) == (0, 0, 0)
    assert lane_aws.task_events() == []


def test_fewer_tasks_than_the_flush_size_wait_until_the_oldest_reaches_max_age(
    lane_aws, handlers, submit, call, api_event, lambda_context, clock, stdout_records
):
    api, tick = handlers()
    first = submit(api, "Summarize: the printer jams", lane="batch").body["task_id"]
    clock.advance(MAX_AGE - 10)
    second = submit(api, "Summarize: refund twice", lane="batch").body["task_id"]
    stdout_records()

    waited = tick({}, lambda_context)

    assert waited["jobs_submitted"] == 0
    assert (waited["waiting"], waited["oldest_age_seconds"], waited["jobs_open"]) == (2, MAX_AGE - 10, 0)
    [record] = [r for r in stdout_records() if "BatchTasksWaiting" in r]
    assert (record["BatchTasksWaiting"], record["OldestBatchTaskAgeSeconds"], record["BatchJobsOpen"]) == (
        [2.0],
        [float(MAX_AGE - 10)],
        [0.0],
    )
    assert read(call, api_event, api, first)["status"] == "queued"

    clock.advance(10)  # the first task is max_age old: its job goes now, with the second
    flushed = tick({}, lambda_context)
    assert (flushed["batched"], flushed["waiting"], flushed["oldest_age_seconds"], flushed["jobs_open"]) == (2, 0, 0, 1)
    assert {read(call, api_event, api, t)["status"] for t in (first, second)} == {"batched"}


def test_the_default_lane_batches_a_task_that_names_none_and_on_demand_still_runs_now(
    lane_aws, handlers, submit, call, api_event
):
    api, _ = handlers(DEFAULT_LANE="batch")
    batched = submit(api, "Summarize: late delivery").body["task_id"]
    now = submit(api, "Summarize: wrong size", lane="on_demand").body["task_id"]
    workflow = submit(api, "Summarize: a long report", task_type="long").body["task_id"]

    assert read(call, api_event, api, batched)["lane"] == "batch"
    assert [json.loads(m["Body"])["task_id"] for m in lane_aws.queued()] == [now]
    assert read(call, api_event, api, workflow)["lane"] == "on_demand"  # a workflow's task type is never batched


@pytest.mark.parametrize(
    ("batch", "fields", "sentence"),
    [
        ({"ENABLED": "false"}, {"lane": "batch"}, "This deployment has no batch lane"),
        ({}, {"lane": "batch", "task_type": "long"}, "Task type long runs as a workflow"),
        ({}, {"lane": "batch", "model": "bedrock:cohere.command-r-v1:0"}, "does not take Bedrock batch inference jobs"),
    ],
)
def test_a_task_the_batch_lane_cannot_take_is_refused_with_one_sentence_and_nothing_is_stored(
    lane_aws, handler_module, submit, batch, fields, sentence
):
    environment = lane_environment(lane_aws, **batch) | {"AGENT_ALLOWED_MODELS": "bedrock:cohere.command-r-v1:0"}
    api = handler_module("tasks", environment).handler

    reply = submit(api, "Summarize: the parcel is late", **fields)

    assert (reply.status, reply.body["error"]) == (400, "batch_lane_refused")
    assert sentence in reply.body["message"] and reply.body["message"].count(". ") == 0
    assert "parcel" not in reply.raw
    assert lane_aws.task_items() == [] and lane_aws.queued() == []


def test_an_agent_with_tools_is_refused_the_batch_lane_at_submit(lane_aws, handler_module, submit):
    environment = lane_environment(lane_aws) | {"AGENT_DEFINITION": "agentrail_runtime.demo:definition"}
    api = handler_module("tasks", environment).handler

    reply = submit(api, "Calculate 2 + 2", lane="batch")

    assert (reply.status, reply.body["error"]) == (400, "batch_lane_refused")
    assert reply.body["message"].startswith("The agent demo has tools (calculator, convert_units")
    assert 'submit with "lane": "on_demand"' in reply.body["message"]


def test_an_unknown_lane_is_a_clear_400(lane_aws, handlers, submit):
    api, _ = handlers()

    reply = submit(api, "Summarize: hello", lane="overnight")

    assert (reply.status, reply.body["error"]) == (400, "invalid_request")
    assert [d["field"] for d in reply.body["details"]] == ["lane"]
    assert "overnight" not in reply.raw


def test_a_cancelled_task_leaves_the_lane_and_a_batched_one_stays_cancelled_when_its_answer_comes(
    lane_aws, handlers, submit, call, api_event, lambda_context
):
    api, tick = handlers(FLUSH_SIZE="2")
    ids = [submit(api, f"Summarize: note {n}", lane="batch").body["task_id"] for n in range(3)]
    assert call(api, api_event("cancel-task", task_id=ids[0])).status == 200

    assert tick({}, lambda_context)["batched"] == 2  # the cancelled task is in no job
    assert call(api, api_event("cancel-task", task_id=ids[1])).status == 200
    collected = tick({}, lambda_context)

    assert collected["answered"] == 1
    assert [read(call, api_event, api, t)["status"] for t in ids] == ["cancelled", "cancelled", "succeeded"]
    statuses = sorted(e["detail"]["status"] for e in lane_aws.task_events())
    assert statuses == ["cancelled", "cancelled", "succeeded"]


# -- on Bedrock (Stubber on a real bedrock client), with the lane built in process ------------------------------


class Lane:
    """A lane whose jobs go to a stubbed Bedrock, and the task service it finishes tasks through."""

    def __init__(self, aws: Any, settings: BatchLaneSettings, local_model: Any) -> None:
        self.bedrock = boto3.client("bedrock", region_name="us-east-1")
        self.stub = Stubber(self.bedrock)
        agents = AgentService(
            definition=batch_definition,
            settings=RuntimeSettings(model=NOVA),
            providers=_Every(local_model),
        )
        self.tasks = TaskService(
            store=TaskStore(TABLE, bucket=RESULTS),
            agents=agents,
            events=TaskEvents(BUS),
            routes={"default": "queue"},
            queue_url=aws.queue_url,
            batch=settings,
        )
        self.files = BatchFiles(LANE_BUCKET)
        self.lane = BatchLane(tasks=self.tasks, files=self.files, settings=settings, jobs=BatchJobs(ROLE, client=self.bedrock))

    def submit(self, count: int) -> list[str]:
        return [
            self.tasks.submit(TaskSubmission(message=f"Summarize ticket {n}", lane="batch"), owner="user-1").task_id
            for n in range(count)
        ]

    def expect_create(self, name: str, arn: str) -> None:
        self.stub.add_response(
            "create_model_invocation_job",
            {"jobArn": arn},
            {
                "jobName": name,
                "clientRequestToken": name,
                "roleArn": ROLE,
                "modelId": "amazon.nova-lite-v1:0",
                "modelInvocationType": "Converse",
                "inputDataConfig": {
                    "s3InputDataConfig": {
                        "s3Uri": f"s3://{LANE_BUCKET}/batch/{name}/input/records.jsonl",
                        "s3InputFormat": "JSONL",
                    }
                },
                "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{LANE_BUCKET}/batch/{name}/output/"}},
                "timeoutDurationInHours": 24,
            },
        )

    def expect_state(self, arn: str, status: str, message: str = "") -> None:
        now = datetime.fromtimestamp(runtime_now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # the runtime's clock
        self.stub.add_response(
            "get_model_invocation_job",
            {
                "jobArn": arn,
                "jobName": "x",
                "modelId": "amazon.nova-lite-v1:0",
                "roleArn": ROLE,
                "status": status,
                "message": message,
                "submitTime": now,
                "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://b/k"}},
                "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://b/o/"}},
            },
            {"jobIdentifier": arn},
        )


class _Every:
    def __init__(self, model: Any) -> None:
        self.model = model

    def get(self, spec: Any) -> Any:
        return self.model


def answer_line(task_id: str, text: str) -> str:
    response = ModelResponse(
        message=Message.assistant(text), stop_reason="end_turn", usage=Usage(input_tokens=40, output_tokens=12), model=NOVA
    )
    return json.dumps({"recordId": task_id, "modelInput": {}, "modelOutput": to_converse_response(response)})


@pytest.fixture
def bedrock_lane(lane_aws, agent_env, clock) -> Iterator[Lane]:
    from agentrail_runtime.models.local import LocalModel

    lane = Lane(
        lane_aws, BatchLaneSettings(enabled=True, bucket=LANE_BUCKET, role_arn=ROLE, max_age_seconds=MAX_AGE), LocalModel()
    )
    with lane.stub:
        yield lane


def test_a_bedrock_job_whose_output_is_malformed_or_missing_records_loses_no_task(bedrock_lane, lane_aws, clock):
    ids = bedrock_lane.submit(100)  # Bedrock's minimum for a job
    created = bedrock_lane.tasks.store.get(ids[0])
    assert created is not None
    name = job_name(ids, created.created_at)
    arn = f"arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/{name[-12:]}"
    bedrock_lane.expect_create(name, arn)

    assert bedrock_lane.lane.tick().batched == 100

    location = bedrock_lane.files.location(name)
    lines = [answer_line(task_id, f"Summary {n}.") for n, task_id in enumerate(ids[:97])]
    lines[5] = lines[5][:40]  # cut off: malformed
    lines.append(json.dumps({"recordId": ids[97], "modelInput": {}, "error": {"errorCode": 400, "errorMessage": "bad"}}))
    lines.append(json.dumps({"recordId": "f" * 32, "modelOutput": {}}))  # a record of no task of this job
    bedrock_lane.files.write_output(location, "abc123", ("\n".join(lines) + "\n").encode())
    bedrock_lane.expect_state(arn, "PartiallyCompleted")

    report = bedrock_lane.lane.tick()

    assert (report.answered, report.failed) == (96, 4)
    tasks = {t.task_id: t for t in bedrock_lane.tasks.store.get_many(ids, with_payloads=True)}
    assert tasks[ids[0]].status == TaskStatus.SUCCEEDED and tasks[ids[0]].result.answer == "Summary 0."
    # The batch price: half of Nova Lite's on-demand price for 40 in and 12 out.
    on_demand = bedrock_lane.tasks.agents.prices.cost(NOVA, Usage(input_tokens=40, output_tokens=12))
    assert on_demand is not None and tasks[ids[0]].cost_usd == pytest.approx(on_demand * 0.5)
    assert tasks[ids[5]].error.code == "batch_record_failed"
    assert "no record" in tasks[ids[5]].error.message
    assert "refused the record (400): bad" in tasks[ids[97]].error.message
    assert {tasks[i].error.code for i in ids[98:]} == {"batch_record_failed"}
    assert all(t.status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED) for t in tasks.values())
    assert len(lane_aws.task_events()) == 100
    bedrock_lane.stub.assert_no_pending_responses()


def test_a_failed_bedrock_job_runs_once_more_then_fails_its_tasks_with_bedrocks_message(bedrock_lane, lane_aws):
    ids = bedrock_lane.submit(100)
    created = bedrock_lane.tasks.store.get(ids[0])
    assert created is not None
    name = job_name(ids, created.created_at)
    first, second = "arn:aws:bedrock:us-east-1:1:model-invocation-job/a1", "arn:aws:bedrock:us-east-1:1:model-invocation-job/b2"
    bedrock_lane.expect_create(name, first)
    bedrock_lane.lane.tick()

    bedrock_lane.expect_state(first, "Failed", "Internal error")
    bedrock_lane.expect_create(f"{name}-r1", second)
    assert bedrock_lane.lane.tick().jobs_resubmitted == 1
    retried = bedrock_lane.tasks.store.get(ids[3])
    assert retried is not None and (retried.status, retried.batch_job) == (TaskStatus.BATCHED, second)

    bedrock_lane.expect_state(second, "Expired", "The job timed out")
    report = bedrock_lane.lane.tick()

    assert report.failed == 100
    failed = bedrock_lane.tasks.store.get(ids[0])
    assert failed is not None and failed.error is not None
    assert failed.error.code == "batch_job_failed"
    assert failed.error.message == f"The batch job ended Expired twice (last {name}-r1): The job timed out."
    assert len(lane_aws.task_events()) == 100
    bedrock_lane.stub.assert_no_pending_responses()


def test_below_bedrocks_minimum_at_max_age_the_tasks_run_on_demand(bedrock_lane, lane_aws, clock):
    ids = bedrock_lane.submit(3)

    assert bedrock_lane.lane.tick().on_demand == 0  # not yet max_age old
    clock.advance(MAX_AGE)
    assert bedrock_lane.lane.tick().on_demand == 3

    assert sorted(json.loads(m["Body"])["task_id"] for m in lane_aws.queued()) == sorted(ids)
    record = bedrock_lane.tasks.store.get(ids[0])
    assert record is not None and (record.status, record.lane) == (TaskStatus.QUEUED, "on_demand")
    assert bedrock_lane.lane.tick().on_demand == 0  # out of the lane's queue: sent once


def test_below_bedrocks_minimum_at_max_age_the_tasks_fail_when_the_lane_says_so(lane_aws, agent_env, clock):
    from agentrail_runtime.models.local import LocalModel

    settings = BatchLaneSettings(enabled=True, bucket=LANE_BUCKET, role_arn=ROLE, max_age_seconds=MAX_AGE, below_minimum="fail")
    lane = Lane(lane_aws, settings, LocalModel())
    ids = lane.submit(2)
    clock.advance(MAX_AGE)

    assert lane.lane.tick().failed == 2

    record = lane.tasks.store.get(ids[1])
    assert record is not None and record.error is not None
    assert (record.status, record.error.code) == (TaskStatus.FAILED, "batch_below_minimum")
    assert "fewer than the 100 records Bedrock runs in a job" in record.error.message
    assert lane_aws.queued() == []


def test_a_job_bedrock_refuses_is_retried_next_tick_and_the_tick_reports_the_failure(bedrock_lane):
    ids = bedrock_lane.submit(100)
    created = bedrock_lane.tasks.store.get(ids[0])
    assert created is not None
    name = job_name(ids, created.created_at)
    bedrock_lane.stub.add_client_error(
        "create_model_invocation_job", "ServiceQuotaExceededException", expected_params=any_params(name)
    )

    with pytest.raises(BatchLaneError, match=f"Bedrock refused batch job {name} \\(ServiceQuotaExceededException\\)"):
        bedrock_lane.lane.tick()
    assert {t.status for t in bedrock_lane.tasks.store.get_many(ids)} == {TaskStatus.QUEUED}

    bedrock_lane.expect_create(name, "arn:aws:bedrock:us-east-1:1:model-invocation-job/c3")
    assert bedrock_lane.lane.tick().batched == 100  # the job's item is resumed: the same job, the same tasks
    bedrock_lane.stub.assert_no_pending_responses()


def any_params(name: str) -> dict[str, Any]:
    """What a submit of job ``name`` sends, whatever its role, model and files."""
    names = ("clientRequestToken", "roleArn", "modelId", "modelInvocationType", "inputDataConfig", "outputDataConfig")
    return dict.fromkeys(names, ANY) | {"jobName": name, "timeoutDurationInHours": 24}


# -- crashes between writes ------------------------------------------------------------------------------------


class Crash(Exception):
    pass


def test_a_tick_that_crashes_after_submitting_marks_the_same_jobs_tasks_next_tick_and_runs_the_job_once(
    lane_aws, handlers, handler_module, submit, call, api_event, lambda_context, monkeypatch
):
    api, tick = handlers()
    ids = [submit(api, f"Summarize: case {n}", lane="batch").body["task_id"] for n in range(3)]
    lane = handler_module("batch_lane", lane_environment(lane_aws)).lane
    marks = []
    original = lane._mark

    def crash_after_the_first_mark(*args: Any, **kwargs: Any) -> bool:
        marks.append(args[0])
        if len(marks) == 2:
            raise Crash("the function timed out")
        return original(*args, **kwargs)

    monkeypatch.setattr(lane, "_mark", crash_after_the_first_mark)
    with pytest.raises(Crash):
        tick({}, lambda_context)
    monkeypatch.setattr(lane, "_mark", original)

    resumed = tick({}, lambda_context)  # the job's item has no ARN yet: submitted again (the same job), then marked
    assert (resumed["jobs_submitted"], resumed["batched"]) == (1, 2)
    assert len([k for k in lane_files(lane_aws.s3) if k.endswith(".out")]) == 1  # the job ran once
    assert tick({}, lambda_context)["answered"] == 3
    assert sorted(e["detail"]["task_id"] for e in lane_aws.task_events()) == sorted(ids)


def test_a_tick_that_crashes_mid_collection_finishes_the_rest_next_tick_without_counting_anything_twice(
    lane_aws, handlers, handler_module, submit, call, api_event, lambda_context, monkeypatch
):
    api, tick = handlers()
    ids = [submit(api, f"Summarize: item {n}", lane="batch").body["task_id"] for n in range(3)]
    tick({}, lambda_context)
    lane = handler_module("batch_lane", lane_environment(lane_aws)).lane
    original = lane.tasks.finish
    finished: list[str] = []

    def crash_after_two(task_id: str, *args: Any, **kwargs: Any) -> Any:
        if len(finished) == 2:
            raise Crash("the function timed out")
        finished.append(task_id)
        return original(task_id, *args, **kwargs)

    monkeypatch.setattr(lane.tasks, "finish", crash_after_two)
    with pytest.raises(Crash):
        tick({}, lambda_context)
    monkeypatch.setattr(lane.tasks, "finish", original)

    assert tick({}, lambda_context)["answered"] == 1
    for task_id in ids:
        task = read(call, api_event, api, task_id)
        assert task["status"] == "succeeded"
        assert task["spend"]["demo-summarizer"]["calls"] == 1  # spend and outcome were written together, once
    assert sorted(e["detail"]["task_id"] for e in lane_aws.task_events()) == sorted(ids)


def test_a_null_lane_is_refused_as_api_gateways_model_refuses_it(lane_aws, handlers, submit):
    api, _ = handlers()

    reply = submit(api, "Summarize: hello", lane=None)

    assert (reply.status, reply.body["error"]) == (400, "invalid_request")
    assert [d["field"] for d in reply.body["details"]] == ["lane"]
