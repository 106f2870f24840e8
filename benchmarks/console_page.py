"""The operator console's page: what the browser transfers, and its time to interactive in headless Chromium.

Local mode's console (:class:`agentrail_local.apigateway.operator_console.LocalOperatorConsole`) serves the page from
``agentrail_constructs/console_site`` on a server on 127.0.0.1, as ``agentrail local`` does. Headless Chromium
(Debian's, driven by Playwright) opens it until the sign-in view is usable: the sign-in button is enabled, which the
script renders after it has read ``config.json``. Every byte of every response counts (uncompressed: local mode does
not compress, so this is the upper bound CloudFront's compression only lowers), and every request must stay on the
page's own origin: no third-party CDN at run time.

The time's baseline is a blank HTML page from the same kind of server, opened in the same browser in the same run.
The size's is the issue's budget (200 KB uncompressed), not a measurement: the page has no other version to compare.
"""

from __future__ import annotations

import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.report import REPO_ROOT, Figure, Result, Target

__all__ = ["BENCHMARK"]

CHROMIUM = Path("/usr/bin/chromium")
SITE = REPO_ROOT / "constructs" / "agentrail_constructs" / "console_site"
BUDGET_KB = 200.0
SIZE_TARGET = Target(on="ratio", op="<", limit=1.0)
BLANK = b"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>blank</title></head><body><button>ok</button></body></html>"


def _serve(answer: Any) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status, headers, body = answer(self)
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def run(context: RunContext, repetitions: int | None) -> Figure:
    from playwright.sync_api import sync_playwright

    from agentrail_local.apigateway.auth import DEFAULT_PRINCIPALS
    from agentrail_local.apigateway.operator_console import ConsoleRequest, LocalOperatorConsole

    if not CHROMIUM.is_file():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    console = LocalOperatorConsole(SITE, api_url="http://127.0.0.1:9/prod", principals=DEFAULT_PRINCIPALS)

    def console_answer(request: BaseHTTPRequestHandler) -> tuple[int, list[tuple[str, str]], bytes]:
        path, _, query = request.path.partition("?")
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        reply = console.handle(ConsoleRequest(request.command, path, query, dict(request.headers.items()), body))
        return reply.status, reply.headers, reply.body

    console_server, console_url = _serve(console_answer)
    blank_server, blank_url = _serve(lambda _: (200, [("Content-Type", "text/html")], BLANK))
    count = repetitions or 10
    page_ms: list[float] = []
    blank_ms: list[float] = []
    transferred: dict[str, int] = {}
    foreign: set[str] = set()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            for index in range(count + 1):  # the first of each is a warm-up
                context.progress(f"console_page: load {index + 1}/{count + 1}")
                fresh = browser.new_context()  # no cache: every load transfers the whole page
                page = fresh.new_page()
                sizes: dict[str, int] = {}

                def counted(response: Any, sizes: dict[str, int] = sizes) -> None:
                    sizes[response.url] = len(response.body())

                page.on("response", counted)
                page.on("request", lambda request: foreign.add(request.url) if not request.url.startswith(console_url) else None)
                started = time.perf_counter()
                page.goto(f"{console_url}/console/")
                page.wait_for_function(
                    "() => { const b = document.querySelector('[data-testid=signin-submit]'); return b && !b.disabled; }"
                )
                elapsed = (time.perf_counter() - started) * 1000
                fresh.close()
                fresh = browser.new_context()
                blank = fresh.new_page()
                started = time.perf_counter()
                blank.goto(blank_url)
                blank.wait_for_function("() => document.querySelector('button') !== null")
                blank_elapsed = (time.perf_counter() - started) * 1000
                fresh.close()
                if index:
                    page_ms.append(elapsed)
                    blank_ms.append(blank_elapsed)
                    transferred = sizes
            browser.close()
    finally:
        console_server.shutdown()
        blank_server.shutdown()
    if foreign:
        raise RuntimeError(f"the console fetched from another origin: {sorted(foreign)}")
    total_kb = sum(transferred.values()) / 1000
    files = ", ".join(f"{url.rsplit('/', 1)[-1] or 'index'} {size / 1000:.1f} KB" for url, size in sorted(transferred.items()))
    return Figure(
        key="console_page",
        title="Operator console: transfer size and time to interactive (headless Chromium)",
        results=[
            Result(
                "console page, transfer size (uncompressed)",
                total_kb,
                "KB",
                f"the issue's budget of {BUDGET_KB:g} KB uncompressed (not a measurement)",
                BUDGET_KB,
                SIZE_TARGET,
            ),
            Result(
                "console page, time to interactive (median)",
                statistics.median(page_ms),
                "ms",
                "a blank HTML page from the same kind of server, same browser, same run",
                statistics.median(blank_ms),
            ),
        ],
        notes=[
            f"Transferred: {files}; every request stayed on the page's origin (no third-party CDN).",
            f"{count} loads of each after a warm-up, each in a fresh browser context (an empty cache); "
            "interactive: the sign-in button is enabled, after the script has read config.json.",
        ],
    )


BENCHMARK = Benchmark(key="console_page", title="Operator console page", run=run, repetitions=10, quick_repetitions=2)
