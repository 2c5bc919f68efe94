"""The danger lexicon in context (services/intake/data/danger.yaml, triage/danger.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fengqiao.services.intake.triage.danger import DANGER_FILE, load_danger


def states(text: str) -> dict[str, str]:
    return {h.word: h.state for h in load_danger().find(text) if h.kind != "signal"}


@pytest.mark.parametrize(
    ("text", "word", "state"),
    [
        ("我妈被困在屋顶上了，水还在涨", "被困", "live"),
        ("他拿着刀在砸门", "拿着刀", "live"),
        ("老板欠钱不还，我不想活了", "不想活", "live"),
        ("跳楼价甩卖啦", "跳楼", "figurative"),
        ("热得不想活了😂", "不想活", "figurative"),
        ("加班到十一点，要累死在工位上了", "死在", "figurative"),
        ("不是要自杀，只是想问问", "自杀", "negated"),
        ("去年被困在山上三天", "被困", "past"),
        ("抢救过来了", "抢救", "past"),
        ("哈哈哈我不活了", "不活了", "joke"),
        ("孩子走失了，已经找到了，谢谢大家", "走失", "resolved"),
        ("【普法】遇到有人持刀抢劫怎么办", "抢劫", "news"),
    ],
)
def test_each_word_is_live_or_says_why_it_is_quiet(text: str, word: str, state: str) -> None:
    assert states(text)[word] == state


def test_a_knife_stays_live_even_in_a_laughing_post() -> None:
    assert states("哈哈 他拿着刀追过来了")["拿着刀"] == "live"


def test_markers_are_the_models_features_for_the_hits() -> None:
    hits, markers = load_danger().markers("去年被困在山上，今天又被困了")
    assert "q:past" in markers and "d:trapped" in markers
    assert len(hits) == len(markers)


def test_signals_count_only_when_live() -> None:
    _, markers = load_danger().markers("去年家暴")
    assert "d:signal" not in markers


def test_text_without_danger_has_no_hits() -> None:
    assert load_danger().find("请问离婚财产怎么分") == []


def test_a_malformed_lexicon_is_refused_with_its_name(tmp_path: Path) -> None:
    document = yaml.safe_load(DANGER_FILE.read_text(encoding="utf-8"))
    document["colour"] = "red"
    path = tmp_path / "danger.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="colour"):
        load_danger(path)
    path.write_text("danger: [unclosed", encoding="utf-8")
    with pytest.raises(ValueError, match=r"^danger\.yaml: "):
        load_danger(path)


def test_a_word_both_dangerous_and_figurative_is_refused(tmp_path: Path) -> None:
    document = yaml.safe_load(DANGER_FILE.read_text(encoding="utf-8"))
    document["figurative"] = [*document["figurative"], "跳楼"]
    path = tmp_path / "danger.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="跳楼"):
        load_danger(path)
