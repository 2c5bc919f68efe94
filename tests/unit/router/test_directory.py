"""The directory of units: the packaged data, the tree queries, and every validation rule."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from fengqiao.services.router.directory import (
    DEFAULT_PATH,
    Directory,
    DirectoryError,
    check_coverage,
    directory_json_schema,
    load_directory,
)

# Every prefecture-level and county-level GB/T 2260 code of Xinjiang, copied from
# shared/data/xinjiang-divisions.json (MCA 2024 + 2025, plus the 2026 secondary-source 岑岭县
# 653132 and 草湖市 659013). Copied, not read: the project must not depend on shared/ at run time.
PREFECTURE_CODES = [
    "650100", "650200", "650400", "650500", "652300", "652700", "652800",
    "652900", "653000", "653100", "653200", "654000", "654200", "654300",
]  # fmt: skip
COUNTY_CODES = [
    "650102", "650103", "650104", "650105", "650106", "650107", "650109", "650121",  # 乌鲁木齐
    "650202", "650203", "650204", "650205",  # 克拉玛依
    "650402", "650421", "650422",  # 吐鲁番
    "650502", "650521", "650522",  # 哈密
    "652301", "652302", "652323", "652324", "652325", "652327", "652328",  # 昌吉
    "652701", "652702", "652722", "652723",  # 博州
    "652801", "652822", "652823", "652824", "652825", "652826", "652827", "652828",
    "652829",  # 巴州
    "652901", "652902", "652922", "652924", "652925", "652926", "652927", "652928",
    "652929",  # 阿克苏
    "653001", "653022", "653023", "653024",  # 克州
    "653101", "653121", "653122", "653123", "653124", "653125", "653126", "653127",
    "653128", "653129", "653130", "653131", "653132",  # 喀什 (653132 岑岭县, 2026)
    "653201", "653221", "653222", "653223", "653224", "653225", "653226", "653227",
    "653228", "653229",  # 和田 (653228 和康县, 653229 和安县, 2024)
    "654002", "654003", "654004", "654021", "654022", "654023", "654024", "654025",
    "654026", "654027", "654028",  # 伊犁州直
    "654201", "654202", "654203", "654221", "654224", "654225", "654226",  # 塔城
    "654301", "654321", "654322", "654323", "654324", "654325", "654326",  # 阿勒泰
]  # fmt: skip
REGION_DIRECT_CODES = [
    "659001", "659002", "659003", "659004", "659005", "659006", "659007",
    "659008", "659009", "659010", "659011", "659012", "659013",
]  # fmt: skip

VERIFIED = {"@新疆检察", "@博州检察", "@博乐检察", "@喀什检察", "@伽师检察"}


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory()


def ids(units: Any) -> list[str]:
    return [u.id for u in units]


# --------------------------------------------------------------------------- the packaged data


def test_the_packaged_directory_loads_from_next_to_the_module(directory: Directory) -> None:
    assert DEFAULT_PATH.name == "directory.yaml"
    assert DEFAULT_PATH.parent.name == "data"
    assert len(directory) == len(list(directory)) == 131


def test_counts_per_kind_and_tier(directory: Directory) -> None:
    assert Counter(u.kind for u in directory) == {
        "region": 1,
        "prefecture": 9,
        "branch": 5,
        "county": 99,
        "railway": 3,
        "xpcc": 14,
    }
    assert Counter(u.tier for u in directory) == {"region": 2, "prefecture": 28, "county": 101}
    local_prefectures = [u for u in directory if u.kind in ("prefecture", "branch")]
    assert len(local_prefectures) == len(PREFECTURE_CODES) == 14


def test_every_prefecture_and_county_level_code_is_covered(directory: Directory) -> None:
    codes = ["650000", *PREFECTURE_CODES, *COUNTY_CODES, *REGION_DIRECT_CODES]
    assert len(COUNTY_CODES) == 99
    assert len(REGION_DIRECT_CODES) == 13
    assert check_coverage(directory, codes) == []


def test_check_coverage_reports_unknown_codes_once_in_order(directory: Directory) -> None:
    assert check_coverage(directory, ["659999", "652701", "650108", "659999"]) == [
        "659999",
        "650108",
    ]


@pytest.mark.parametrize(
    ("unit_id", "chain"),
    [
        ("652701", ["xj", "652700", "652701"]),  # 博乐市
        ("650109", ["xj", "650100", "650109"]),  # 米东区
        ("653129", ["xj", "653100", "653129"]),  # 伽师县
        # 塔城 is a branch of 伊犁州's procuratorate, so the chain passes through both.
        ("654201", ["xj", "654000", "654200", "654201"]),  # 塔城市
        ("654301", ["xj", "654000", "654300", "654301"]),  # 阿勒泰市
        ("654021", ["xj", "654000", "654021"]),  # 伊宁县 (伊犁州直)
        ("xpcc-659001", ["xpcc", "xpcc-659001"]),  # 石河子市
        ("railway-urumqi.korla", ["xj", "railway-urumqi", "railway-urumqi.korla"]),
        ("xj", ["xj"]),
    ],
)
def test_chains_run_from_the_root_down(
    directory: Directory, unit_id: str, chain: list[str]
) -> None:
    assert ids(directory.chain(unit_id)) == chain


def test_the_article_units(directory: Directory) -> None:
    assert directory.region.id == "xj"
    assert directory["652701"].name == "博乐市人民检察院"
    assert directory["652701"].division == "博乐市"
    assert directory["653100"].name == "新疆维吾尔自治区人民检察院喀什分院"
    assert directory["653100"].kind == "branch"
    assert directory.by_code("653223") == directory["653223"]  # 皮山县 (case 4)


def test_prefecture_of_is_the_nearest_prefecture_tier_unit(directory: Directory) -> None:
    prefecture_of = directory.prefecture_of
    assert prefecture_of("654201").id == "654200"  # type: ignore[union-attr]
    assert prefecture_of("654200").id == "654200"  # type: ignore[union-attr]
    assert prefecture_of("650109").id == "650100"  # type: ignore[union-attr]
    assert prefecture_of("xj") is None


def test_branches_of_yili_and_of_the_region(directory: Directory) -> None:
    for code in ("654200", "654300"):
        unit = directory[code]
        assert (unit.kind, unit.tier, unit.parent) == ("branch", "prefecture", "654000")
    for code in ("652900", "653100", "653200"):
        assert (directory[code].kind, directory[code].parent) == ("branch", "xj")
    yili_children = ids(directory.children("654000"))
    assert len(yili_children) == 13
    assert {"654200", "654300", "654002", "654028"} <= set(yili_children)


def test_region_direct_cities_belong_to_the_xpcc_not_a_prefecture(directory: Directory) -> None:
    xpcc = directory["xpcc"]
    assert (xpcc.parent, xpcc.kind, xpcc.tier) == (None, "xpcc", "region")
    assert ids(directory.children("xpcc")) == [f"xpcc-{c}" for c in REGION_DIRECT_CODES]
    assert directory.by_code("659001").id == "xpcc-659001"  # type: ignore[union-attr]


def test_railway_units_have_no_territory(directory: Directory) -> None:
    railway = [u for u in directory if u.kind == "railway"]
    assert ids(railway) == ["railway-urumqi", "railway-urumqi.urumqi", "railway-urumqi.korla"]
    assert all(u.jurisdiction_codes == () for u in railway)
    assert directory["railway-urumqi"].name == "乌鲁木齐铁路运输检察分院"


def test_only_the_confirmed_handles_are_verified(directory: Directory) -> None:
    assert {u.handle for u in directory if u.handle_verified} == VERIFIED
    for handle in ("@乌鲁木齐检察", "@米东检察"):
        unit = directory.by_handle(handle)
        assert unit is not None
        assert not unit.handle_verified
        assert unit.handle_source == "article"
    assert directory.by_handle("@米东检察").id == "650109"  # type: ignore[union-attr]
    assert directory.by_handle("@博州检察").id == "652700"  # type: ignore[union-attr]
    guessed = [u for u in directory if u.handle_source == "pattern"]
    assert all(u.handle and u.handle.endswith("检察") for u in guessed)
    assert not any(u.handle_verified for u in guessed)


def test_new_and_unconfirmed_divisions(directory: Directory) -> None:
    assert directory["653228"].division == "和康县"
    assert directory["653229"].division == "和安县"
    assert directory["653228"].status == "active"
    assert directory["653132"].status == "unconfirmed"  # 岑岭县, 2026, secondary only
    assert directory["xpcc-659013"].status == "unconfirmed"  # 草湖市
    assert directory["654200"].name_status == "unconfirmed"


def test_place_names(directory: Directory) -> None:
    assert directory["650109"].names.former == ("米泉", "米泉市", "东山区")
    assert "库车县" in directory["652902"].names.former
    assert "沙湾县" in directory["654203"].names.former
    assert "乌市" in directory["650100"].names.short
    assert "巴州" in directory["652800"].names.short
    assert "克州" in directory["653000"].names.short
    assert "伊犁州" in directory["654000"].names.short
    # Former notes are stripped from the names and kept apart.
    assert not any("(" in n for u in directory for n in u.names.unambiguous())
    assert any("merged 2007" in note for note in directory["650109"].notes)


@pytest.mark.parametrize(
    ("name", "codes"),
    [
        ("和田", {"653200", "653201", "653221"}),
        ("伊宁", {"654002", "654021"}),
        ("阿克苏", {"652900", "652901"}),
        ("喀什", {"653100", "653101"}),
        ("塔城", {"654200", "654201"}),
        ("阿勒泰", {"654300", "654301"}),
        ("昌吉", {"652300", "652301"}),
        ("克拉玛依", {"650200", "650203"}),
        ("乌鲁木齐", {"650100", "650121"}),
        ("阿地区", {"652900", "654300"}),
    ],
)
def test_ambiguous_names_are_never_short_names(
    directory: Directory, name: str, codes: set[str]
) -> None:
    assert {u.id for u in directory if name in u.names.ambiguous} == codes
    assert not [u.id for u in directory if name in u.names.unambiguous()]


def test_departments_and_partners(directory: Directory) -> None:
    bole = directory["652701"]
    assert bole.department("civil") is not None
    assert bole.department("service_center").name == "12309检察服务中心"  # type: ignore[union-attr]
    police = bole.partner("police")
    assert police is not None
    assert police.name == "博乐市公安局"
    assert police.inferred
    assert bole.partner("court").name == "博乐市人民法院"  # type: ignore[union-attr]
    assert directory["652700"].partner("court").name == "博尔塔拉蒙古自治州中级人民法院"  # type: ignore[union-attr]


def test_lookups_of_unknown_ids(directory: Directory) -> None:
    assert directory.get("nope") is None
    assert "nope" not in directory
    assert "xj" in directory
    with pytest.raises(KeyError, match="nope"):
        directory.chain("nope")
    assert directory.by_code("000000") is None


def test_units_are_immutable(directory: Directory) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        directory["xj"].name = "x"  # type: ignore[misc]


def test_the_committed_schema_matches_the_model() -> None:
    schema_file = DEFAULT_PATH.with_name("directory.schema.json")
    assert json.loads(schema_file.read_text(encoding="utf-8")) == directory_json_schema()


# --------------------------------------------------------------------------- validation


def small_document() -> dict[str, Any]:
    """A valid three-unit directory (region → prefecture → county) to break in each test."""

    def unit(uid: str, tier: str, kind: str, parent: str | None, code: str) -> dict[str, Any]:
        return {
            "id": uid,
            "name": f"{uid}人民检察院",
            "name_status": "inferred",
            "division": uid,
            "tier": tier,
            "kind": kind,
            "parent": parent,
            "jurisdiction_codes": [code],
            "weibo": {"handle": f"@{uid}检察", "verified": False, "source": "pattern"},
            "names": {"full": [f"{uid}名"]},
            "source": ["S1"],
        }

    return {
        "schema_version": 1,
        "system": {
            "name": "test",
            "description": "test",
            "generator": "hand",
            "generated_from": "hand",
            "as_of": "now",
            "matrix_accounts_reported": 3,
            "tree": [],
            "inferred": [],
            "sources": {"S1": {"what": "codes", "url": None}},
        },
        "default_departments": [{"id": "civil", "name": "民事检察"}],
        "units": [
            unit("xj", "region", "region", None, "650000"),
            unit("650100", "prefecture", "prefecture", "xj", "650100"),
            unit("650109", "county", "county", "650100", "650109"),
        ],
    }


def write(tmp_path: Path, document: dict[str, Any] | str) -> Path:
    path = tmp_path / "directory.yaml"
    text = document if isinstance(document, str) else yaml.safe_dump(document, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_small_document_is_valid(tmp_path: Path) -> None:
    directory = load_directory(write(tmp_path, small_document()))
    assert ids(directory.chain("650109")) == ["xj", "650100", "650109"]
    assert directory["650109"].departments[0].name == "民事检察"


def broken(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(small_document())
    change(document["units"])
    return document


def _set(index: int, key: str, value: Any) -> Any:
    return lambda units: units[index].__setitem__(key, value)


def _duplicate_last(units: list[dict[str, Any]]) -> None:
    units.append(copy.deepcopy(units[-1]))


def _cycle(units: list[dict[str, Any]]) -> None:
    units[1]["parent"] = "650109"


def _same_code(units: list[dict[str, Any]]) -> None:
    units[2]["jurisdiction_codes"] = ["650109", "650100"]


def _second_region(units: list[dict[str, Any]]) -> None:
    units[1].update(tier="region", kind="region", parent=None)


def _no_id(units: list[dict[str, Any]]) -> None:
    del units[2]["id"]


def _name_clash(units: list[dict[str, Any]]) -> None:
    units[2]["names"]["short"] = ["650100名"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set(2, "parent", "659999"), "unit '650109': parent '659999' does not exist"),
        (_duplicate_last, "unit '650109': duplicate id"),
        (_same_code, "unit '650109': jurisdiction code '650100' also in unit '650100'"),
        (_cycle, "unit '650100': parent chain loops: 650100 → 650109 → 650100"),
        (_set(2, "colour", "red"), "unit '650109': colour: Extra inputs are not permitted"),
        (_set(2, "tier", "township"), "unit '650109': tier: Input should be"),
        (_set(2, "parent", "xj"), "unit '650109': a county unit cannot hang under region unit"),
        (_set(1, "tier", "county"), "unit '650100': kind 'prefecture' cannot be at tier 'county'"),
        (_set(2, "parent", None), "unit '650109': has no parent"),
        (_second_region, "exactly one region unit expected, found 'xj', '650100'"),
        (_set(2, "jurisdiction_codes", ["650110"]), "unit '650109': a geographic unit's id"),
        (_set(2, "source", ["S99"]), "unit '650109': source 'S99' is not listed"),
        (_set(2, "id", "Bad Id"), "unit 'Bad Id': id: String should match pattern"),
        (_no_id, "unit #3 (no valid id): id: Field required"),
        (_name_clash, "unit '650109': name '650100名' is also an unambiguous name of unit"),
    ],
)
def test_each_rule_names_the_bad_entry(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(DirectoryError) as caught:
        load_directory(write(tmp_path, broken(change)))
    assert str(caught.value).startswith("directory.yaml: ")
    assert message in str(caught.value)


def test_a_handle_with_two_units_is_refused(tmp_path: Path) -> None:
    document = small_document()
    document["units"][2]["weibo"]["handle"] = "@650100检察"
    with pytest.raises(DirectoryError, match="unit '650109': handle '@650100检察' also of unit"):
        load_directory(write(tmp_path, document))


def test_an_unquoted_code_is_refused_not_coerced(tmp_path: Path) -> None:
    text = yaml.safe_dump(small_document(), allow_unicode=True)
    text = text.replace("  - '650109'", "  - 650109")  # YAML reads it as an int
    message = "unit '650109': jurisdiction_codes.0: Input should be a valid string"
    with pytest.raises(DirectoryError, match=re.escape(message)):
        load_directory(write(tmp_path, text))


def test_a_duplicate_yaml_key_is_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump(small_document(), allow_unicode=True)
    text = text.replace("schema_version: 1\n", "schema_version: 1\nschema_version: 1\n")
    with pytest.raises(DirectoryError, match="duplicate key 'schema_version'"):
        load_directory(write(tmp_path, text))


def test_a_wrong_schema_version_is_refused(tmp_path: Path) -> None:
    document = small_document()
    document["schema_version"] = 2
    with pytest.raises(DirectoryError, match="document: schema_version"):
        load_directory(write(tmp_path, document))


def test_a_missing_file_is_a_directory_error(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match=r"missing\.yaml: cannot read"):
        load_directory(tmp_path / "missing.yaml")
