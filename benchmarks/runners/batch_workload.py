"""The batch lane's cost: one fixed workload of single-step tasks, on demand and in the batch lane, per model.

Usage: ``python batch_workload.py TASKS FAILED_PERCENT JOB_MINUTES REPORT.json``.

Moto runs in process. For each model, TASKS summary tasks (a system prompt of about 1,500 tokens, a message of about
300; the local model answers, its responses named after the Bedrock model, so both sides are priced as that model) run:

- ``on_demand``: each submitted with ``TaskService.submit`` (its item and its SQS message) as it arrives (evenly over
  an hour), received in batches of the worker's event source mapping (5) and handed to the task worker handler as
  the SQS event Lambda builds (its idempotency records, ``TaskService.run``, the task's event), then deleted;
- ``cached``: the same with the runtime's default prompt caching, the local model's simulated cache following the
  Bedrock model's own rules (minimum tokens per cache point, the 5-minute TTL): the system prompt read from the cache;
- ``batch``: each submitted with ``lane="batch"`` as it arrives (evenly over ``max_age``); a tick every
  ``check_every`` (``BatchLane.tick`` with the construct's defaults: flush 100, max age 1 hour, every 5 minutes)
  flushes them into jobs. The jobs run on :class:`EmulatedBedrock` between ticks, as Bedrock would: it reads the
  input file, answers each record with the same local model (``emulate_job``), and writes the output and manifest
  files under the job's output folder; a job ends JOB_MINUTES after it was submitted, and the first tick after that
  collects it. FAILED_PERCENT of each job's records come back with an ``error`` (their tasks fail);
- ``redo``: each task that failed in the batch lane submitted again on demand and run as on the ``on_demand`` side.

Every AWS call of each side is counted by botocore hooks on every session (Powertools idempotency's included):
DynamoDB request units as on-demand bills them (``agentrail_local.dynamodb_capacity``: item sizes, consistent reads,
index writes), SQS requests, EventBridge events, S3 requests of both tiers (the lane's and Bedrock's on the lane's
bucket). Each worker invocation and each tick is timed (wall time in process, billed per 1 ms): the Lambda requests and
durations. The report holds those counts, the ticks (the schedule's invocations) and each task's tokens and cost
(USD as the runtime wrote it in the task's spend).
"""

import json
import math
import os
import sys
import time
from collections import Counter, defaultdict

from lambda_shapes import LambdaContext
from moto_account import create_queue

REGION = "us-east-1"
MODELS = ("bedrock:amazon.nova-lite-v1:0", "bedrock:anthropic.claude-3-5-haiku-20241022-v1:0")
#: The BatchLaneOptions defaults (flush_size, max_age, check_every) and the worker's SQS batch size (AsyncOptions).
FLUSH_SIZE, MAX_AGE_SECONDS, CHECK_EVERY_SECONDS, WORKER_BATCH = 100, 3600, 300, 5
RESULTS_BUCKET, LANE_BUCKET = "agentrail-bench-results", "agentrail-bench-batch-lane"
IDEMPOTENCY_TABLE, BUS = "agentrail-bench-idempotency", "agentrail-bench-task-events"
ROLE = "arn:aws:iam::123456789012:role/agentrail-bench-batch"
OWNER = "iam:arn:aws:sts::123456789012:assumed-role/agentrail-caller/agentrail-client"
#: A support summarizer's instructions: about 1,500 tokens (the local model counts one token per four characters).
SYSTEM_PROMPT = "You summarize a customer's support message for the support team's queue. " + " ".join(
    f"Guideline {n}: read the whole message before you write, keep the customer's own figures and dates exactly as "
    "written, name the product and the order when the message names them, and say in one sentence what the customer "
    "wants and by when, without guessing anything the message does not say."
    for n in range(1, 22)
)
_CITIES = ("Lyon", "Porto", "Ghent", "Turin", "Leeds", "Malmo", "Graz", "Cork")


def message(n):
    """A support message of about 300 tokens; its facts (``my X is Y``) make the local model's summary."""
    city = _CITIES[n % len(_CITIES)]
    story = (
        "I ordered a standing desk from your shop three weeks ago and it has still not arrived, although the tracking "
        "page said it would be delivered last Tuesday. I waited at home the whole day and nobody came, and the carrier "
        "says the parcel is back at your warehouse. I have written twice already without an answer. I need the desk "
        "before I start my new job, and I would rather have a refund than wait another three weeks for it. "
    )
    facts = (
        f"My order number is {40000 + n}, my city is {city}, my delivery window is mornings before ten, "
        f"my preferred carrier is the one you used last time and my deadline is the first of the month."
    )
    return f"{story * 2}{facts}"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Meter:
    """Counts every AWS call while ``side`` is set, by side: calls by operation, DynamoDB request units, SQS
    requests, EventBridge events and S3 requests by price tier. Hooked into botocore's built-in handlers before any
    session exists, so every client of the process has the hooks."""

    #: S3's first price tier (PUT, COPY, POST, LIST); every other request is in the second (GET and the rest).
    S3_TIER1 = frozenset({"PutObject", "CopyObject", "PostObject", "ListObjectsV2", "ListObjects", "CreateMultipartUpload"})
    #: S3 bills no DELETE request (a multi-object delete included).
    S3_FREE = frozenset({"DeleteObject", "DeleteObjects"})

    def __init__(self) -> None:
        self.side = None
        self.calls = defaultdict(Counter)
        self.units = defaultdict(lambda: {"read": 0.0, "write": 0.0})
        self.events = Counter()
        self._capacity = None

    def install(self) -> None:
        from botocore.handlers import BUILTIN_HANDLERS

        BUILTIN_HANDLERS.extend(
            [("before-parameter-build", self._params), ("before-call", self._before), ("after-call", self._after)]
        )

    def _params(self, params, model, context, **_) -> None:
        context["bench_params"] = dict(params)

    def _before(self, model, context, **_) -> None:
        if self.side is None:
            return
        service, operation = model.service_model.service_id, model.name
        self.calls[self.side][f"{service}.{operation}"] += 1
        params = context.get("bench_params", {})
        if service == "EventBridge" and operation == "PutEvents":
            self.events[self.side] += len(params.get("Entries", []))
        if service == "DynamoDB":
            from agentrail_local.dynamodb_capacity import RequestCapacity, is_metered

            if is_metered(operation):
                capacity = RequestCapacity(operation, params)
                capacity.before()
                context["bench_capacity"] = capacity

    def _after(self, model, context, **_) -> None:
        capacity = context.pop("bench_capacity", None)
        if capacity is not None and self.side is not None:
            read, write = capacity.after()
            self.units[self.side]["read"] += read
            self.units[self.side]["write"] += write

    def side_report(self, side):
        calls = self.calls[side]
        s3 = {op.split(".", 1)[1]: n for op, n in calls.items() if op.startswith("S3.")}
        return {
            "calls": dict(sorted(calls.items())),
            "dynamodb_read_units": self.units[side]["read"],
            "dynamodb_write_units": self.units[side]["write"],
            "sqs_requests": sum(n for op, n in calls.items() if op.startswith("SQS.")),
            "eventbridge_events": self.events[side],
            "s3_tier1_requests": sum(n for op, n in s3.items() if op in self.S3_TIER1),
            "s3_tier2_requests": sum(n for op, n in s3.items() if op not in self.S3_TIER1 | self.S3_FREE),
        }


class Functions:
    """Lambda invocations by side and function: count, and billed milliseconds (each rounded up to 1 ms)."""

    def __init__(self) -> None:
        self.use = defaultdict(lambda: {"invocations": 0, "billed_ms": 0, "wall_ms": 0.0})

    def timed(self, side, function, call):
        started = time.perf_counter_ns()
        result = call()
        ms = (time.perf_counter_ns() - started) / 1e6
        use = self.use[(side, function)]
        use["invocations"] += 1
        use["wall_ms"] += ms
        use["billed_ms"] += math.ceil(ms)
        return result


class EmulatedBedrock:
    """Bedrock's batch inference jobs, run by the harness between ticks (never inside one, so a tick's duration is
    the lane's own): a job submitted at ``t`` ends ``job_seconds`` later, its output written as Bedrock writes it;
    one record in ``1 / failed_share`` comes back with an ``error``."""

    def __init__(self, files, provider, clock, *, job_seconds, failed_share) -> None:
        self.files, self.provider, self.clock = files, provider, clock
        self.job_seconds, self.failed_share = job_seconds, failed_share
        self.jobs = {}  # arn -> [name, location, submitted_at, written]
        self.failed_records = 0

    def submit(self, job_name, model_id, location):
        arn = f"arn:aws:bedrock:{REGION}:123456789012:model-invocation-job/{job_name}"
        self.jobs.setdefault(arn, [job_name, location, self.clock(), False])
        return arn

    def state(self, job_arn):
        from agentrail_runtime.batch.jobs import JobState

        _, _, submitted_at, written = self.jobs[job_arn]
        if written and self.clock() >= submitted_at + self.job_seconds:
            return JobState(job_arn=job_arn, status="Completed", phase="done")
        return JobState(job_arn=job_arn, status="InProgress", phase="running")

    def run_jobs(self) -> None:
        """What Bedrock does with each job submitted since: read its input, answer each record, write its output."""
        from agentrail_runtime.batch.records import emulate_job

        for job in self.jobs.values():
            name, location, _, written = job
            if written:
                continue
            lines = self.files.read_input(location).splitlines()
            out = [json.loads(line) for line in emulate_job(lines, self.provider).splitlines() if line.strip()]
            step = max(1, round(1 / self.failed_share)) if self.failed_share > 0 else 0
            for index in range(step // 2, len(out), step) if step else ():
                out[index] = {
                    "recordId": out[index]["recordId"],
                    "modelInput": out[index]["modelInput"],
                    "error": {"errorCode": 500, "errorMessage": "Internal server error while processing the record."},
                }
                self.failed_records += 1
            errors = sum(1 for line in out if "error" in line)
            body = ("\n".join(json.dumps(line) for line in out) + "\n").encode()
            job_id = name[-12:]
            self.files.write_output(location, job_id, body)
            manifest = {"totalRecordCount": len(out), "processedRecordCount": len(out), "errorRecordCount": errors}
            self.files.client.put_object(
                Bucket=location.bucket, Key=f"{location.output_prefix}{job_id}/manifest.json.out", Body=json.dumps(manifest)
            )
            job[3] = True


def main() -> int:
    tasks_count, failed_percent, job_minutes, report_path = (
        int(sys.argv[1]),
        float(sys.argv[2]),
        float(sys.argv[3]),
        sys.argv[4],
    )
    meter = Meter()
    meter.install()  # before moto and boto3 make any session
    import boto3
    import moto

    from agentrail_local.dynamodb_capacity import install_scan_seam

    mock = moto.mock_aws()
    mock.start()
    boto3.setup_default_session()
    install_scan_seam(True)  # Query reads counted by the items it reads
    dynamodb, sqs, s3 = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("s3")
    dynamodb.create_table(
        TableName=IDEMPOTENCY_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("events").create_event_bus(Name=BUS)
    for bucket in (RESULTS_BUCKET, LANE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    queue_url, queue_arn = create_queue(sqs, "agentrail-bench-tasks")
    os.environ.update(
        {
            "AGENT_TASK_TABLE": "agentrail-bench-unused",
            "AGENT_TASK_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
            "AGENT_TASK_QUEUE_URL": queue_url,
            "AGENT_TASK_EVENT_BUS": BUS,
        }
    )
    # Imported once moto runs: the runtime reads settings and builds clients at import.
    worker = __import__("agentrail_handlers.task_worker.app", fromlist=["handler"])
    from agentrail_local.awslambda.event_sources import sqs_event
    from agentrail_runtime import contract
    from agentrail_runtime.agent.definition import AgentDefinition
    from agentrail_runtime.batch.files import BatchFiles
    from agentrail_runtime.config import RuntimeSettings
    from agentrail_runtime.guardrails import builtin_input_guards, builtin_output_guards
    from agentrail_runtime.models.caching import SimulatedPromptCache, rules_for
    from agentrail_runtime.models.local import LocalModel, count_tokens
    from agentrail_runtime.service import AgentService
    from agentrail_runtime.tasks import TaskService, TaskSubmission
    from agentrail_runtime.tasks.batch_lane import BatchLane
    from agentrail_runtime.tasks.events import TaskEvents
    from agentrail_runtime.tasks.models import TaskStatus
    from agentrail_runtime.tasks.settings import BatchLaneSettings
    from agentrail_runtime.tasks.store import TaskStore

    definition = AgentDefinition(
        name="bench-summarizer",
        description="Summarizes a support message for the support team's queue, without tools.",
        system_prompt=SYSTEM_PROMPT,
        input_guards=builtin_input_guards(),
        output_guards=builtin_output_guards(),
    )
    context = LambdaContext()
    functions = Functions()
    report = {
        "tasks": tasks_count,
        "failed_percent": failed_percent,
        "job_minutes": job_minutes,
        "flush_size": FLUSH_SIZE,
        "max_age_seconds": MAX_AGE_SECONDS,
        "check_every_seconds": CHECK_EVERY_SECONDS,
        "worker_batch": WORKER_BATCH,
        "system_prompt_tokens": count_tokens(SYSTEM_PROMPT),
        "message_tokens": count_tokens(message(0)),
        "models": {},
    }

    def run_model(model_index, spec):
        """Both sides of the workload on one model, into ``report``."""

        class PricedLocalModel(LocalModel):
            """The local model, its answers named after the Bedrock model it stands in for (so priced as it)."""

            name = spec

        class Providers:
            def __init__(self, provider):
                self.provider = provider

            def get(self, _spec):
                return self.provider

        clock = Clock()
        provider = PricedLocalModel()
        rules = rules_for(spec.partition(":")[2])
        cached_provider = PricedLocalModel(prompt_cache=SimulatedPromptCache(rules, clock=clock) if rules else None)

        def service(side, lane_settings=None, model=provider):
            table = f"agentrail-bench-tasks-{model_index}-{side}"
            dynamodb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "task_id", "KeyType": "HASH"}],
                AttributeDefinitions=[
                    {"AttributeName": "task_id", "AttributeType": "S"},
                    {"AttributeName": contract.TASK_BATCH_ATTRIBUTE, "AttributeType": "S"},
                    {"AttributeName": "created_at", "AttributeType": "N"},
                ],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": contract.TASK_BATCH_INDEX,
                        "KeySchema": [
                            {"AttributeName": contract.TASK_BATCH_ATTRIBUTE, "KeyType": "HASH"},
                            {"AttributeName": "created_at", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    }
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            agents = AgentService(definition=definition, settings=RuntimeSettings(model=spec), providers=Providers(model))
            return TaskService(
                store=TaskStore(table, bucket=RESULTS_BUCKET, clock=clock),
                agents=agents,
                events=TaskEvents(BUS),
                routes={"default": "queue"},
                queue_url=queue_url,
                batch=lane_settings,
                clock=clock,
            )

        def drain(side, tasks):
            """The worker's event source mapping: receive a batch, invoke the worker with it, delete it."""
            worker.tasks = tasks  # the handler runs this model's task service
            while True:
                meter.side = side
                received = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=WORKER_BATCH, MessageSystemAttributeNames=["All"]
                ).get("Messages", [])
                if not received:
                    meter.side = None
                    return
                event = sqs_event(received, queue_arn, REGION)
                result = functions.timed(side, "worker", lambda event=event: worker.handler(event, context))
                if result["batchItemFailures"]:
                    raise SystemExit(f"the worker reported failures: {result['batchItemFailures']}")
                sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)],
                )
                meter.side = None

        def spend(tasks, ids):
            records = {r.task_id: r for r in tasks.store.get_many(list(ids.values()), with_payloads=True)}
            out = {}
            for n, task_id in ids.items():
                record = records[task_id]
                usage = record.usage
                out[n] = {
                    "status": record.status.value,
                    "error": record.error.code if record.error else None,
                    "cost_usd": record.cost_usd,
                    "input_tokens": usage.input_tokens,
                    "cache_read_tokens": usage.cache_read_tokens,
                    "cache_write_tokens": usage.cache_write_tokens,
                    "output_tokens": usage.output_tokens,
                }
            return out

        def run_on_demand(side, tasks):
            """The tasks arriving evenly over ``max_age``, each batch of the worker's size run as it fills."""
            ids = {}
            for n in range(tasks_count):
                clock.now += MAX_AGE_SECONDS / tasks_count
                meter.side = side
                ids[n] = tasks.submit(TaskSubmission(message=message(n), lane="on_demand"), owner=OWNER).task_id
                meter.side = None
                if (n + 1) % WORKER_BATCH == 0:
                    drain(side, tasks)
            drain(side, tasks)
            return spend(tasks, ids)

        # -- on demand, without and with prompt caching ----------------------------------------------------------
        on_demand = service("on_demand")
        on_demand_tasks = run_on_demand("on_demand", on_demand)
        clock.now += 86_400
        cached_tasks = run_on_demand("cached", service("cached", model=cached_provider))

        # -- batch lane ------------------------------------------------------------------------------------------
        clock.now += 86_400
        settings = BatchLaneSettings(
            enabled=True, bucket=LANE_BUCKET, role_arn=ROLE, flush_size=FLUSH_SIZE, max_age_seconds=MAX_AGE_SECONDS
        )
        batch = service("batch", settings)
        files = BatchFiles(LANE_BUCKET, prefix=f"batch-{model_index}")
        bedrock = EmulatedBedrock(files, provider, clock, job_seconds=job_minutes * 60, failed_share=failed_percent / 100)
        lane = BatchLane(tasks=batch, files=files, settings=settings, jobs=bedrock, clock=clock)
        start = clock.now
        arrivals = [start + (n + 1) * MAX_AGE_SECONDS / tasks_count - 1 for n in range(tasks_count)]
        batch_ids = {}
        ticks, tick_reports = 0, Counter()
        for tick_index in range(1, 24 * 3600 // CHECK_EVERY_SECONDS * 2):
            tick_at = start + tick_index * CHECK_EVERY_SECONDS
            while len(batch_ids) < tasks_count and arrivals[len(batch_ids)] <= tick_at:
                n = len(batch_ids)
                clock.now = arrivals[n]
                meter.side = "batch"
                batch_ids[n] = batch.submit(TaskSubmission(message=message(n), lane="batch"), owner=OWNER).task_id
                meter.side = None
            clock.now = tick_at
            meter.side = "batch"
            done = functions.timed("batch", "tick", lane.tick)
            bedrock.run_jobs()  # Bedrock's own reads and writes on the lane's bucket, between ticks
            meter.side = None
            ticks += 1
            tick_reports.update({k: v for k, v in done.as_dict().items() if isinstance(v, int)})
            if len(batch_ids) == tasks_count:
                statuses = {r.status for r in batch.store.get_many(list(batch_ids.values()))}
                if statuses <= {TaskStatus.SUCCEEDED, TaskStatus.FAILED}:
                    break
        else:
            raise SystemExit("the batch lane did not finish its tasks within two days of ticks")
        window_seconds = clock.now - start
        batch_tasks = spend(batch, batch_ids)

        # -- failed records, submitted again on demand ---------------------------------------------------------
        redo_ids = {}
        for n, task in batch_tasks.items():
            if task["status"] == TaskStatus.FAILED.value:
                meter.side = "redo"
                redo_ids[n] = on_demand.submit(TaskSubmission(message=message(n), lane="on_demand"), owner=OWNER).task_id
                meter.side = None
        drain("redo", on_demand)
        redo_tasks = spend(on_demand, redo_ids)

        report["models"][spec] = {
            "on_demand": {"tasks": on_demand_tasks, "aws": meter.side_report("on_demand")},
            "cached": {"tasks": cached_tasks, "aws": meter.side_report("cached"), "caches_prompts": rules is not None},
            "batch": {
                "tasks": batch_tasks,
                "aws": meter.side_report("batch"),
                "ticks": ticks,
                "window_seconds": window_seconds,
                "tick_reports": dict(tick_reports),
                "failed_records_injected": bedrock.failed_records,
                "jobs": len(bedrock.jobs),
            },
            "redo": {"tasks": redo_tasks, "aws": meter.side_report("redo")},
            "lambda": {f"{side}:{function}": use for (side, function), use in functions.use.items()},
        }
        functions.use.clear()
        meter.calls.clear()
        meter.units.clear()
        meter.events.clear()

    for model_index, spec in enumerate(MODELS):
        run_model(model_index, spec)

    install_scan_seam(False)
    with open(report_path, "w") as out:
        json.dump(report, out)
    mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
