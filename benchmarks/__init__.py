"""Speed and size figures of agentrail, each measured as a ratio against a baseline run alongside it.

Run ``python -m benchmarks`` from the repository root (``make bench``). This
package imports nothing at import time: the cold-start baseline handler lives
under it and must not pay for the harness.
"""

__all__: list[str] = []
