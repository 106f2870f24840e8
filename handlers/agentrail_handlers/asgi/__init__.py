"""ASGI agent: a FastAPI or Starlette app (``AGENT_ASGI_APP``) behind API Gateway, through mangum."""
