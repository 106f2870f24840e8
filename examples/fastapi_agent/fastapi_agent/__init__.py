"""A FastAPI agent on agentrail: the same code runs under uvicorn, in local mode and on Lambda (AsgiAgent)."""
