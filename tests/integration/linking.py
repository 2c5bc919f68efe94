"""What the intake linking tests on the real store share: an author's appeal, and deciding its
case as the normalizer does (`assign_case`, similarity 1 for the same words, else 0)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fengqiao.services.intake.adapters.recent import Post, RecentAppeals, assign_case, claim_key
from fengqiao.services.intake.linking import Policy, RecentAppeal, amounts, cues
from fengqiao.services.intake.similarity import fingerprint

T0 = datetime(2026, 8, 1, 10, tzinfo=UTC)
WAGES = "我在博乐市工地干活老板拖欠工资三个月了求助"


def appeal(
    key: str, author: str, text: str = WAGES, at: datetime = T0, **changes: Any
) -> RecentAppeal:
    fields: dict[str, Any] = {
        "key": key,
        "platform": "weibo",
        "author": author,
        "post_id": key,
        "event_id": f"e-{key}",
        "case_id": f"c-{key}",
        "posted_at": at,
        "fingerprint": fingerprint(text),
        "words": text,
        "category": "wage_arrears",
        "amounts": amounts(text),
    }
    return RecentAppeal(**(fields | changes))


async def assign(store: RecentAppeals, a: RecentAppeal, text: str = WAGES, **post: Any) -> Any:
    decided, _ = await assign_case(
        store,
        a,
        Post(cues=cues(text), own_words=text, **post),
        claim=claim_key(a.platform, a.author, text, a.posted_at),
        policy=Policy(),
        similarity=lambda x, y: 1.0 if x == y else 0.0,
    )
    return decided
