"""Layer sources: ``runtime/python/agentrail_runtime`` (the runtime package) and ``dependencies/requirements.lock`` (its third-party packages)."""
