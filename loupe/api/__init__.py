"""The HTTP API: FastAPI app, middleware and routes (thin: the domain lives in the core)."""
