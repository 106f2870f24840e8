"""Data only: the optional ASGI Lambda layer's ``requirements.in`` (mangum, FastAPI) and ``requirements.lock`` (every
package the dependencies layer does not already ship, hashed)."""
