"""Repeats and follow-ups: which earlier case a post belongs to, and why. Pure functions, no I/O.

A post is compared with the same author's recent appeals on the same platform, whatever the
account or channel it reached. What counts, strongest first (each link carries its reason):

- **a near copy**: the bigram resemblance of the two texts (`similarity.resemblance`, private
  numbers left out) is at least `Policy.duplicate_threshold` → a duplicate, within
  `Policy.duplicate_window` either side;
- **the same phone number** written in both;
- **the same amount of money** (¥3,000, 两万八) with the same category or related words;
- **a reference back** to an earlier report (`Cues.backref`: 那个事, 上次, 第三次发了, 还是没人来,
  怎么样了…) → the related earlier case: the most similar one if it stands out, else the latest;
- **thanks** after an earlier appeal (not an appeal itself) → that case;
- **the same matter in other words**: the same category and a content similarity (`cosine` of
  TF-IDF vectors, so shared names of places, firms and people count most) of at least
  `Policy.matter_threshold`;
- **the details of a terse first post** ("孩子在学校被打了", then who, where and how), in the
  same category within `Policy.detail_window`, when the author has no other case.

A repost (`//@name: …`) of someone else's appeal is linked by the reposted text (`reposted`: the
digests of the chain's segments) or by the author named, in `services.intake.adapters.recent`.

Links below certainty are not made: the post opens its own case with `Decision.suggested` set,
and a dispatcher confirms or rejects the suggestion in the triage queue. The thresholds were set
on the corpus's train and dev splits (`fengqiao triage eval --split dev`), never on its test
split; a newcomer's link is explained by `Decision.reason`.
Ties are broken by time and then by key, so the same inputs always give the same answer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from fengqiao.services.intake.similarity import resemblance

__all__ = [
    "Cues",
    "Decision",
    "Policy",
    "RecentAppeal",
    "amounts",
    "cues",
    "decide",
    "text_digest",
]

Kind = Literal["new", "duplicate", "follow_up"]
Similarity = Callable[[str, str], float]


@dataclass(frozen=True, slots=True)
class RecentAppeal:
    """One post as remembered for matching, with the case it was given."""

    key: str  # platform:source_id, the post across re-sends
    platform: str
    author: str
    post_id: str | None
    event_id: str
    case_id: str
    posted_at: datetime
    fingerprint: tuple[int, ...]
    follow_up_of: str | None = None
    duplicate_of: str | None = None  # event id of the appeal this one repeats
    words: str = ""  # the masked words similarity reads (at most `WORDS_KEPT` characters)
    category: str | None = None
    amounts: frozenset[int] = frozenset()
    phones: frozenset[str] = frozenset()  # digests, never the numbers
    is_appeal: bool = True
    urgent: bool = False  # triage found it urgent
    urgent_case: bool = False  # it joined a case an urgent post is in
    link_reason: str | None = None  # why it joined the case it did
    suggested: str | None = None  # a case it may belong to, for a person to confirm
    suggested_reason: str | None = None

    @property
    def kind(self) -> Kind:
        if self.duplicate_of is not None:
            return "duplicate"
        return "follow_up" if self.follow_up_of is not None else "new"


WORDS_KEPT = 600


@dataclass(frozen=True, slots=True)
class Policy:
    """Windows and thresholds of `decide` (set on the dev split, see the module docstring)."""

    duplicate_threshold: float = 0.5
    matter_threshold: float = 0.25
    related_threshold: float = 0.12
    weak_threshold: float = 0.05  # with a weak reference back (又, 那个…) and one clear case
    bare_length: int = 20  # a reference back this short names no matter of its own
    detail_window: timedelta = timedelta(days=2)  # details soon after a terse first post
    stands_out: float = 0.08  # the most similar case must lead the next by this much
    duplicate_window: timedelta = timedelta(days=7)
    follow_up_window: timedelta = timedelta(days=60)
    max_candidates: int = 50

    def lookback(self) -> timedelta:
        """How far back the store must look for candidates."""
        return max(self.duplicate_window, self.follow_up_window)


@dataclass(frozen=True, slots=True)
class Decision:
    """Which case a post belongs to, and why."""

    kind: Kind
    case_id: str
    duplicate_of: RecentAppeal | None = None
    follow_up_of: str | None = None
    reason: str | None = None
    suggested: str | None = None  # a case it may belong to, not linked: a person decides
    suggested_reason: str | None = None
    urgent_case: bool = False  # the case it joins has an urgent post

    def apply(self, appeal: RecentAppeal) -> RecentAppeal:
        """`appeal` with this decision's case, duplicate and follow-up marks."""
        return replace(
            appeal,
            case_id=self.case_id,
            follow_up_of=self.follow_up_of,
            duplicate_of=self.duplicate_of.event_id if self.duplicate_of else None,
            link_reason=self.reason,
            suggested=self.suggested,
            suggested_reason=self.suggested_reason,
            urgent_case=self.urgent_case,
        )


# --------------------------------------------------------------------------- cues

_BACKREF = re.compile(
    "那个事|那件事|那事|这个事还|这事还|上次|上回|之前(反映|说|发|问|求助|报|提)|前几天(反映|说|发|问|求助)"
    "|前两天(反映|说|发|问)|再发|重发|又发|再问|再次(反映|求助|发|问|投诉|@)|第[二三四五六七八九十两几\\d]+[次回遍]"
    "|[二三四五六七八九十两几\\d]+次了|还是没|还没(人|有人|回|消息|解决|处理|结果|动静|到|来|给|下文|音信)"
    "|依然|仍然|至今|到现在(还|都|也)|到今天(还|都|也)|一直没|怎么样了|咋样了|如何了|有(进展|消息|结果|回音)(吗|了吗|没)"
    "|进展(如何|怎么样|呢)|结果呢|跟进|催一下|催催|还在等|等了[好很]?[几多两三四五六七八九十\\d]+[天周月]"
    "|没下文|石沉大海|没人理|没人回|没回复|没有回复|没人管|没有人管|没人联系|没有人联系|补充|还没找到|还是没找到"
    "|更新一下|后续|最新情况|上面说的|我之前|我上次|同一个事|同一件事|还是那|还是这|发过|反映过|问过"
    "|我就是.{0,12}那个|就是.{0,8}那个事"
    # progress on a case already open: what the procuratorate or the police did since
    "|检察院的(人|同志|工作人员)|检察官(打|来|联系|说)|你们的(人|同志)|(派出所|警察|民警)的?(人|同志)?(来了|来过|打电话)"
    "|(联系|回复|回电|打电话给)(我|我们)了|有人(联系|来|回复)(我|我们)?了|说一下进展|汇报一下|告诉大家.{0,4}(进展|结果)"
)
# The author says it is another matter: nothing refers back, whatever else the words say.
_NEW_MATTER = re.compile(
    "别的事|别的问题|说个别的|问个别的|说点别的|问点别的|另外(问|说|一个|有个|还有)|另一个事|另一件事|又一个事|还有个事|还有一个事|换个事|再问个|再说个"
    "|不是一回事|不是一个事|没关系|无关|这次是|这回是|这次不是|这回不是|不是上次|不是.{0,8}(那个|那件)事"
)
_WEAK_BACKREF = re.compile("又|还是|再次|继续|还没|没人|照样|还在|那个|那家|那件|那位|的事")
_THANKS = re.compile(
    "谢谢|感谢|多谢|谢了|辛苦了|锦旗|点赞|解决了|拿到了|要到了|到账|收到了|办好了|处理好了|结清|付清|"
    "退回来了|找到了|平安|回来了|没事了|رەھمەت|рахмет|rahmet|xiexie"
)
_AMOUNT = re.compile(
    r"(\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千万]+)\s*(万|千|k|w)?\s*(元|块|圆|rmb|万元)"
    r"|(\d+(?:\.\d+)?)\s*(万|w)"
    r"|([一二两三四五六七八九十百千]+万[一二两三四五六七八九千百十]*)"  # 三万四, 两万八千
)
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}  # fmt: skip
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}


def _chinese_number(text: str) -> int | None:
    """两万三千 → 23000, 三万四 → 34000 (a last digit counts in the unit below the one before
    it, as people say it); None when it is not a number."""
    total, section, digit, last_unit = 0, 0, None, 1
    for ch in text:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            section += (1 if digit is None else digit) * _CN_UNITS[ch]
            digit, last_unit = None, _CN_UNITS[ch]
        elif ch == "万":
            total += (section + (digit or 0)) * 10000
            section, digit, last_unit = 0, None, 10000
        else:
            return None
    if digit is not None and last_unit >= 100:
        digit *= last_unit // 10
    return total + section + (digit or 0)


def amounts(text: str) -> frozenset[int]:
    """Sums of money in `text`, in yuan (at least 100: a sum small enough is no evidence)."""
    found = set()
    for m in _AMOUNT.finditer(text.lower()):
        if m.group(6):
            number, scale = m.group(6), None
        elif m.group(1):
            number, scale = m.group(1), m.group(2)
        else:
            number, scale = m.group(4), m.group(5)
        value: float | None
        value = float(number) if number[0].isdigit() else _chinese_number(number)
        if value is None:
            continue
        if scale in ("万", "w") or m.group(3) == "万元":
            value *= 10000
        elif scale in ("千", "k"):
            value *= 1000
        if value >= 100:
            found.add(round(value))
    return frozenset(found)


def text_digest(words: str) -> str:
    """The digest of a text as reposts quote it (letters and digits only, lower case)."""
    folded = re.sub(r"[\W_]+", "", words.lower())
    return hashlib.blake2b(folded.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True, slots=True)
class Cues:
    """What a post's own words say about earlier posts."""

    backref: str | None = None  # a phrase that refers back to an earlier report
    weak_backref: str | None = None  # 又, 还是…: refers back only together with other evidence
    thanks: str | None = None
    new_matter: str | None = None  # "别的事", "这次不是工资的事": the author says it is new

    @property
    def refers_back(self) -> bool:
        return self.backref is not None


def cues(own_words: str) -> Cues:
    """The cues of a post's own words (normalized, Simplified)."""
    text = own_words.lower()
    thanks = _THANKS.search(text)
    new = _NEW_MATTER.search(text)
    if new:
        return Cues(new_matter=new.group(0), thanks=thanks.group(0) if thanks else None)
    backref = _BACKREF.search(text)
    weak = _WEAK_BACKREF.search(text)
    return Cues(
        backref=backref.group(0) if backref else None,
        weak_backref=weak.group(0) if weak else None,
        thanks=thanks.group(0) if thanks else None,
    )


# --------------------------------------------------------------------------- deciding


@dataclass(frozen=True, slots=True)
class _Case:
    """An earlier case of the author, as close as its closest post comes."""

    first: RecentAppeal  # its earliest post in the window
    copy: float  # the highest bigram resemblance of its posts
    matter: float  # the highest content similarity of its posts
    same_category: bool
    amount: bool
    phone: bool
    latest: datetime
    urgent: bool  # one of its posts is urgent


def decide(
    appeal: RecentAppeal,
    earlier: Iterable[RecentAppeal],
    *,
    cue: Cues,
    similarity: Similarity,
    policy: Policy | None = None,
) -> Decision:
    """The case `appeal` belongs to, given the same author's other recent posts.

    `appeal.case_id` is its own case id, used when it is new. A duplicate and a follow-up both
    carry `follow_up_of` (the case they add to), so the router does not dispatch it again."""
    policy = policy or Policy()
    window = [
        e
        for e in earlier
        if e.key != appeal.key
        and e.platform == appeal.platform
        and e.author == appeal.author
        and -policy.duplicate_window <= appeal.posted_at - e.posted_at <= policy.follow_up_window
    ]
    copy = _near_copy(appeal, window, policy)
    if copy is not None:
        return copy
    cases = _cases(appeal, [e for e in window if e.posted_at <= appeal.posted_at], similarity)
    if not cases:
        return Decision("new", appeal.case_id)
    return _among(appeal, cases, cue, policy)


def _near_copy(appeal: RecentAppeal, window: list[RecentAppeal], policy: Policy) -> Decision | None:
    """A duplicate of the closest near copy posted around the same time, if there is one."""
    copies = [
        (resemblance(appeal.fingerprint, e.fingerprint), e)
        for e in window
        if e.is_appeal and abs(appeal.posted_at - e.posted_at) <= policy.duplicate_window
    ]
    copies = [(s, e) for s, e in copies if s >= policy.duplicate_threshold]
    if not copies:
        return None
    score, prior = min(copies, key=lambda se: (-se[0], se[1].posted_at, se[1].key))
    urgent = any(e.urgent for e in window if e.case_id == prior.case_id)
    return Decision(
        "duplicate",
        prior.case_id,
        prior,
        prior.case_id,
        f"near copy ({score:.2f})",
        urgent_case=urgent,
    )


def _among(appeal: RecentAppeal, cases: list[_Case], cue: Cues, policy: Policy) -> Decision:
    """Which of the author's earlier cases (most similar first) `appeal` joins, if any."""
    for c in cases:
        if c.phone:
            return _link(c, "same phone number")
        if c.amount and (c.same_category or c.matter >= policy.related_threshold):
            return _link(c, "same amount of money")
    best = cases[0]
    single = len(cases) == 1
    clear = single or best.matter - cases[1].matter >= policy.stands_out
    related = best.matter >= policy.related_threshold or best.same_category
    latest = max(cases, key=lambda c: (c.latest, c.first.key))
    if cue.refers_back:
        why = f"refers back ({cue.backref})"
        if related and clear:
            return _link(best, why)
        # A bare reference ("还没人联系我") names no matter of its own: the latest case it is.
        bare = len(appeal.words) <= policy.bare_length
        if bare or latest.same_category or (single and latest.matter >= policy.weak_threshold):
            return _link(latest, why + ", the latest case")
        return _suggest(appeal, best if related else latest, why + ", several cases")
    if cue.thanks and (not appeal.is_appeal or (related and clear)):
        return _link(best if related and clear else latest, f"thanks after ({cue.thanks})")
    if not appeal.is_appeal or cue.new_matter:
        return Decision("new", appeal.case_id)
    if cue.weak_backref and clear and best.same_category and best.matter >= policy.weak_threshold:
        return _link(best, f"same matter, {cue.weak_backref} ({best.matter:.2f})")
    if best.same_category and best.matter >= policy.matter_threshold and clear:
        return _link(best, f"same matter ({best.matter:.2f})")
    terse = single and len(best.first.words) <= policy.bare_length
    if terse and best.same_category and appeal.posted_at - best.latest <= policy.detail_window:
        return _link(best, "the details of a terse first post")
    if best.same_category and best.matter >= policy.matter_threshold - 0.1:
        return _suggest(appeal, best, f"similar matter ({best.matter:.2f})")
    return Decision("new", appeal.case_id)


def _cases(
    appeal: RecentAppeal, earlier: list[RecentAppeal], similarity: Similarity
) -> list[_Case]:
    """The author's earlier cases, most similar first (ties: the latest, then by key)."""
    by_case: dict[str, list[RecentAppeal]] = {}
    for e in earlier:
        by_case.setdefault(e.case_id, []).append(e)
    cases = []
    for posts in by_case.values():
        posts.sort(key=lambda e: (e.posted_at, e.key))
        appeals = [e for e in posts if e.is_appeal] or posts
        cases.append(
            _Case(
                first=posts[0],
                copy=max(resemblance(appeal.fingerprint, e.fingerprint) for e in appeals),
                matter=max(similarity(appeal.words, e.words) for e in appeals),
                same_category=any(
                    appeal.category is not None and e.category == appeal.category for e in appeals
                ),
                amount=any(appeal.amounts & e.amounts for e in appeals),
                phone=any(appeal.phones & e.phones for e in appeals),
                latest=posts[-1].posted_at,
                urgent=any(e.urgent for e in posts),
            )
        )
    cases.sort(key=lambda c: (-c.matter, -c.latest.timestamp(), c.first.key))
    return cases


def _link(c: _Case, reason: str) -> Decision:
    return Decision(
        "follow_up", c.first.case_id, None, c.first.case_id, reason, urgent_case=c.urgent
    )


def _suggest(appeal: RecentAppeal, c: _Case, reason: str) -> Decision:
    return Decision("new", appeal.case_id, suggested=c.first.case_id, suggested_reason=reason)
