"""Rendering: the templates, the language of a request, the error pages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from fengqiao.services.workbench import codes, domain
from fengqiao.services.workbench.labels import LABELS, LANGS
from fengqiao.services.workbench.nav import links_for

LANG_COOKIE = "fengqiao_lang"
LOCAL = domain.LOCAL
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "j2"]),
)


def local_time(value: str | None) -> str:
    at = domain.parse_at(value)
    return at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M") if at else "—"


TEMPLATES.filters["local"] = local_time


def lang_of(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return asked if asked in LANGS else "zh"


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = lang_of(request)
    words = LABELS[lang]
    now = dt.datetime.now(dt.UTC)

    def left(due: str | None, working_hours: object = None) -> str:
        """The working time left when the tracker says it (office hours), else the clock's."""
        if isinstance(working_hours, (int, float)):
            return domain.describe_working_hours(working_hours, lang)
        hours = domain.remaining(due, now)
        return domain.describe_hours(hours[0], lang) if hours else ""

    context.setdefault("csrf", getattr(request.state, "csrf", ""))
    who = getattr(request.state, "identity", None)
    html = TEMPLATES.get_template(template).render(
        t=words, lang=lang, other="en" if lang == "zh" else "zh", left=left,
        path=request.url.path, who=who, nav=links_for(who),
        named=lambda kind, code: codes.name(kind, code, lang),
        unit=getattr(request.state, "unit_names", None) or (lambda unit_id: unit_id or "—"),
        **context,
    )  # fmt: skip
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


def error_page(request: Request, status: int, key: str, detail: str = "") -> HTMLResponse:
    message = LABELS[lang_of(request)].get(key, key)
    return render(request, "error.html.j2", status, message=message, detail=detail)
