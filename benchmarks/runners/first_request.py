"""Cold start in a fresh process: import a handler, serve its first request, report the timings.

Usage: ``python first_request.py MODULE:FUNCTION EVENT.json REPORT.json``.
The clock starts on the first line, before any import of this script.
"""

import time

STARTED_NS = time.perf_counter_ns()

import json  # noqa: E402
import sys  # noqa: E402

from lambda_shapes import LambdaContext, load_event, load_handler  # noqa: E402


def main() -> int:
    spec, event_path, report_path = sys.argv[1:4]
    handler = load_handler(spec)
    imported_ns = time.perf_counter_ns()
    response = handler(load_event(event_path), LambdaContext())
    responded_ns = time.perf_counter_ns()
    with open(report_path, "w") as report:
        json.dump(
            {
                "started_ns": STARTED_NS,
                "imported_ns": imported_ns,
                "responded_ns": responded_ns,
                "status_code": response.get("statusCode"),
                "body": response.get("body"),
            },
            report,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
