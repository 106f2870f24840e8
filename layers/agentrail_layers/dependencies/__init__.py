"""Data only: ``requirements.txt``, the pinned packages of the dependencies Lambda layer."""
