"""The HTTP API for backends (SPEC section 12): FastAPI in front of the same workflows, database
and rules as `starter.py`. `python api.py` serves it; `create_app` builds it (tests, uvicorn)."""
