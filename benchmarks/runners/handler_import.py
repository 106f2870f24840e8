"""Cold-start init in a fresh process: import a handler (what Lambda's init phase does), report how long it took.

Usage: ``python handler_import.py MODULE:FUNCTION REPORT.json``.
The clock starts on the first line, before any import of this script.
"""

import time

STARTED_NS = time.perf_counter_ns()

import json  # noqa: E402
import sys  # noqa: E402

from lambda_shapes import load_handler  # noqa: E402


def main() -> int:
    spec, report_path = sys.argv[1:3]
    load_handler(spec)
    imported_ns = time.perf_counter_ns()
    loaded = sorted(name for name in sys.modules if name.startswith("aws_lambda_powertools.event_handler"))
    patcher = sys.modules.get("aws_xray_sdk.core.patcher")
    report_fields = {
        "started_ns": STARTED_NS,
        "imported_ns": imported_ns,
        "event_handler_modules": len(loaded),
        # Tracing: whether the X-Ray SDK's core was imported, and what it patched at init (what the function
        # imported of the libraries it traces), then once the first AWS client is made (botocore, when tracing is on).
        "xray_core_loaded": "aws_xray_sdk.core" in sys.modules,
        "xray_patched": sorted(getattr(patcher, "_PATCHED_MODULES", ())),
    }
    import boto3  # after the clock stopped: what the first request that calls AWS would load

    boto3.client("sqs", region_name="us-east-1")
    report_fields["xray_patched_with_a_client"] = sorted(getattr(patcher, "_PATCHED_MODULES", ()))
    with open(report_path, "w") as report:
        json.dump(report_fields, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
