"""`fengqiao ops replies list|retry`: replies that failed for a reason that can pass, and sending
them again once it has (a token set, a platform configured, the platform back).

The notifier dead-letters such a reply on `replies.requested.dlq` (`NotSendable`: not sendable
as configured; `RetriesExhausted`: retries ran out) and, when its dead letter is replayed, tries it
once more (`services/notifier/reconcile.py`). These commands are that path under the name an
operator looks for: `list` shows the failed replies by reason, `retry` replays the chosen ones'
dead letters (`fengqiao.ops.dlq.replay`). Each retry is claimed once, by an insert against a
unique `_id` (the one compare-and-set FerretDB applies atomically): here `replay:<dead letter>`
in `fengqiao_ops.dlq_actions`, and in the notifier `<reply>@replay@<dead letter>`; so a reply is
posted at most once however often or by how many operators it is retried. A retry that fails
again makes a new dead letter, which `list` shows and `retry` may send later.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from fengqiao.contracts import REPLIES_REQUESTED, ReplyRequested
from fengqiao.ops import Refused, dlq, print_json
from fengqiao.ops.dlq_commands import dead_letters, replay_each
from fengqiao.runtime.pii import mask_pii
from fengqiao.runtime.settings import StackSettings

# A dead letter's error type → why the reply failed.
REASONS = {"NotSendable": "unsendable", "RetriesExhausted": "exhausted"}


@dataclass(frozen=True)
class FailedReply:
    """A reply that failed for a reason that can pass, by its dead letter."""

    entry: dlq.Entry
    request: ReplyRequested

    @property
    def reason(self) -> str:
        return REASONS[self.entry.error_type]

    @property
    def key(self) -> str:
        return self.request.idempotency_key

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.entry.id,
            "reply": self.key,
            "case_id": self.request.case_id,
            "account": self.request.target.account,
            "purpose": self.request.purpose.value,
            "reason": self.reason,
            "error": mask_pii(self.entry.error)[0],
            "status": "retried" if self.entry.status == "replayed" else self.entry.status,
            "failed_at": self.entry.first_at.isoformat(),
        }


def failed_replies(entries: list[dlq.Entry]) -> list[FailedReply]:
    """The dead letters of replies the notifier may send again, oldest first."""
    found = []
    for entry in entries:
        if entry.origin_topic != REPLIES_REQUESTED.name or entry.error_type not in REASONS:
            continue
        try:
            found.append(FailedReply(entry, ReplyRequested.model_validate_json(entry.payload)))
        except ValidationError:
            continue  # a message off contract: `fengqiao ops dlq` deals with it
    return found


def choose(replies: list[FailedReply], wanted: list[str], reason: str | None) -> list[FailedReply]:
    """The replies to retry: those named (a dead letter's id, or a reply's key: its latest
    failure), or with none named every new one (of `reason`). Refused: a name that is no failed
    reply, or one retried already."""
    if not wanted:
        return [r for r in replies if r.entry.status == "new" and reason in (None, r.reason)]
    chosen = []
    for name in wanted:
        matching = [r for r in replies if name in (r.entry.id, r.key, *r.entry.letters)]
        if not matching:
            raise Refused(f"no failed reply {name!r} (see `fengqiao ops replies list --all`)")
        latest = matching[-1]
        if latest.entry.status != "new":
            done = latest.entry.action or {}
            raise Refused(
                f"reply {latest.key} ({latest.entry.id}) was {latest.summary()['status']} already"
                f" (at {done.get('at', '?')} by {done.get('by', '?')}); a reply is sent at most"
                " once"
            )
        chosen.append(latest)
    return chosen


async def replies_list(args: argparse.Namespace, settings: StackSettings, console: Console) -> int:
    async with dead_letters(args, settings) as (_, entries):
        replies = failed_replies(entries)
    shown = [
        r
        for r in replies
        if (args.all or r.entry.status == "new") and args.reason in (None, r.reason)
    ]
    if args.json:
        print_json([r.summary() for r in shown])
        return 0
    table = Table(title=f"failed replies ({len(shown)} of {len(replies)})")
    for column in ("id", "reply", "account", "reason", "status", "error", "failed at"):
        table.add_column(column, overflow="fold", no_wrap=column == "id")
    for r in shown:
        s = r.summary()
        table.add_row(
            s["id"], s["reply"], s["account"], s["reason"], s["status"], s["error"][:120],
            r.entry.first_at.strftime("%m-%d %H:%M:%S"),
        )  # fmt: skip
    console.print(table)
    if shown:
        console.print("fix the reason, then: fengqiao ops replies retry ID|REPLY… or --all")
    return 0


async def replies_retry(args: argparse.Namespace, settings: StackSettings, console: Console) -> int:
    async with dead_letters(args, settings) as (store, entries):
        chosen = choose(failed_replies(entries), args.reply, args.reason)
        replayed = await replay_each(settings, store, [r.entry for r in chosen])
        outcomes = [{"reply": r.key, **o} for r, o in zip(chosen, replayed, strict=True)]
    if args.json:
        print_json(outcomes)
    else:
        for o in outcomes:
            console.print(f"{o['reply']} ({o['id']}): {o['outcome']}")
        if not outcomes:
            console.print("no failed replies to retry")
    refused = [o for o in outcomes if o["outcome"] != "replayed"]
    if refused:  # another operator claimed it between the listing and the claim
        raise Refused(f"{len(refused)} retried already by someone else; sent at most once")
    return 0
