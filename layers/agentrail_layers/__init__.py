"""Layer sources: ``runtime/python/agentrail_runtime`` (the runtime package) and ``dependencies/requirements.txt`` (its third-party packages)."""
