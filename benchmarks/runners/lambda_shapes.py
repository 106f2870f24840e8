"""What the Lambda runtime hands a handler: the event (a JSON file here) and a context object.

Imported by the runner scripts beside it (their folder is ``sys.path[0]``).
Deliberately plain: it imports only ``json``, which both handlers import
anyway, so the harness adds next to nothing to either side of a cold start.
"""

import json

__all__ = ["LambdaContext", "load_event", "load_handler"]


class LambdaContext:
    """The attributes of the Lambda context that Powertools reads."""

    function_name = "agentrail-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:agentrail-bench:live"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/agentrail-bench"
    log_stream_name = "2026/11/28/[$LATEST]0000"

    def get_remaining_time_in_millis(self):
        return 30_000


def load_handler(spec):
    """Import ``module:function``, which is what the Lambda runtime's init phase does.

    ``__import__`` rather than ``importlib.import_module``: it goes through the
    interpreter's import machinery, so ``-X importtime`` reports the handler
    module itself, not only what it imports.
    """
    module_name, _, attribute = spec.partition(":")
    module = __import__(module_name, fromlist=[attribute])
    return getattr(module, attribute)


def load_event(path):
    with open(path) as source:
        return json.load(source)
