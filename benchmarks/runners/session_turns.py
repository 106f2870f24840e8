"""Session turns in one process against moto: DynamoDB calls per turn, and warm turn time against the stateless agent.

Usage: ``python session_turns.py COUNT WARMUP BLOCK REPORT.json``.

Moto runs in process (``mock_aws``), so a DynamoDB call costs what botocore and
moto cost, not a network round trip. Every DynamoDB call of the function is
counted by botocore event hooks registered on the default session before the
handler builds its client; the time from ``provide-client-params`` to
``after-call`` of each call is summed per turn, in wall time and in the thread's CPU time.

Phases: (1) calls of turns 11-15 of a session; (2) COUNT timed turns of
sessions whose window is full (20 turns), alternating in blocks with COUNT
stateless invocations of the same message and COUNT "cold" session turns, for
which the function's memo of parsed turns and compact history is emptied first
(as on an instance that did not serve the session's previous turns); (3) the
session's history cloned to 1,000 turns, then calls of five more turns. Each
phase also takes one turn whose tool changes the state document.
"""

import copy
import gc
import json
import os
import sys
import time
from pathlib import Path

from alternation import in_alternating_blocks
from aws_calls import AwsCalls
from lambda_shapes import LambdaContext, load_event, load_handler
from moto_account import start_moto

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
TABLE = "agentrail-bench-sessions"
MESSAGE = "Calculate (12 + 30) * 2 and convert 10 km to mi"
STATE_MESSAGE = "Please use {units} units"
WINDOW_TURNS = 20
TIMED_TURNS_PER_SESSION = 25
MEASURED_TURNS = 5
LONG_HISTORY = 1_000

os.environ.update(
    {
        "AGENT_SESSION_TABLE": TABLE,
        "AGENT_SESSION_WINDOW_TURNS": str(WINDOW_TURNS),
        # Both handlers serve the demo tools plus one that writes the session state (see ``definition`` below).
        "AGENT_DEFINITION": "__main__:definition",
    }
)


def _definition():
    # Called once, below, after the environment above is set; the imports stay local to what they build.
    from agentrail_runtime.agent.context import ToolContext
    from agentrail_runtime.agent.definition import AgentDefinition
    from agentrail_runtime.agent.tools import tool
    from agentrail_runtime.demo import definition as demo

    @tool(local_patterns=[r"\buse (?P<units>metric|imperial) units\b"])
    def set_units(units: str, context: ToolContext) -> str:
        """Remember which units the user prefers."""
        context.state["units"] = units
        return f"units set to {units}"

    return AgentDefinition(name=demo.name, system_prompt=demo.system_prompt, tools=(*demo.tools, set_units))


definition = _definition()


class DynamoCalls(AwsCalls):
    """DynamoDB calls by operation, the time inside them, and what each transaction writes, while ``on``."""

    def __init__(self) -> None:
        super().__init__(service="dynamodb")

    def reset(self) -> None:
        super().reset()
        #: Per TransactWriteItems call, the kind of each item it writes: ``turn``, ``~state``, ``~meta``.
        self.transactions: list[list[str]] = []
        #: The thread's CPU time inside the calls (``ns`` is their wall time).
        self.cpu_ns = 0
        self._cpu_started: list[int] = []

    def _start(self, **kwargs) -> None:
        super()._start(**kwargs)
        if self.on:
            self._cpu_started.append(time.thread_time_ns())

    def _stop(self, **kwargs) -> None:
        if self.on and self._cpu_started:
            self.cpu_ns += time.thread_time_ns() - self._cpu_started.pop()
        super()._stop(**kwargs)

    def register(self, events) -> None:
        super().register(events)
        events.register("before-parameter-build.dynamodb.TransactWriteItems", self._transaction)

    def _transaction(self, params, **_) -> None:
        if not self.on:
            return
        kinds = []
        for entry in params["TransactItems"]:
            ((_, op),) = entry.items()
            key = op.get("Item") or op.get("Key")
            kinds.append(key["sk"]["S"].split("#")[0])
        self.transactions.append(kinds)

    def turn(self) -> dict:
        """What the calls since the last ``reset`` were: ``{"operations": {name: count}, "transactions": [...]}``."""
        return {"operations": dict(self.counts), "transactions": self.transactions}


def main() -> int:
    count, warmup, block, report_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    # Imported once moto is running: boto3's default session must send every call to moto.
    import boto3

    calls = DynamoCalls()
    mock = start_moto(calls)
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    stateless = load_handler("agentrail_handlers.stateless.app:handler")
    sessions = load_handler("agentrail_handlers.sessions.app:handler")
    # The handler's session agent and the history memo, imported by the handler just now: the cold side empties
    # the memos of parsed turns and compact history before each turn.
    from agentrail_handlers.sessions.app import sessions as session_agent
    from agentrail_runtime.sessions.store import forget_compact_history

    context = LambdaContext()
    invoke_event = load_event(str(EVENTS / "stateless" / "invoke.json"))
    create_event = load_event(str(EVENTS / "sessions" / "create-session.json"))
    message_event = load_event(str(EVENTS / "sessions" / "send-message.json"))
    delete_event = load_event(str(EVENTS / "sessions" / "delete-session.json"))
    get_event = load_event(str(EVENTS / "sessions" / "get-session.json"))
    template_id = message_event["pathParameters"]["session_id"]

    def aimed(event: dict, session_id: str, body: dict | None = None) -> dict:
        request = copy.deepcopy(event)
        request["path"] = request["path"].replace(template_id, session_id)
        request["pathParameters"] = {"session_id": session_id}
        if body is not None:
            request["body"] = json.dumps(body)
        return request

    def ok(response: dict, status: int = 200) -> dict:
        if response.get("statusCode") != status:
            raise SystemExit(f"answered {response.get('statusCode')}: {response.get('body')}")
        return response

    def create() -> str:
        return json.loads(ok(sessions(copy.deepcopy(create_event), context), 201)["body"])["session_id"]

    def turn(session_id: str, message: str = MESSAGE) -> None:
        ok(sessions(aimed(message_event, session_id, {"message": message}), context))

    def measured_turns(session_id: str, state_units: str) -> dict:
        per_turn = []
        for _ in range(MEASURED_TURNS):
            calls.reset()
            calls.on = True
            turn(session_id)
            calls.on = False
            per_turn.append(calls.turn())
        calls.reset()
        calls.on = True
        turn(session_id, STATE_MESSAGE.format(units=state_units))
        calls.on = False
        state_turn = calls.turn()
        history = json.loads(ok(sessions(aimed(get_event, session_id), context))["body"])["turns"]
        return {"history_before": history - MEASURED_TURNS - 1, "turns": per_turn, "state_turn": state_turn}

    # (1) calls at 10 turns of history
    first = create()
    for _ in range(10):
        turn(first)
    at_10 = measured_turns(first, "imperial")  # the session was created with metric units

    # (2) warm turns against the stateless agent
    def fresh_session() -> str:
        session_id = create()
        for _ in range(WINDOW_TURNS):
            turn(session_id)
        return session_id

    current = {"id": fresh_session(), "timed": 0}

    # Wall time, and the thread's CPU time (which a busy neighbour's preemptions do not inflate), per side.
    samples = {"sessions": [], "stateless": [], "sessions_cold": []}
    cpu = {"sessions": [], "stateless": [], "sessions_cold": []}
    dynamo_ns = {"sessions": [], "sessions_cold": []}
    dynamo_cpu_ns = {"sessions": [], "sessions_cold": []}

    def session_turn(name: str | None, *, cold: bool = False) -> None:
        if current["timed"] >= TIMED_TURNS_PER_SESSION:
            ok(sessions(aimed(delete_event, current["id"]), context), 204)  # keeps moto's table small
            current.update(id=fresh_session(), timed=0)
        request = aimed(message_event, current["id"], {"message": MESSAGE})
        if cold:
            session_agent.store.parsed.clear()
            forget_compact_history()
        calls.reset()
        calls.on = True
        started, cpu_started = time.perf_counter_ns(), time.thread_time_ns()
        ok(sessions(request, context))
        elapsed, cpu_elapsed = time.perf_counter_ns() - started, time.thread_time_ns() - cpu_started
        calls.on = False
        current["timed"] += 1
        if name is not None:
            samples[name].append(elapsed)
            cpu[name].append(cpu_elapsed)
            dynamo_ns[name].append(calls.ns)
            dynamo_cpu_ns[name].append(calls.cpu_ns)

    def stateless_turn(name: str | None) -> None:
        request = copy.deepcopy(invoke_event)
        started, cpu_started = time.perf_counter_ns(), time.thread_time_ns()
        ok(stateless(request, context))
        elapsed, cpu_elapsed = time.perf_counter_ns() - started, time.thread_time_ns() - cpu_started
        if name is not None:
            samples[name].append(elapsed)
            cpu[name].append(cpu_elapsed)

    for _ in range(warmup):
        session_turn(None)
        session_turn(None, cold=True)
        stateless_turn(None)
    gc.collect()
    runs = {
        "sessions": session_turn,
        "stateless": stateless_turn,
        "sessions_cold": lambda name: session_turn(name, cold=True),
    }
    in_alternating_blocks(list(runs), count, block, lambda name, _: runs[name](name))

    # (3) calls at 1,000 turns of history: clone the first session's newest turn item
    newest = client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :turn)",
        ExpressionAttributeValues={":pk": {"S": first}, ":turn": {"S": "turn#"}},
        ScanIndexForward=False,
        Limit=1,
    )["Items"][0]
    done = int(newest["sk"]["S"].removeprefix("turn#"))
    clones = [dict(newest, sk={"S": f"turn#{n:010d}"}) for n in range(done + 1, LONG_HISTORY + 1)]
    for start in range(0, len(clones), 25):
        batch = [{"PutRequest": {"Item": item}} for item in clones[start : start + 25]]
        client.batch_write_item(RequestItems={TABLE: batch})
    client.update_item(
        TableName=TABLE,
        Key={"pk": {"S": first}, "sk": {"S": "~meta"}},
        UpdateExpression="SET turns = :n",
        ExpressionAttributeValues={":n": {"N": str(LONG_HISTORY)}},
    )
    at_1000 = measured_turns(first, "metric")

    with open(report_path, "w") as report:
        json.dump(
            {
                "samples_ns": samples,
                "dynamo_ns": dynamo_ns,
                "cpu_ns": cpu,
                "dynamo_cpu_ns": dynamo_cpu_ns,
                "calls": {"10": at_10, "1000": at_1000},
                "warmup": warmup,
                "block": block,
                "window_turns": WINDOW_TURNS,
                "timed_turns_per_session": TIMED_TURNS_PER_SESSION,
            },
            report,
        )
    mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
