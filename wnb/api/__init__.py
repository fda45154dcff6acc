"""The HTTP API (FastAPI): ingestion, the worklist and people's actions, behind API keys and passwords."""

from wnb.api.app import create_app, serve

__all__ = ["create_app", "serve"]
