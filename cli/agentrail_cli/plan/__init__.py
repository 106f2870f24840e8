"""``agentrail plan``: requirements to a pattern, its settings, a cost per 1,000 tasks and per month, and crossovers."""

__all__: list[str] = []
