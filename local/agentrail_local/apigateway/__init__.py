"""Local API Gateway: REST APIs rebuilt from the deployed templates and served on ``127.0.0.1``."""

__all__ = ["auth", "model"]
