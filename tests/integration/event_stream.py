"""Real AWS event-stream bytes for a botocore client, through a ``before-send`` hook.

botocore's Stubber rejects event-stream responses and moto has no ``converse_stream``, so these tests answer the
HTTP request themselves: the hook returns an ``AWSResponse`` whose raw body yields event-stream messages encoded
here (prelude with its CRC, headers, JSON payload, message CRC), which botocore's own ``EventStreamBuffer`` then
decodes and its parser reads, exactly as it would Bedrock's bytes.
"""

from __future__ import annotations

import binascii
import json
import struct
from collections.abc import Callable, Iterator
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict

_STRING = 7  # header value type: a UTF-8 string with a 2-byte length


def _header(name: str, value: str) -> bytes:
    encoded_name, encoded_value = name.encode(), value.encode()
    return struct.pack("!B", len(encoded_name)) + encoded_name + struct.pack("!BH", _STRING, len(encoded_value)) + encoded_value


def message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: total and headers length, prelude CRC32, headers, payload, message CRC32."""
    encoded_headers = b"".join(_header(name, value) for name, value in headers.items())
    total = 4 + 4 + 4 + len(encoded_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded_headers))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + encoded_headers + payload
    return body + struct.pack("!I", binascii.crc32(body) & 0xFFFFFFFF)


def event(event_type: str, body: dict[str, Any]) -> bytes:
    """An event message, e.g. ``event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})``."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return message(headers, json.dumps(body).encode())


def exception(exception_type: str, text: str) -> bytes:
    """An exception message inside the stream, e.g. ``exception("throttlingException", "Too many requests")``."""
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return message(headers, json.dumps({"message": text}).encode())


def text_turn(*pieces: str, stop_reason: str = "end_turn", usage: tuple[int, int] = (410, 12), index: int = 0) -> list[bytes]:
    """The events of a ConverseStream answer whose text arrives in ``pieces``."""
    return [
        event("messageStart", {"role": "assistant"}),
        *[event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}) for piece in pieces],
        event("contentBlockStop", {"contentBlockIndex": index}),
        event("messageStop", {"stopReason": stop_reason}),
        metadata(*usage),
    ]


def metadata(input_tokens: int, output_tokens: int) -> bytes:
    usage = {"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens}
    return event("metadata", {"usage": usage, "metrics": {"latencyMs": 640}})


class RawStream:
    """The raw body of an HTTP response, handed out chunk by chunk (what botocore reads an event stream from);
    ``before_chunk(i)`` runs before chunk ``i`` is handed out."""

    def __init__(self, chunks: list[bytes], before_chunk: Callable[[int], None] | None = None) -> None:
        self.chunks = chunks
        self.before_chunk = before_chunk
        self.closed = False

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if self.before_chunk is not None:
                self.before_chunk(index)
            yield chunk

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        return b"".join(self.chunks)

    def close(self) -> None:
        self.closed = True


class StreamEndpoint:
    """Answers each ConverseStream request of a client with the next queued reply, and keeps the request bodies.

    A reply is a list of event-stream messages (sent as a 200 stream, each message its own chunk) or an
    ``(status, error_code, message)`` tuple (an error before the stream begins).
    """

    def __init__(self, client: Any) -> None:
        self.replies: list[list[bytes] | tuple[int, str, str]] = []
        self.requests: list[dict[str, Any]] = []
        self.before_chunk: Callable[[int], None] | None = None
        self.streams: list[RawStream] = []
        client.meta.events.register("before-send.bedrock-runtime.ConverseStream", self._answer)

    def queue(self, *replies: list[bytes] | tuple[int, str, str]) -> None:
        self.replies.extend(replies)

    def _answer(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        self.requests.append(json.loads(request.body or b"{}"))
        reply = self.replies.pop(0)
        if isinstance(reply, tuple):
            status, code, text = reply
            headers = HeadersDict({"content-type": "application/json", "x-amzn-errortype": f"{code}:http://internal.amazon.com/"})
            body = json.dumps({"message": text}).encode()
            return AWSResponse(request.url, status, headers, RawStream([body]))  # type: ignore[arg-type]
        headers = HeadersDict({"content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": "req-1"})
        self.streams.append(RawStream(reply, self.before_chunk))
        return AWSResponse(request.url, 200, headers, self.streams[-1])  # type: ignore[arg-type]
