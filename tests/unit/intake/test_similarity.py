"""Near copies: fingerprints and resemblance (the duplicate threshold tuned on the pairs below).
The linking decision is tested in test_linking.py."""

from __future__ import annotations

import pytest

from fengqiao.services.intake.domain import matched_words, read_text
from fengqiao.services.intake.linking import Policy
from fengqiao.services.intake.similarity import SKETCH_SIZE, fingerprint, resemblance

WAGES = "我在博乐市工地干活，老板拖欠工资三个月了，求助"


def sketch(text: str) -> tuple[int, ...]:
    """The fingerprint intake takes of a whole post (normalized, own words only)."""
    return fingerprint(matched_words(read_text(text).parsed))


def score(a: str, b: str) -> float:
    return resemblance(sketch(a), sketch(b))


# --------------------------------------------------------------------------- fingerprints


def test_a_fingerprint_is_stable_across_processes() -> None:
    # Python's hash() changes per process; the stored fingerprints must not.
    assert fingerprint("工资") == (fingerprint("工资")[0],)
    assert fingerprint("ab") == (8819174121580757002,)


def test_the_sketch_keeps_at_most_k_hashes_in_order() -> None:
    long_text = "".join(chr(0x4E00 + i) for i in range(400))
    fp = fingerprint(long_text)
    assert len(fp) == SKETCH_SIZE
    assert list(fp) == sorted(fp)
    assert all(0 <= h < 2**63 for h in fp)


def test_empty_text_has_an_empty_fingerprint_that_resembles_nothing() -> None:
    assert fingerprint("") == ()
    assert fingerprint("!!! ，。") == ()
    assert resemblance((), ()) == 0.0
    assert resemblance(fingerprint("工资"), ()) == 0.0


def test_resemblance_is_exact_jaccard_for_short_texts() -> None:
    # bigrams: 工资被 拖欠 → {工资, 资被, 被拖, 拖欠} vs {房租, 租被, 被拖, 拖欠}: 2 of 6
    assert resemblance(fingerprint("工资被拖欠"), fingerprint("房租被拖欠")) == pytest.approx(2 / 6)
    assert resemblance(fingerprint("工资被拖欠"), fingerprint("工资被拖欠")) == 1.0


def test_resemblance_estimate_for_long_texts_is_close() -> None:
    base = "".join(chr(0x4E00 + i) for i in range(600))
    half = base[:300] + "".join(chr(0x5E00 + i) for i in range(300))
    # true Jaccard of the bigram sets: 299 shared of 599 + 299 + 1
    assert resemblance(fingerprint(base), fingerprint(half)) == pytest.approx(299 / 899, abs=0.12)


# --------------------------------------------------------------------------- the tuning pairs


SAME_PROBLEM = [
    # copies to other accounts: other mentions, topics, links, emoji
    (f"@新疆检察 {WAGES} #讨薪#", f"@博州检察 @博乐检察 {WAGES} https://t.cn/x 😭"),
    # punctuation, spaces, full width, Traditional characters
    (WAGES, "我在博乐市工地干活,老板拖欠工资三个月了!!求助!!!"),
    (WAGES, "我在博樂市工地幹活，老闆拖欠工資三個月了，求助"),
    (WAGES, "我在博乐市工地干活 老板拖欠工资 三个月了 求助 😭😭"),
    # re-typed: the same problem in other words
    (WAGES, "老板拖欠我工资三个月了，我在博乐市工地干活，求求你们帮帮我"),
    (
        "我妈妈在博乐市打工受伤，法院判了对方赔钱，但是对方没有财产执行不了，怎么办",
        "我妈妈在博乐市打工受伤了，法院判决对方赔偿，可对方没钱执行不了，怎么办啊",
    ),
]
OTHER_PROBLEM = [
    (WAGES, "我妈妈在博乐市打工受伤，法院判了对方赔钱，但是对方没有财产执行不了"),
    (WAGES, "我在伊宁县的饭店干活，老板拖欠工资两个月了，求助"),
    ("孩子急需一种特殊的药，喀什买不到，求助", "我家附近的河被工厂污染了，求助"),
    ("工资被拖欠", "房租被拖欠"),
    ("米东区有个喝醉的人把我岳父打了，医药费不给", WAGES),
]


@pytest.mark.parametrize(("a", "b"), SAME_PROBLEM)
def test_the_same_problem_reaches_the_threshold(a: str, b: str) -> None:
    assert score(a, b) >= Policy().duplicate_threshold


@pytest.mark.parametrize(("a", "b"), OTHER_PROBLEM)
def test_another_problem_stays_below_it(a: str, b: str) -> None:
    assert score(a, b) < Policy().duplicate_threshold
