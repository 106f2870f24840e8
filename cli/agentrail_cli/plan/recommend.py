"""From requirements to a pattern (or a mix), the settings it implies, and the reasons: each tied to a requirement.

The rules are deliberately few and stated in words next to each decision, so a reader can disagree with one:

1. **Complexity first.** A supervisor that plans and fans out is ``hierarchical``; specialists behind a router are
   ``multiagent``. One agent goes on to rule 2.
2. **Oversight.** An action that needs a person's approval runs as a task (``async``, task type ``reviewed``): an
   approval can wait for days, and only a workflow can wait that long without paying for it.
3. **Duration and latency.** Work longer than an API Gateway request may wait (29 s), or that nobody waits for,
   runs as a task; longer than a Lambda invocation may run (15 min), in the Step Functions long-task workflow.
4. **State.** A conversation is ``stateful`` (sessions in DynamoDB, any instance serves any session); with
   streaming, over the WebSocket API. No state is ``stateless``.
5. **Mixes.** A conversation whose actions need approval is ``stateful`` for the chat and ``async`` for the
   approved actions.

Settings follow from the same requirements: memory, timeouts, concurrency, batch sizes, TTLs and timeouts, and
the ``-c`` values and ``app.py`` stanza that deploy them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from agentrail_cli.plan.requirements import Complexity, Latency, OpsExperience, Requirements, State

__all__ = ["API_TIMEOUT", "LAMBDA_TIMEOUT", "Decision", "Recommendation", "Settings", "recommend"]

#: Longest an API Gateway REST or HTTP integration may take (seconds).
API_TIMEOUT = 29
#: Longest one Lambda invocation may run (seconds).
LAMBDA_TIMEOUT = 900
#: Lambda's default concurrency quota per account and Region.
DEFAULT_CONCURRENCY_QUOTA = 1000
#: Tokens most models need in a prompt prefix before they cache it (Claude's minimum; some need 2,048).
MIN_CACHED_PROMPT = 1024
#: Requests per hour above which an HTTP API's lower price is worth its missing features.
HTTP_API_FROM = 100_000


@dataclass(frozen=True)
class Decision:
    """One choice or rejection, the reason, and the requirements that drove it."""

    subject: str
    reason: str
    driven_by: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    """The settings the requirements imply."""

    memory_mb: int = 1024
    architecture: str = "arm64"
    timeout_seconds: int = 30
    worker_timeout_seconds: int | None = None
    reserved_concurrency: int | None = None
    provisioned_concurrency: int | None = None
    batch_size: int | None = None
    worker_max_concurrency: int | None = None
    session_ttl_seconds: int | None = None
    approval_timeout_seconds: int | None = None
    execution_timeout_seconds: int | None = None
    api: str = "rest"
    streaming: bool = False
    security: str = "standard"
    webhooks: bool = True
    specialists: int | None = None
    subtasks: int | None = None


@dataclass(frozen=True)
class Recommendation:
    """What to build, why, and with which settings."""

    patterns: tuple[str, ...]
    variant: str  # the main priced unit: see workloads.VARIANTS
    settings: Settings
    #: What one task is made of: (variant, how many per task), e.g. a session start and 10 turns.
    components: tuple[tuple[str, float], ...] = ()
    chosen: list[Decision] = field(default_factory=list)
    rejected: list[Decision] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def context(self) -> dict[str, str]:
        """The ``-c`` values of ``cdk deploy`` (and ``agentrail local``) for this plan."""
        s = self.settings
        values = {"patterns": ",".join(self.patterns)}
        if s.api != "rest":
            values["api"] = s.api
        if s.streaming:
            values["streaming"] = "true"
        if s.security != "standard":
            values["security"] = s.security
        if not s.webhooks:
            values["webhooks"] = "false"
        if s.approval_timeout_seconds is not None:
            values["approval_timeout"] = str(s.approval_timeout_seconds)
        return values

    @property
    def cdk_arguments(self) -> str:
        """``-c key=value`` for each context value."""
        return " ".join(f"-c {key}={value}" for key, value in self.context.items())

    def stanza(self, requirements: Requirements) -> str:
        """The ``app.py`` lines that build this plan's stacks with its settings."""
        return _stanza(self, requirements)


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)


def _choose_patterns(r: Requirements) -> tuple[tuple[str, ...], str, list[str], list[Decision], list[Decision]]:
    chosen: list[Decision] = []
    rejected: list[Decision] = []
    patterns: tuple[str, ...]
    long_work = r.task_duration > API_TIMEOUT or r.latency is Latency.BACKGROUND
    if r.complexity is Complexity.SUPERVISOR:
        chosen.append(
            Decision(
                "hierarchical",
                f"a supervisor plans {r.subtasks} subtasks, runs them in a Step Functions Map, reviews and synthesizes",
                ("complexity", "subtasks"),
            )
        )
        rejected.append(
            Decision(
                "multiagent", "a router hands a request to one specialist; it does not plan, fan out or review", ("complexity",)
            )
        )
        patterns, variant = ("hierarchical",), "research"
    elif r.complexity is Complexity.SPECIALISTS:
        chosen.append(
            Decision(
                "multiagent",
                f"a router hands each request to one of {r.specialists} specialists, each with its own queue, concurrency and DLQ",
                ("complexity", "specialists"),
            )
        )
        rejected.append(
            Decision(
                "hierarchical", "nothing needs planning, fan-out or review: one specialist answers each request", ("complexity",)
            )
        )
        patterns, variant = ("multiagent",), "routed"
    elif r.approvals:
        chosen.append(
            Decision(
                "async",
                "an approval can wait days (approval_wait); a Step Functions task token waits for it without running anything, and the decision resumes the task exactly once",
                ("approvals", "approval_wait"),
            )
        )
        patterns, variant = ("async",), "reviewed_task"
    elif r.state is State.MULTI_STEP or long_work:
        why = (
            f"a task takes {_human(r.task_duration)}, longer than the {LAMBDA_TIMEOUT // 60} minutes one Lambda invocation may run: the long-task workflow checkpoints it between steps"
            if r.task_duration > LAMBDA_TIMEOUT
            else f"a task takes {_human(r.task_duration)}, longer than the {API_TIMEOUT} s an API request may wait"
            if r.task_duration > API_TIMEOUT
            else "the caller does not wait for the answer: a queue absorbs bursts and retries failures"
        )
        chosen.append(Decision("async", why, ("task_duration", "latency", "state")))
        patterns, variant = ("async",), "long_task" if r.task_duration > LAMBDA_TIMEOUT else "task"
    elif r.state is State.SESSION:
        how = " over the WebSocket API, token by token" if r.streaming else ""
        chosen.append(
            Decision(
                "stateful",
                f"a conversation of {r.turns_per_session} turns remembers the earlier ones{how}; sessions live in DynamoDB, so any instance serves any turn",
                ("state", "turns_per_session", "streaming"),
            )
        )
        patterns, variant = ("stateful",), "turn"
    else:
        chosen.append(
            Decision(
                "stateless",
                f"each request stands alone and answers within {_human(r.task_duration)}: one function behind the API, nothing stored",
                ("state", "task_duration", "latency"),
            )
        )
        patterns, variant = ("stateless",), "request"

    if r.state is State.SESSION and patterns[0] != "stateful":
        chosen.append(
            Decision(
                "stateful",
                "the conversation itself stays a session; its actions that need approval or take long run as tasks",
                ("state",),
            )
        )
        patterns = ("stateful", *patterns)
    elif r.approvals and patterns[0] in ("multiagent", "hierarchical"):
        chosen.append(Decision("async", "actions that need approval run as reviewed tasks beside the agents", ("approvals",)))
        patterns = (*patterns, "async")

    names = {"stateless", "stateful", "async", "multiagent", "hierarchical"} - set(patterns)
    reasons = {
        "stateless": (f"state is {r.state.value}: each request would have to carry everything earlier", ("state",))
        if r.state is not State.NONE
        else ("an approval or a long task outlives a request", ("approvals", "task_duration")),
        "stateful": (
            "nothing is remembered between requests: sessions would cost a read and a write per turn for nothing",
            ("state",),
        ),
        "async": (
            "the caller waits for the answer and it comes within an API request's 29 s: a queue would add a submit, a poll and a status write per task",
            ("latency", "task_duration"),
        ),
        "multiagent": (
            "one agent does the work: a router would add a model call and two queue hops per request",
            ("complexity",),
        ),
        "hierarchical": (
            "one agent does the work: a supervisor would add planning, a Map and a review per task",
            ("complexity",),
        ),
    }
    for name in sorted(names):
        if not any(d.subject == name for d in rejected):
            reason, driven = reasons[name]
            rejected.append(Decision(name, reason, driven))
    side: list[str] = []
    if r.state is State.SESSION and variant != "turn":
        # The conversation is the task: its turns, plus the tasks its actions start (approvals are added later).
        side = [] if variant == "reviewed_task" else [variant]
        variant = "turn"
    return patterns, variant, side, chosen, rejected


def _human(seconds: float) -> str:
    for unit, size in (("days", 86_400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size * 2:
            return f"{seconds / size:g} {unit}" if seconds % size == 0 else f"{seconds / size:.1f} {unit}"
    return f"{seconds:g} s"


def recommend(r: Requirements) -> Recommendation:
    """The plan for ``r``: patterns, settings, reasons and rejections (deterministic)."""
    patterns, variant, side, chosen, rejected = _choose_patterns(r)
    warnings: list[str] = []
    concurrency = r.concurrency
    interactive = r.latency is Latency.INTERACTIVE and variant in ("request", "turn")

    # Timeouts: the API's function answers within the request; a worker gets 1.5x the task, up to Lambda's limit.
    per_request = r.task_duration
    timeout = min(API_TIMEOUT, max(10, math.ceil(per_request * 1.5))) if interactive else 30
    worker_timeout = None
    execution_timeout = None
    if variant in ("task", "reviewed_task", "routed"):
        worker_timeout = min(LAMBDA_TIMEOUT, max(60, _round_up(r.task_duration * 1.5, 60)))
    if variant in ("long_task", "research") or (variant == "reviewed_task" and r.task_duration > LAMBDA_TIMEOUT):
        execution_timeout = min(365 * 86_400, _round_up(r.task_duration * 2, 3600))
    if interactive and r.task_duration > API_TIMEOUT:
        warnings.append(
            f"an answer that takes {_human(r.task_duration)} cannot come within an API request (29 s): stream it, or run it as a task"
        )

    reserved = None
    if interactive and concurrency > 100:
        reserved = _round_up(concurrency * 1.2, 10)
    if concurrency > DEFAULT_CONCURRENCY_QUOTA * 0.8:
        needed = _round_up(concurrency * 1.2, 100)
        warnings.append(
            f"peak concurrency {concurrency:,} is near or over Lambda's default quota of {DEFAULT_CONCURRENCY_QUOTA:,} "
            f"per Region: request {needed:,} (Service Quotas, 'Concurrent executions') before launch"
        )
    provisioned = None
    if interactive and r.requests_per_hour >= 3600 and r.ops_experience is not OpsExperience.NONE:
        steady = max(1, math.ceil(r.requests_per_hour / 3600 * r.task_duration))
        provisioned = min(steady, reserved or steady)
        chosen.append(
            Decision(
                f"provisioned concurrency {provisioned}",
                "steady traffic of at least one request a second: keep the average concurrency warm so no caller waits for a cold start",
                ("requests_per_hour", "latency"),
            )
        )

    batch_size = worker_concurrency = None
    if "async" in patterns or variant in ("routed",):
        batch_size = 1 if r.task_duration > 60 else 5
        worker_concurrency = max(2, min(1000, concurrency))
        chosen.append(
            Decision(
                f"queue batch size {batch_size}",
                "tasks over a minute run one per invocation, so a slow one never holds others' visibility timeout"
                if batch_size == 1
                else "short tasks share an invocation's start-up",
                ("task_duration",),
            )
        )

    api = r.api
    if api == "auto":
        api = "http" if r.requests_per_hour >= HTTP_API_FROM and not r.approvals and variant in ("request", "turn") else "rest"
        if api == "http":
            chosen.append(
                Decision(
                    "HTTP API",
                    f"at {r.requests_per_hour:,.0f} requests an hour an HTTP API costs less than a REST API; request validation moves into the function",
                    ("requests_per_hour",),
                )
            )
        else:
            reason = (
                "approvers decide in the operator console, which needs a REST API"
                if r.approvals
                else f"the REST API validates requests at the edge and throttles per client; below {HTTP_API_FROM:,} requests "
                "an hour the HTTP API's lower price saves little"
            )
            rejected.append(Decision("HTTP API", reason, ("approvals",) if r.approvals else ("requests_per_hour",)))
    if r.streaming and variant != "turn":
        warnings.append(
            "streaming serves conversations (state: session); this plan's tasks report through status and webhooks instead"
        )

    session_ttl = int(r.session_idle) if variant == "turn" or "stateful" in patterns else None
    approval_timeout = int(r.approval_wait) if r.approvals else None
    if r.ops_experience is OpsExperience.EXPERIENCED:
        chosen.append(
            Decision(
                "serverless first",
                "containers are an option for this team; the crossover below shows the traffic at which they would cost less",
                ("ops_experience",),
            )
        )
    else:
        rejected.append(
            Decision(
                "always-on containers (Fargate)",
                f"the team's operations experience is '{r.ops_experience.value}': patching, scaling and capacity would be theirs to run",
                ("ops_experience",),
            )
        )

    if r.prompt_caching:
        prefix = r.input_tokens_per_call * r.cached_prompt_share
        chosen.append(
            Decision(
                "prompt caching",
                f"the stable {prefix:,.0f} tokens of each call (system prompt, tool schemas) are written to the model's "
                "cache once per task and read by every later call at the cache-read price",
                ("prompt_caching", "cached_prompt_share", "input_tokens_per_call"),
            )
        )
        if prefix < MIN_CACHED_PROMPT:
            warnings.append(
                f"a cached prefix of {prefix:,.0f} tokens is under the {MIN_CACHED_PROMPT:,} tokens most models need before "
                "they cache a prompt: nothing would be cached"
            )
    if r.batch_lane:
        chosen.append(
            Decision(
                "batch lane",
                "single-step tasks that can wait up to 24 hours run as Bedrock batch inference at the model's batch price",
                ("batch_lane", "latency", "model_calls_per_task"),
            )
        )
    if r.security == "hardened":
        chosen.append(
            Decision(
                "hardened profile",
                "functions in a VPC without internet access, reaching AWS through interface endpoints (billed per hour in "
                "each Availability Zone), and one customer managed key for tables, queues and logs",
                ("security",),
            )
        )
    hardened_tasks = r.security == "hardened" and bool({"async", "multiagent", "hierarchical"} & set(patterns))
    if hardened_tasks:
        chosen.append(
            Decision(
                "webhooks off",
                "task webhooks need a way to the internet, which the hardened profile closes (a NAT gateway would add about "
                "$33 a month): callers poll GET /tasks/{id}",
                ("security",),
            )
        )
    if r.prompt_caching or r.batch_lane:
        warnings.append(
            "prompt caching and the batch lane are priced here as the model's prices give them; agentrail's runtime "
            "does not place cache points or submit batch jobs yet"
        )
    settings = Settings(
        memory_mb=1024,
        architecture=r.architecture,
        timeout_seconds=timeout,
        worker_timeout_seconds=worker_timeout,
        reserved_concurrency=reserved,
        provisioned_concurrency=provisioned,
        batch_size=batch_size,
        worker_max_concurrency=worker_concurrency,
        session_ttl_seconds=session_ttl,
        approval_timeout_seconds=approval_timeout,
        execution_timeout_seconds=execution_timeout,
        api=api,
        streaming=r.streaming and variant == "turn",
        security=r.security,
        webhooks=not hardened_tasks,
        specialists=r.specialists if "multiagent" in patterns else None,
        subtasks=r.subtasks if "hierarchical" in patterns else None,
    )
    turns = float(r.turns_per_session)
    components: list[tuple[str, float]] = [(variant, 1.0)]
    if variant == "turn":
        streamed = [("stream_connect", 1.0), ("stream_turn", turns)]
        components = [("session_start", 1.0), *(streamed if settings.streaming else [("turn", turns)])]
    components.extend((name, 1.0) for name in side)
    if r.approvals and variant != "reviewed_task":
        components.append(("reviewed_task", r.approval_share))
    if variant == "long_task":
        chosen.append(
            Decision(
                "task_type long",
                'submit these tasks with "task_type": "long": the LongTaskWorkflow runs them in slices of 2 model calls, checkpointed in the task table',
                ("task_duration",),
            )
        )
    if variant == "routed":
        chosen.append(
            Decision(
                "your specialists",
                f"replace the demo team with your {r.specialists} SpecialistOptions (name, description, agent_definition, model, max_concurrency)",
                ("specialists",),
            )
        )
    return Recommendation(
        patterns=patterns,
        variant=variant,
        settings=settings,
        components=tuple(components),
        chosen=chosen,
        rejected=rejected,
        warnings=warnings,
    )


_STACKS = {
    "stateless": ("StatelessAgentStack", "Stateless"),
    "stateful": ("StatefulAgentStack", "Stateful"),
    "async": ("AsyncAgentStack", "Async"),
    "multiagent": ("MultiAgentStack", "MultiAgent"),
    "hierarchical": ("HierarchicalStack", "Hierarchical"),
}


def _duration(seconds: int) -> str:
    for unit, size in (("days", 86_400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"Duration.{unit}({seconds // size})"
    return f"Duration.seconds({seconds})"


def _stanza(rec: Recommendation, r: Requirements) -> str:
    s = rec.settings
    imports = {"AgentFunctionOptions"}
    function = [f'model="{r.model}"', f"memory_size={s.memory_mb}", f"timeout={_duration(s.timeout_seconds)}"]
    if s.architecture == "x86_64":
        function.append("architecture=lambda_.Architecture.X86_64")
    if s.reserved_concurrency:
        function.append(f"reserved_concurrent_executions={s.reserved_concurrency}")
    if s.provisioned_concurrency:
        function.append(f"provisioned_concurrency={s.provisioned_concurrency}")
    lines = []
    for pattern in rec.patterns:
        stack, suffix = _STACKS[pattern]
        imports.add(stack)
        arguments = ["function_options=function"]
        if s.security != "standard":
            arguments.append(f'security="{s.security}"')
        if pattern == "stateful":
            imports.add("SessionOptions")
            arguments.append(f"session_options=SessionOptions(ttl={_duration(s.session_ttl_seconds or 86_400)})")
        if pattern == "async":
            imports.add("AsyncOptions")
            options = []
            if s.batch_size:
                options.append(f"batch_size={s.batch_size}")
            if s.worker_max_concurrency:
                options.append(f"worker_max_concurrency={min(s.worker_max_concurrency, 1000)}")
            if not s.webhooks:
                options.append("webhooks=False")
            arguments.append(f"options=AsyncOptions({', '.join(options)})")
            if s.approval_timeout_seconds is not None:
                imports.add("ApprovalOptions")
                arguments.append(f"approval_options=ApprovalOptions(decision_timeout={_duration(s.approval_timeout_seconds)})")
            if s.execution_timeout_seconds is not None and rec.variant == "long_task":
                imports.add("LongTaskWorkflowOptions")
                arguments.append(
                    f"long_task_options=LongTaskWorkflowOptions(execution_timeout={_duration(s.execution_timeout_seconds)})"
                )
        if pattern == "multiagent" and not s.webhooks:
            imports.add("MultiAgentOptions")
            arguments.append("options=MultiAgentOptions(webhooks=False)")
        if pattern == "hierarchical" and s.execution_timeout_seconds is not None:
            imports.add("HierarchicalOptions")
            arguments.append(f"options=HierarchicalOptions(execution_timeout={_duration(s.execution_timeout_seconds)})")
        if pattern == "hierarchical" and not s.webhooks:
            imports.add("AsyncOptions")
            arguments.append("task_options=AsyncOptions(webhooks=False)")
        lines.append(f'{stack}(app, "{r.name.title().replace(" ", "")}-{suffix}", {", ".join(arguments)})')
    header = ["import aws_cdk as cdk", "from aws_cdk import Duration"]
    if s.architecture == "x86_64":
        header.append("from aws_cdk import aws_lambda as lambda_")
    header.append(f"from agentrail_constructs import {', '.join(sorted(imports))}")
    body = ["", "app = cdk.App()", f"function = AgentFunctionOptions({', '.join(function)})", *lines, "app.synth()"]
    return "\n".join(header + body) + "\n"
