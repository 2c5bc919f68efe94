"""`fengqiao normalize`: the normalizer on JSON lines, for a look at what intake makes of posts.

stdin, one JSON object a line: `id, channel, account, author, text, geo?` (`channel` is the
platform, e.g. weibo; `author` a user id or `{id, name?}`; optional `created_at`, ISO 8601 with a
timezone). stdout, one JSON object per good line: `id, text, mentions, hashtags, urls, emoji, pii,
masked_text, lang, is_appeal, duplicate_of, follow_up_of`, and beside them triage's `urgent,
category, review, reasons` and the link's `link_reason` (`duplicate_of` and `follow_up_of` name the
`id` of the earlier line that opened the case this one joins; `fengqiao route` prints the same).
A bad line gives a JSON error line on stderr (`line`, `field`, `error`; never the input's text)
and the exit code is 1 at the end.

The path is the service's: each line becomes the `RawPostReceived` the generic webhook would
publish and goes through `services.intake.handlers.normalize_raw` with an in-memory store of
recent appeals; a line with an `id` seen before is a platform's re-send and gets the same answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, BinaryIO, TextIO

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from fengqiao.contracts import AppealNormalized, RawPostReceived
from fengqiao.services.intake.adapters.recent import InMemoryRecentAppeals
from fengqiao.services.intake.handlers import normalize_raw
from fengqiao.services.intake.linking import Policy
from fengqiao.services.intake.readers import UnreadablePost
from fengqiao.services.intake.triage import Triager

__all__ = ["MAX_LINE_BYTES", "InputPost", "Session", "run"]

MAX_LINE_BYTES = 64 * 1024
PRODUCER = "fengqiao-normalize"
SOURCE = "stdin"
"""The generic source the lines come from, as the webhook would name it (authors `stdin:<id>`)."""


class _Input(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class InputAuthor(_Input):
    id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=128)


def _author(value: Any) -> Any:
    return {"id": value} if isinstance(value, str) else value


class InputGeo(_Input):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)


class InputPost(_Input):
    """One line of input."""

    id: str = Field(min_length=1, max_length=128)
    channel: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    account: str = Field(min_length=1, max_length=64)
    author: Annotated[InputAuthor, BeforeValidator(_author)]
    text: str = Field(min_length=1, max_length=5000)
    geo: InputGeo | None = None
    created_at: AwareDatetime | None = None

    def raw(self, line: int, now: datetime) -> RawPostReceived:
        """The raw post the generic webhook would have published for this line."""
        payload: dict[str, Any] = {
            "id": self.id,
            "platform": self.channel,
            "account": self.account,
            "author": self.author.model_dump(exclude_none=True),
            "text": self.text,
        }
        if self.geo is not None:
            payload["geo"] = self.geo.model_dump()
        if self.created_at is not None:
            payload["created_at"] = self.created_at.isoformat()
        return RawPostReceived(
            occurred_at=now,
            producer=PRODUCER,
            platform=self.channel,
            channel="webhook",
            account=self.account,
            source_id=f"{SOURCE}:{self.id}",
            delivery_id=f"line-{line}",
            payload=payload,
        )


@dataclass
class Session:
    """One run: the store of recent posts and the ids of the lines that opened cases. Shared by
    `fengqiao normalize` and `fengqiao route`, so both link posts alike."""

    now: datetime
    policy: Policy = field(default_factory=Policy)
    triager: Triager | None = None
    store: InMemoryRecentAppeals = field(default_factory=InMemoryRecentAppeals)
    ids_by_case: dict[str, str] = field(default_factory=dict)

    async def link(self, line: int, post: InputPost) -> tuple[AppealNormalized, dict[str, Any]]:
        """The appeal of one line, and the earlier lines it joins ({duplicate_of, follow_up_of}:
        the line that opened its case, or None)."""
        appeal, _ = await normalize_raw(
            post.raw(line, self.now),
            self.store,
            producer=PRODUCER,
            policy=self.policy,
            triager=self.triager,
        )
        opener = self.ids_by_case.get(appeal.case_id) if appeal.follow_up_of else None
        if appeal.is_appeal and not appeal.follow_up_of:
            self.ids_by_case.setdefault(appeal.case_id, post.id)
        links = {"duplicate_of": opener if appeal.duplicate_of else None, "follow_up_of": opener}
        return appeal, links

    async def process(self, line: int, post: InputPost) -> dict[str, Any]:
        appeal, links = await self.link(line, post)
        return self.output(post.id, appeal) | links

    @staticmethod
    def output(post_id: str, appeal: AppealNormalized) -> dict[str, Any]:
        triage = appeal.triage
        return {
            "id": post_id,
            "text": appeal.text,
            "mentions": appeal.mentions,
            "hashtags": appeal.hashtags,
            "urls": appeal.urls,
            "emoji": appeal.emoji,
            "pii": appeal.pii_kinds,
            "masked_text": appeal.masked_text,
            "lang": appeal.lang,
            "is_appeal": appeal.is_appeal,
            "duplicate_of": None,
            "follow_up_of": None,
            "urgent": triage.urgent if triage else False,
            "category": triage.category if triage else None,
            "review": triage.review if triage else [],
            "reasons": triage.reasons if triage else [],
            "link_reason": triage.link_reason if triage else None,
        }


def run(
    stdin: BinaryIO,
    stdout: TextIO,
    stderr: TextIO,
    *,
    now: datetime,
    max_line_bytes: int = MAX_LINE_BYTES,
    policy: Policy | None = None,
) -> int:
    """Normalize the JSON lines of `stdin` onto `stdout`; 1 if any line was refused, else 0."""
    return asyncio.run(_run(stdin, stdout, stderr, now, max_line_bytes, policy or Policy()))


async def _run(
    stdin: BinaryIO,
    stdout: TextIO,
    stderr: TextIO,
    now: datetime,
    max_line_bytes: int,
    policy: Policy,
) -> int:
    session = Session(now=now, policy=policy)
    failed = False
    for number, line in _lines(stdin, max_line_bytes):
        if line is None:
            _error(stderr, number, None, f"line longer than {max_line_bytes} bytes")
            failed = True
            continue
        if not line.strip():
            continue
        post = _parse(stderr, number, line)
        if post is None:
            failed = True
            continue
        try:
            result = await session.process(number, post)
        except (UnreadablePost, ValidationError, ValueError) as exc:
            _error(stderr, number, None, _describe(exc))
            failed = True
            continue
        stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    stdout.flush()
    return 1 if failed else 0


def _lines(stream: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) per line; None for a line over `limit`, which is skipped unread."""
    number = 0
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not (len(line) == limit + 1 and line.endswith(b"\n")):
            while line and not line.endswith(b"\n"):  # drop the rest of it, a chunk at a time
                line = stream.readline(64 * 1024)
            yield number, None
            continue
        yield number, line


def _parse(stderr: TextIO, number: int, line: bytes) -> InputPost | None:
    try:
        data = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        _error(stderr, number, None, "not UTF-8")
        return None
    except (ValueError, RecursionError) as exc:
        _error(stderr, number, None, f"not JSON: {type(exc).__name__}")
        return None
    if not isinstance(data, dict):
        _error(stderr, number, None, "not a JSON object")
        return None
    try:
        return InputPost.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_input=False, include_url=False):
            _error(stderr, number, _field(err["loc"]), err["msg"])
        return None


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False))
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def _error(stderr: TextIO, line: int, field_name: str | None, message: str) -> None:
    stderr.write(
        json.dumps({"line": line, "field": field_name, "error": message}, ensure_ascii=False) + "\n"
    )
