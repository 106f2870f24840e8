"""``agentrail chat``: a terminal client of the streaming WebSocket API that prints an answer as it arrives.

It takes a connect ticket from the REST API (``POST /sessions/{id}/stream-ticket``), connects to the stack's
``StreamUrl``, sends each message with ``sendMessage`` and prints the turn's events as they come: tool calls and their
outcomes on their own lines, tokens as they stream, then the usage and cost. When the socket drops, it reconnects
with a new ticket and ``resume``s after the last event it printed, so nothing is printed twice or missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Iterable
from typing import Any, TextIO
from urllib.parse import urlencode

from agentrail_cli.commands import _target, _target_arguments
from agentrail_cli.errors import TargetError

#: Seconds one wait on the socket may take before the chat gives up on a turn.
TURN_TIMEOUT_SECONDS = 900.0
#: Reconnects one turn may take.
MAX_RECONNECTS = 3


def add_chat_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chat = commands.add_parser(
        "chat",
        help="talk to a stateful agent over its streaming WebSocket API, the answer printed as it arrives",
        description="Each MESSAGE is one turn (none: read one message per line from standard input).",
    )
    chat.add_argument("messages", nargs="*", metavar="MESSAGE")
    chat.add_argument("--session", help="continue this session (default: a new one, whose id is printed)")
    chat.add_argument("--model", help="a model the agent allows (default: the agent's)")
    _target_arguments(chat)
    chat.set_defaults(run=run_chat)


class TurnFailed(Exception):
    """The turn ended with an ``error`` event, or was refused."""


class ChatPrinter:
    """Prints one turn's events: tokens as they stream, tool calls and outcomes on lines of their own."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.mid_line = False

    def event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "token":
            self._write(event["text"])
        elif kind == "tool_call":
            self._line(f"→ {event['name']}({json.dumps(event.get('arguments', {}), sort_keys=True)})")
        elif kind == "tool_result":
            self._line(f"← {event['name']}: {event['outcome']}")
        elif kind == "final":
            if event.get("replaced") and event.get("answer"):
                self._line(event["answer"])  # what was streamed is not the stored answer (a guard changed it)
            usage = event.get("usage") or {}
            cost = event.get("cost_usd")
            tokens = f"{usage.get('input_tokens', 0)} in, {usage.get('output_tokens', 0)} out"
            self._line(f"[{event['status']}: {event['steps']} steps, {tokens}{'' if cost is None else f', ${cost:.6f}'}]")

    def end_line(self) -> None:
        if self.mid_line:
            self._write("\n")

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        self.mid_line = not text.endswith("\n")

    def _line(self, text: str) -> None:
        self.end_line()
        self._write(text + "\n")


class StreamChat:
    """One session over the streaming API.

    Parameters
    ----------
    api:
        The REST API's client (creates the session and issues the connect tickets).
    stream_url:
        The stack's ``StreamUrl``.
    session_id:
        The session to continue. Default: a new one.
    """

    def __init__(self, api: Any, stream_url: str, *, session_id: str | None = None, model: str | None = None) -> None:
        self.api = api
        self.stream_url = stream_url
        self.session_id = session_id
        self.model = model
        self.last_event_id = 0
        self.socket: Any = None

    def open(self) -> str:
        """Create the session if there is none, and connect; the session's id."""
        if self.session_id is None:
            created = self.api.request("POST", "/sessions", json={})
            if created.status_code != 201:
                raise TargetError(f"POST /sessions answered {created.status_code}: {created.text[:200]}")
            self.session_id = str(created.json()["session_id"])
        self._connect()
        return self.session_id

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None

    def say(self, text: str, printer: ChatPrinter) -> None:
        """Send one message and print its turn until its ``final`` event.

        Raises
        ------
        TurnFailed
            The message was refused, or its turn ended with an error.
        """
        from websockets.exceptions import ConnectionClosed

        # Named here, not by the reply: the turn's first events can arrive before ``accepted``.
        message_id = uuid.uuid4().hex
        frame: dict[str, Any] = {
            "action": "sendMessage",
            "session_id": self.session_id,
            "text": text,
            "message_id": message_id,
        }
        if self.model:
            frame["model"] = self.model
        self.socket.send(json.dumps(frame))
        reconnects = 0
        while True:
            try:
                reply = json.loads(self.socket.recv(timeout=TURN_TIMEOUT_SECONDS))
            except ConnectionClosed:
                reconnects += 1
                if reconnects > MAX_RECONNECTS:
                    raise TurnFailed("the connection closed, and reconnecting failed") from None
                self._connect()
                self.socket.send(
                    json.dumps({"action": "resume", "session_id": self.session_id, "last_event_id": self.last_event_id})
                )
                continue
            except TimeoutError:
                raise TurnFailed(f"no event for {TURN_TIMEOUT_SECONDS:.0f} s") from None
            if "event_id" not in reply:  # a reply to a frame of ours: accepted, resumed or error
                if reply.get("type") == "error":
                    raise TurnFailed(f"{reply['code']}: {reply['message']}")
                continue
            if reply["event_id"] <= self.last_event_id:
                continue  # already printed (a resume can overlap what arrived live)
            self.last_event_id = reply["event_id"]
            if reply.get("message_id") != message_id:
                continue  # another message's turn on this session
            if reply.get("type") == "error":
                raise TurnFailed(f"{reply['code']}: {reply['message']}")
            printer.event(reply)
            if reply.get("type") == "final":
                return

    def _connect(self) -> None:
        from websockets.sync.client import connect

        self.close()
        issued = self.api.request("POST", f"/sessions/{self.session_id}/stream-ticket")
        if issued.status_code != 201:
            raise TargetError(
                f"POST /sessions/{{id}}/stream-ticket answered {issued.status_code}: "
                "does the stack stream with connect tickets (-c streaming=true)?"
            )
        query = urlencode({"ticket": issued.json()["ticket"]})
        self.socket = connect(f"{self.stream_url}?{query}", open_timeout=30)


def _lines(messages: list[str], stdin: TextIO) -> Iterable[str]:
    if messages:
        yield from messages
        return
    for line in stdin:
        if line.strip():
            yield line.strip()


def run_chat(args: argparse.Namespace, out: TextIO = sys.stdout, stdin: TextIO = sys.stdin) -> int:
    target = _target(args, pattern="stateful")
    chat = StreamChat(target.api(), target.output("StreamUrl"), session_id=args.session, model=args.model)
    printer = ChatPrinter(out)
    session_id = chat.open()
    print(f"session {session_id}", file=out)
    try:
        for text in _lines(args.messages, stdin):
            try:
                chat.say(text, printer)
            except TurnFailed as error:
                printer.end_line()
                print(f"agentrail chat: {error}", file=sys.stderr)
                return 1
    finally:
        chat.close()
    return 0


__all__ = ["ChatPrinter", "StreamChat", "TurnFailed", "add_chat_command", "run_chat"]
