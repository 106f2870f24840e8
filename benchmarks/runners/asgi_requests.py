"""Warm requests of one route through the ASGI handler, through mangum over a bare ASGI app, and through a plain handler.

Usage: ``python asgi_requests.py EVENT.json EXAMPLE_DIR COUNT WARMUP BLOCK REPORT.json``.

Three handlers in one process, each wrapped by the runtime's ``observed`` (Lambda context, correlation id, X-Ray
segment, metrics flush), answer the same ``GET /health`` event with the same JSON body:

- ``asgi``: ``agentrail_handlers.asgi.app:handler``, mangum over the FastAPI example (``fastapi_agent.main:app``);
- ``mangum``: mangum over the same correlation wrapping and a bare ASGI app that sends the body;
- ``plain``: a function that returns the proxy response itself (the baseline).

Blocks alternate, as in ``warm_requests.py``.
"""

import copy
import gc
import json
import os
import sys
import time

from alternation import in_alternating_blocks
from lambda_shapes import LambdaContext, load_event, load_handler


def main() -> int:
    event_path, example_dir, count, warmup, block, report_path = sys.argv[1:]
    count, warmup, block = int(count), int(warmup), int(block)
    os.environ["AGENT_ASGI_APP"] = "fastapi_agent.main:app"
    sys.path.insert(0, example_dir)
    asgi = load_handler("agentrail_handlers.asgi.app:handler")

    from aws_lambda_powertools.logging import correlation_paths
    from fastapi_agent.main import service  # the example's agent, built by the import above

    from agentrail_runtime.asgi import AsgiSettings, asgi_handler
    from agentrail_runtime.observability import observed

    body = json.dumps({"status": "ok", "agent_version": service.version}).encode()

    async def bare_app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    adapted = asgi_handler(bare_app, AsgiSettings(asgi_app="bench:app", version=service.version))

    @observed(correlation_paths.API_GATEWAY_REST)
    def mangum(event, context):
        return adapted(event, context)

    @observed(correlation_paths.API_GATEWAY_REST)
    def plain(event, context):
        headers = {"content-type": "application/json", "x-correlation-id": event["requestContext"]["requestId"]}
        return {"statusCode": 200, "headers": headers, "body": body.decode(), "isBase64Encoded": False}

    handlers = {"asgi": asgi, "mangum": mangum, "plain": plain}
    event = load_event(event_path)
    context = LambdaContext()
    answers = {}

    def invoke(name, samples):
        request = copy.deepcopy(event)
        started = time.perf_counter_ns()
        response = handlers[name](request, context)
        elapsed = time.perf_counter_ns() - started
        if response.get("statusCode") != 200:
            raise SystemExit(f"{name} answered {response.get('statusCode')}: {response.get('body')}")
        answers[name] = json.loads(response["body"])
        if samples is not None:
            samples.append(elapsed)

    for name in handlers:
        for _ in range(warmup):
            invoke(name, None)
    if len({json.dumps(answer, sort_keys=True) for answer in answers.values()}) != 1:
        raise SystemExit(f"the handlers answer differently: {answers}")
    gc.collect()

    samples = {name: [] for name in handlers}
    in_alternating_blocks(list(handlers), count, block, lambda name, _: invoke(name, samples[name]))

    with open(report_path, "w") as report:
        json.dump({"samples_ns": samples, "warmup": warmup, "block": block}, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
