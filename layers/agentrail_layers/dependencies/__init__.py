"""Data only: the dependencies Lambda layer's ``requirements.in`` (top-level pins) and ``requirements.lock`` (every package, hashed)."""
