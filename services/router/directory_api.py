"""The matrix's units as people read them: `GET /directory` names every unit of the directory
(id, name, tier, parent, Weibo handle). The matrix's accounts are public; the route asks only
that the caller be someone (the workbench shows units by name, not by code)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from fengqiao.services.router.directory import Directory


def directory_router(directory: Directory, caller: Any) -> APIRouter:
    """`caller`: the guard's dependency that names the calling person."""
    router = APIRouter(tags=["directory"])

    @router.get("/directory", summary="Every unit of the matrix: id, name, tier, parent")
    async def units(_: Any = caller) -> list[dict[str, str | None]]:
        return [
            {
                "id": u.id,
                "name": u.name,
                "tier": str(u.tier),
                "parent": u.parent,
                "handle": u.handle,
            }
            for u in directory
        ]

    return router
