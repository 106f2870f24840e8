"""Layer sources: ``runtime/python/agentrail`` (the runtime package) and ``dependencies/requirements.txt`` (its third-party packages)."""
