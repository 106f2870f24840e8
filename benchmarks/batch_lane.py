"""The batch lane's cost per task, all in, against the same tasks run on demand in the same run.

One process (``runners/batch_workload.py``, moto in process) runs TASKS single-step summary tasks (about 1,500 tokens
of system prompt, about 300 of message; the local model answers and estimates the tokens, priced as the Bedrock model
it stands in for) per model, Nova Lite and Claude 3.5 Haiku: on demand (submit, SQS, the task worker handler), and in
the batch lane (submitted with ``"lane": "batch"``, flushed by ``BatchLane.tick`` every 5 minutes into Bedrock batch
jobs that an emulated Bedrock runs over the same S3 files, collected by a later tick), with FAILED_PERCENT of each
job's records coming back with an ``error``; those tasks fail and are submitted again on demand.

Each side's AWS use is counted (DynamoDB request units, SQS requests, EventBridge events, S3 requests of the lane's
and of Bedrock on the lane's bucket, Lambda requests and GB-seconds at the functions' 1,024 MB on arm64 from the
handlers' wall time in process, and one EventBridge Scheduler invocation per tick while the workload's tasks wait or
their jobs run) and priced with the planner's price table (``agentrail_cli.plan.prices``); the model's USD is what
the runtime wrote in each task's spend.

Two ratios against the on-demand side of the same run: the **model portion** (the batch price the runtime charged
over the on-demand price of the same tasks; the target is the price table's 0.5, with a rounding tolerance), and
**all in** (the batch lane's model, AWS and redone failures per task over the on-demand side's model and AWS per
task), with a target of < 0.6: the AWS portion is small against a model call of this size, so the lane's own costs
(ticks, S3 files, the job item) and the redone failures must not take more than a tenth of the price off the saving.
The figures are what the run measures; nothing here assumes them.

A third baseline, without a target, runs the same tasks on demand with prompt caching (the runtime's default; the local
model's simulated cache follows each model's Bedrock rules): a batch job caches no prompt, so where the system prompt
is long enough to cache, the lane's saving shrinks or turns into a loss, and the figure shows by how much.
"""

from __future__ import annotations

from typing import Any

from agentrail_cli.plan.prices import EXTRA_ITEM_PRICES, Architecture, ItemPrice, load_prices, region_prices
from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import Figure, Result, Table, Target

__all__ = ["BENCHMARK"]

BASELINE = "the same tasks on demand (submit, SQS, task worker), same run"
CACHED_BASELINE = "the same tasks on demand with prompt caching (the runtime's default), same run"
#: The price table's batch factor, with room for the runtime's rounding of each task's cost to 1e-8 USD.
MODEL_PORTION = Target(on="ratio", op="<=", limit=0.5005)
#: All in, the lane must keep most of its saving: its ticks, files and redone failures cost less than a tenth.
ALL_IN = Target(on="ratio", op="<", limit=0.6)
REGION = "us-east-1"
ARCHITECTURE: Architecture = "arm64"
#: AgentFunctionOptions' memory_size: the task worker's and the lane's function's (BatchLane reuses the agent's options).
FUNCTION_MEMORY_GB = 1024 / 1024
FAILED_PERCENT = 2.0
#: How long each emulated Bedrock job runs before a tick finds it done (real jobs take minutes to 24 hours).
JOB_MINUTES = 60.0
#: Bedrock's fewest records per job (``contract.BatchModel.min_records``): ``--repeat`` below it runs this many.
MIN_TASKS = 100


def _prices() -> dict[str, ItemPrice]:
    items = dict(region_prices(load_prices(), REGION).items)
    return items | EXTRA_ITEM_PRICES


def _aws_usd(
    aws: dict[str, Any], lambda_use: list[dict[str, Any]], prices: dict[str, ItemPrice], ticks: int = 0
) -> dict[str, float]:
    """USD of one side's AWS use, by service."""
    requests = sum(use["invocations"] for use in lambda_use)
    gb_seconds = sum(use["billed_ms"] for use in lambda_use) / 1000 * FUNCTION_MEMORY_GB

    def usd(item: str, quantity: float) -> float:
        return quantity * prices[item].unit_price_usd(ARCHITECTURE)

    return {
        "dynamodb": usd("dynamodb_read_units", aws["dynamodb_read_units"])
        + usd("dynamodb_write_units", aws["dynamodb_write_units"]),
        "sqs": usd("sqs_requests", aws["sqs_requests"]),
        "eventbridge": usd("eventbridge_events", aws["eventbridge_events"]),
        "s3": usd("s3_tier1_requests", aws["s3_tier1_requests"]) + usd("s3_tier2_requests", aws["s3_tier2_requests"]),
        "lambda": usd("lambda_requests", requests) + usd("lambda_gb_seconds", gb_seconds),
        "scheduler": usd("scheduler_invocations", ticks),
    }


def _model_usd(tasks: dict[str, dict[str, Any]], keys: Any = None) -> float:
    chosen = tasks if keys is None else {k: tasks[k] for k in keys}
    return sum(task["cost_usd"] or 0.0 for task in chosen.values())


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Run the workload on both sides and price them; see the module docstring."""
    # Bedrock runs no job of fewer than 100 records: below that the lane would send every task on demand.
    count = max(repetitions or 200, MIN_TASKS)
    context.progress(f"batch_lane: {count} tasks per model on demand and in the batch lane ({FAILED_PERCENT:g}% failed records)")
    report = run_in_workdir(
        context.workdir, "batch_workload.py", [str(count), str(FAILED_PERCENT), str(JOB_MINUTES)], timeout=1800
    ).report
    prices = _prices()
    results: list[Result] = []
    rows: list[tuple[str, ...]] = []
    for spec, sides in report["models"].items():
        lambdas = sides["lambda"]
        on_demand, batch, redo = sides["on_demand"], sides["batch"], sides["redo"]
        answered = [n for n, task in batch["tasks"].items() if task["status"] == "succeeded"]
        failed = [n for n, task in batch["tasks"].items() if task["status"] == "failed"]
        redone = [n for n, task in redo["tasks"].items() if task["status"] == "succeeded"]
        if len(answered) + len(failed) != count or sorted(redone) != sorted(failed):
            raise RuntimeError(f"{spec}: {len(answered)} answered, {len(failed)} failed, {len(redone)} redone of {count}")

        on_demand_aws = _aws_usd(on_demand["aws"], [lambdas["on_demand:worker"]], prices)
        on_demand_model = _model_usd(on_demand["tasks"])
        on_demand_total = on_demand_model + sum(on_demand_aws.values())
        cached = sides["cached"]
        cached_aws = _aws_usd(cached["aws"], [lambdas["cached:worker"]], prices)
        cached_model = _model_usd(cached["tasks"])
        cached_total = cached_model + sum(cached_aws.values())
        batch_aws = _aws_usd(batch["aws"], [lambdas["batch:tick"]], prices, ticks=batch["ticks"])
        batch_model = _model_usd(batch["tasks"], answered)
        redo_use = [lambdas["redo:worker"]] if "redo:worker" in lambdas else []
        redo_aws = _aws_usd(redo["aws"], redo_use, prices)
        redo_model = _model_usd(redo["tasks"])
        redo_total = redo_model + sum(redo_aws.values())
        batch_total = batch_model + sum(batch_aws.values()) + redo_total

        same_on_demand = _model_usd(on_demand["tasks"], answered)
        tokens = on_demand["tasks"][answered[0]] if answered else {}
        details = {
            "tasks": count,
            "answered_in_batch": len(answered),
            "failed_records_redone_on_demand": len(failed),
            "jobs": batch["jobs"],
            "ticks": batch["ticks"],
            "window_hours": round(batch["window_seconds"] / 3600, 2),
            "tokens_per_task": {"input": tokens.get("input_tokens"), "output": tokens.get("output_tokens")},
            "on_demand_usd_per_task": {"model": on_demand_model / count, **{k: v / count for k, v in on_demand_aws.items()}},
            "batch_usd_per_task": {
                "model": batch_model / count,
                **{k: v / count for k, v in batch_aws.items()},
                "redone_failures": redo_total / count,
            },
            "aws_calls": {"on_demand": on_demand["aws"]["calls"], "batch": batch["aws"]["calls"], "redo": redo["aws"]["calls"]},
            "lambda": lambdas,
        }
        short = spec.removeprefix("bedrock:")
        results += [
            Result(
                f"{short}: model USD per answered task in the batch lane",
                batch_model / len(answered),
                "USD",
                BASELINE,
                same_on_demand / len(answered),
                MODEL_PORTION,
            ),
            Result(
                f"{short}: USD per task in the batch lane, all in (model, AWS, redone failures)",
                batch_total / count,
                "USD",
                BASELINE,
                on_demand_total / count,
                ALL_IN,
                details=details,
            ),
            Result(
                f"{short}: USD per task in the batch lane, all in, against on demand with prompt caching",
                batch_total / count,
                "USD",
                CACHED_BASELINE,
                cached_total / count,
                details={
                    "prompt_caching": cached["caches_prompts"],
                    "cached_usd_per_task": {"model": cached_model / count, **{k: v / count for k, v in cached_aws.items()}},
                    "tokens_per_task": {
                        kind: sum(t[kind] for t in cached["tasks"].values()) / count
                        for kind in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
                    },
                },
            ),
            Result(
                f"{short}: AWS USD per task in the batch lane (ticks, S3, DynamoDB, events)",
                sum(batch_aws.values()) / count,
                "USD",
                BASELINE,
                sum(on_demand_aws.values()) / count,
            ),
        ]
        for side, model_usd, aws_usd, redone_usd in (
            ("on demand", on_demand_model, on_demand_aws, 0.0),
            ("on demand, prompt caching", cached_model, cached_aws, 0.0),
            ("batch lane", batch_model, batch_aws, redo_total),
        ):
            rows.append(
                (
                    short,
                    side,
                    f"{model_usd / count:.8f}",
                    *(f"{aws_usd[k] / count:.8f}" for k in ("dynamodb", "sqs", "s3", "eventbridge", "lambda", "scheduler")),
                    f"{redone_usd / count:.8f}",
                    f"{(model_usd + sum(aws_usd.values()) + redone_usd) / count:.8f}",
                )
            )
    first = next(iter(report["models"].values()))
    return Figure(
        key="batch_lane",
        title="Batch lane: USD per task against on demand",
        results=results,
        notes=[
            f"{count} single-step tasks per model: a {report['system_prompt_tokens']:,}-token system prompt and a "
            f"{report['message_tokens']:,}-token message (the local model's estimate, one token per four characters), "
            "answered by the local model and priced as the Bedrock model at the runtime's list prices.",
            f"Batch lane: the construct's defaults (flush {report['flush_size']}, max age "
            f"{report['max_age_seconds'] // 60} minutes, a tick every {report['check_every_seconds'] // 60} minutes), tasks "
            f"arriving evenly over the max age; each emulated Bedrock job ends {report['job_minutes']:g} minutes after it "
            f"was submitted; {first['batch']['ticks']} ticks (Scheduler invocations and Lambda requests) over the "
            f"{first['batch']['window_seconds'] / 3600:g} hours the tasks waited or ran, all charged to these tasks. A "
            "longer job adds ticks; the schedule also ticks when nothing waits (288 a day), a fixed cost left out here.",
            f"Failed records: {report['failed_percent']:g}% of each job's records come back with an error; Bedrock bills "
            "no tokens for them (assumed); each such task is submitted again on demand, at the on-demand price and AWS "
            "use, counted in the lane's column 'redone'.",
            "Prompt caching: the runtime caches prompts by default, and a batch job caches none. The rows 'against on "
            "demand with prompt caching' run the same tasks on demand with the local model's simulated cache following "
            "each model's Bedrock rules (minimum tokens per cache point, 5-minute TTL; tasks 18 s apart keep it warm): "
            "where the system prompt is cached (Nova: 1,000 tokens at least, reads at a quarter of the input price), on "
            "demand can cost less than the batch lane; below the model's minimum (Claude 3.5 Haiku: 2,048 tokens) "
            "nothing is cached and the two baselines agree. See each row's details for the cached tokens.",
            "AWS: counted calls priced with the planner's table (agentrail_cli.plan.prices; S3 requests and Scheduler "
            "invocations from EXTRA_ITEM_PRICES), us-east-1, no free tier. DynamoDB request units as on-demand bills "
            "them (item sizes, consistent reads, index writes: agentrail_local.dynamodb_capacity). Lambda GB-seconds are "
            "the handlers' wall time in process (moto's CPU included, no network) at 1,024 MB arm64: the on-demand "
            "worker here does not wait for a model, which on Bedrock it would (billed), so its side is understated.",
            "Left out on both sides: the API request that submits the task (API Gateway, the API function) and the "
            "client's reads of it, the same for both; CloudWatch Logs; S3 storage of the job files (kilobytes, a day "
            "or two); KMS requests behind encrypted S3 objects; the idle polls of the SQS event source mapping.",
        ],
        tables=[
            Table(
                "USD per task by item",
                ("Model", "Side", "Model", "DynamoDB", "SQS", "S3", "EventBridge", "Lambda", "Scheduler", "Redone", "Total"),
                rows,
            )
        ],
    )


BENCHMARK = Benchmark(key="batch_lane", title="Batch lane cost", run=run, repetitions=200, quick_repetitions=MIN_TASKS)
