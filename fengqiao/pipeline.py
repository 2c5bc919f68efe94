"""Intake and the router composed in one process, as `fengqiao route` and the triage tools run
them: each post is normalized, triaged and linked by intake's own code, then routed by the
router's (services never import each other; this tool layer sits above both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fengqiao.runtime.clock import utcnow
from fengqiao.services.intake.cli import InputPost, Session
from fengqiao.services.intake.triage import load_triager
from fengqiao.services.intake.triage.model import MODEL_DIR
from fengqiao.services.router.app import build_router
from fengqiao.services.router.cli import Linked, Normalizer, PostIn
from fengqiao.services.router.domain import Router
from fengqiao.services.router.settings import RouterSettings

__all__ = ["route_pipeline"]


def route_pipeline(model_dir: Path = MODEL_DIR) -> tuple[Router, Normalizer]:
    """The router as the service builds it, and a normalizer that links each post to the lines
    before it (one in-memory store for the run), with the triage model in `model_dir`."""
    session = Session(now=utcnow(), triager=load_triager(model_dir))

    async def normalize(post: PostIn, line: int) -> Linked:
        data: dict[str, Any] = post.model_dump(exclude_none=True)
        if not data["channel"].isascii() or not data["channel"].replace("_", "").isalnum():
            data["channel"] = "generic"
        data["channel"] = data["channel"].lower()
        return await session.link(line, InputPost.model_validate(data))

    return build_router(RouterSettings()), normalize
