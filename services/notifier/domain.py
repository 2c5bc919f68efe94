"""Rendering and the content gate: what may be said in public, and how long it may be."""

from __future__ import annotations

from pathlib import Path

import jinja2

from contracts import ReplyChannel, ReplyRequested
from fengqiao.pii import pii_kinds

TEMPLATES = Path(__file__).parent / "templates"
LIMITS = {ReplyChannel.COMMENT: 140, ReplyChannel.PRIVATE_MESSAGE: 300}


class ContentRefused(ValueError):
    """The reply must not be posted as it is; the message says why."""


class Renderer:
    def __init__(self, directory: Path = TEMPLATES) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # plain text for the platform, not HTML
            keep_trailing_newline=False,
        )

    def render(self, request: ReplyRequested) -> str:
        name = f"{request.template_id}.{request.channel.value}.j2"
        try:
            template = self._env.get_template(name)
            return template.render(**request.variables).strip()
        except jinja2.TemplateNotFound as exc:
            raise ContentRefused(f"no template {name}") from exc
        except jinja2.UndefinedError as exc:
            raise ContentRefused(f"template {name}: {exc.message}") from exc


def gate(text: str, channel: ReplyChannel) -> str:
    """Refuse private data and over-long text; checked just before sending."""
    found = pii_kinds(text)
    if found:
        raise ContentRefused(f"reply contains private data: {', '.join(found)}")
    limit = LIMITS[channel]
    if len(text) > limit:
        raise ContentRefused(f"reply is {len(text)} characters; {channel.value} allows {limit}")
    if not text:
        raise ContentRefused("reply is empty")
    return text
