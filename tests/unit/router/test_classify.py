"""Category and urgency rules: the packaged rules, and load errors naming the entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from services.router.classify import RULES_FILE, Classification, Rules, RulesError, load_rules


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("工地老板拖欠工资三个月", "wage_arrears"),
        ("官司赢了却执行不了，生活困难", "judicial_aid"),
        ("被人打伤了，医药费谁出", "personal_injury"),
        ("求药：需要一种救命的药", "urgent_assistance"),
        ("法院办案不公，我要申诉", "complaint_appeal"),
        ("被网上刷单诈骗了，想报案", "crime_report"),
        ("化工厂往河里排污", "public_interest"),
        ("孩子被同学校园欺凌", "minors"),
        ("小区停水三天了", "other_agency"),
        ("请问这个合同合法吗", "legal_consultation"),
    ],
)
def test_each_category(rules: Rules, text: str, category: str) -> None:
    result = rules.classify(text)
    assert result.category == category
    assert f"category.{category}" in result.rules_fired


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("工资要不回来，我不想活了", "urgent.suicide"),
        ("有人拿刀在小区门口", "urgent.violence"),
        ("孩子走丢了，在博乐市", "urgent.missing_child"),
        ("孩子急需特种药", "urgent.medicine"),
        ("老人昏迷了", "urgent.medical"),
        ("工人被困在井下", "urgent.trapped"),
    ],
)
def test_urgent_words_make_an_appeal_urgent(rules: Rules, text: str, rule: str) -> None:
    result = rules.classify(text)
    assert result.urgent
    assert rule in result.rules_fired


def test_ordinary_text_is_not_urgent(rules: Rules) -> None:
    assert not rules.classify("工地拖欠工资三个月").urgent


def test_no_rule_gives_the_default_category(rules: Rules) -> None:
    assert rules.classify("今天天气不错") == Classification("legal_consultation", False, ())


def test_rules_fired_lists_urgent_rules_then_categories(rules: Rules) -> None:
    result = rules.classify("孩子急需特种药，老板还拖欠工资，我不想活了")
    assert result.rules_fired == (
        "urgent.suicide",
        "urgent.medicine",
        "urgent.medicine_needed",
        "category.wage_arrears",
        "category.urgent_assistance",
    )
    assert result.urgent


def test_the_category_with_most_weight_wins(rules: Rules) -> None:
    # wage_arrears: 拖欠, 工资, 包工头 (3) against crime_report: 举报 (1).
    assert rules.classify("举报包工头拖欠工资").category == "wage_arrears"


def test_a_tie_goes_to_the_earlier_rule(rules: Rules) -> None:
    assert rules.classify("我要举报欠薪").category == "wage_arrears"
    assert rules.classify("欠薪，我要举报").category == "wage_arrears"


def test_a_rule_weight_scales_its_hits(rules: Rules) -> None:
    # legal_consultation weighs 0.5: two of its words tie with one wage word; the tie goes to
    # wage_arrears, listed first.
    assert rules.classify("请问工资怎么办").category == "wage_arrears"
    assert rules.classify("请问怎么办，法律问题").category == "legal_consultation"


# --------------------------------------------------------------------------- loading


def packaged() -> dict[str, Any]:
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "rules.yaml"
    text = document if isinstance(document, str) else yaml.safe_dump(document, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_small_rules_file_loads(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            {
                "schema_version": 1,
                "default_category": "other",
                "urgent": [{"id": "urgent.fire", "any": ["着火"]}],
                "categories": [{"code": "noise", "weight": 2, "any": ["噪音", "吵"]}],
            },
        )
    )
    assert rules.classify("楼下着火了，很吵") == Classification(
        "noise", True, ("urgent.fire", "category.noise")
    )
    assert rules.classify("你好").category == "other"


def test_an_urgent_rule_without_id_fires_as_urgent(tmp_path: Path) -> None:
    document = packaged()
    document["urgent"] = [{"any": ["着火"]}]
    assert load_rules(write(tmp_path, document)).classify("着火了").rules_fired[0] == "urgent"


def _category(index: int, **fields: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        document["categories"][index] = fields

    return change


def _drop(key: str) -> Any:
    return lambda document: document.pop(key)


def _extra(document: dict[str, Any]) -> None:
    document["colour"] = "red"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_drop("default_category"), "rules.yaml: default_category: Field required"),
        (_extra, "rules.yaml: colour: Extra inputs are not permitted"),
        (_category(1, code="x", any=[]), "rules.yaml: categories.1.any: "),
        (_category(2, code="x", weight=0, any=["a"]), "rules.yaml: categories.2.weight: "),
        (_category(3, code="x", any=["a"], words=["b"]), "rules.yaml: categories.3.words: Extra"),
        (
            _category(0, any=["拖欠", "工资"]),
            "rules.yaml: a category rule has no code: ['拖欠', '工资']",
        ),
    ],
)
def test_a_load_error_names_the_entry(tmp_path: Path, change: Any, message: str) -> None:
    document = packaged()
    change(document)
    with pytest.raises(RulesError) as caught:
        load_rules(write(tmp_path, document))
    assert str(caught.value).startswith(message)


def test_broken_yaml_is_a_rules_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"^rules\.yaml: "):
        load_rules(write(tmp_path, "categories: [unclosed"))


def test_a_missing_file_is_a_rules_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"^nope\.yaml: "):
        load_rules(tmp_path / "nope.yaml")
