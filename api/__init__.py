"""The FastAPI service (to come: see the service issue)."""
