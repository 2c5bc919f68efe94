"""Place recognition on the real directory."""

from __future__ import annotations

import pytest

from fengqiao.services.router.directory import Directory, load_directory
from fengqiao.services.router.places import PlaceIndex, PlaceMention


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory()


@pytest.fixture(scope="module")
def places(directory: Directory) -> PlaceIndex:
    return PlaceIndex(directory)


def found(places: PlaceIndex, text: str) -> list[tuple[str, str, str]]:
    return [(m.name, m.unit_id, m.kind) for m in places.find(text)]


@pytest.mark.parametrize(
    ("text", "name", "unit_id"),
    [
        ("乌鲁木齐县的牧场", "乌鲁木齐县", "650121"),
        ("乌鲁木齐的工地", "乌鲁木齐", "650100"),
        ("伊宁县的工地", "伊宁县", "654021"),
        ("伊宁市的工地", "伊宁市", "654002"),
        ("博乐市的工地", "博乐市", "652701"),
        ("博乐的工地", "博乐", "652701"),
    ],
)
def test_the_longest_name_wins(places: PlaceIndex, text: str, name: str, unit_id: str) -> None:
    [mention] = places.find(text)
    assert (mention.name, mention.unit_id) == (name, unit_id)


def test_a_mention_records_where_it_is_and_how_it_counts(places: PlaceIndex) -> None:
    assert places.find("在伽师县买药") == [PlaceMention("伽师县", 1, "653129", "full", 1.0)]


@pytest.mark.parametrize(
    ("name", "unit_id", "kind"),
    [
        ("乌市", "650100", "short"),
        ("博州", "652700", "short"),
        ("巴州", "652800", "short"),
        ("克州", "653000", "short"),
        ("首府", "650100", "alias"),
    ],
)
def test_short_names_and_aliases(places: PlaceIndex, name: str, unit_id: str, kind: str) -> None:
    assert found(places, f"我在{name}打工") == [(name, unit_id, kind)]


@pytest.mark.parametrize(
    ("name", "unit_id"),
    [("米泉", "650109"), ("米泉市", "650109"), ("库车县", "652902"), ("沙湾县", "654203")],
)
def test_former_names_mean_the_unit_of_today(places: PlaceIndex, name: str, unit_id: str) -> None:
    assert found(places, f"{name}的工地") == [(name, unit_id, "former")]


def test_former_names_count_less_than_current_ones(places: PlaceIndex) -> None:
    [former] = places.find("米泉")
    [current] = places.find("米东区")
    assert former.unit_id == current.unit_id == "650109"
    assert former.weight < current.weight


@pytest.mark.parametrize(
    ("name", "unit_id"),
    [
        ("乌鲁木齐", "650100"),  # the city, not 乌鲁木齐县
        ("和田", "653200"),  # the prefecture, not the city or the county
        ("喀什", "653100"),
        ("阿克苏", "652900"),
        ("塔城", "654200"),
        ("克拉玛依", "650200"),
        # Two units of the same rank: the one above both, not whichever the file lists first.
        ("伊宁", "654000"),
        ("阿地区", "xj"),
    ],
)
def test_ambiguous_names_resolve_to_the_broader_unit(
    places: PlaceIndex, name: str, unit_id: str
) -> None:
    [mention] = places.find(f"{name}的事")
    assert (mention.unit_id, mention.kind, mention.weight) == (unit_id, "ambiguous", 0.6)


def test_an_ambiguous_name_that_is_also_a_units_own_name_keeps_it(places: PlaceIndex) -> None:
    # 吐鲁番 is the short name of 吐鲁番市 and an ambiguous name of 高昌区 below it.
    assert found(places, "吐鲁番") == [("吐鲁番", "650400", "short")]


def test_every_place_is_found_left_to_right_without_overlaps(places: PlaceIndex) -> None:
    assert found(places, "喀什买不到，伽师县还有，乌鲁木齐县也有") == [
        ("喀什", "653100", "ambiguous"),
        ("伽师县", "653129", "full"),
        ("乌鲁木齐县", "650121", "full"),
    ]


def test_text_without_places(places: PlaceIndex) -> None:
    assert places.find("工资被拖欠了三个月") == []
    assert places.find("") == []


def test_every_unambiguous_name_of_the_directory_finds_its_unit(
    directory: Directory, places: PlaceIndex
) -> None:
    for unit in directory:
        for name in unit.names.full:
            [mention] = places.find(name)
            assert mention.unit_id == unit.id, name


# --------------------------------------------------------------------------- context rules


@pytest.mark.parametrize(
    ("text", "unit_id"),
    [
        ("喀什市区的超市", "653101"),  # a name of its own: 喀什市
        ("喀什老城里开店", "653101"),  # bare name + urban suffix → the city
        ("喀什地区的工地", "653100"),
        ("和田县城一家饭馆", "653221"),
        ("和田城区的工地", "653201"),
        ("哈密城区的工地", "650502"),  # 伊州区 is the old county-level 哈密市
        ("伊宁城区", "654002"),
        ("伊宁县城", "654021"),
        ("伊州区的工地", "650502"),
        ("伊犁州的工地", "654000"),
        ("塔县的牧场", "653131"),
        ("塔城的牧场", "654200"),
        ("巴州的工地", "652800"),
        ("巴楚的工地", "653130"),
        ("巴里坤的工地", "650521"),
        ("烏魯木齊縣的工地", "650121"),  # traditional characters
        ("那拉提景区的酒店", "654025"),  # a landmark
    ],
)
def test_ambiguous_names_and_context(places: PlaceIndex, text: str, unit_id: str) -> None:
    where = [m for m in places.find(text) if m.role == "where"]
    assert [m.unit_id for m in where] == [unit_id]


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("买了和田玉", "not_place"),
        ("吃了哈密瓜", "not_place"),
        ("库尔勒香梨很甜", "not_place"),
        ("吐鲁番葡萄干", "not_place"),
        ("喀什美食店", "not_place"),
        ("天山区和田街", "not_place"),
        ("从和田来的", "origin"),
        ("以前在哈密打工", "origin"),
        ("老家喀什", "origin"),
        ("我是伽师县人，", "origin"),
        ("不是伊犁州", "negated"),
    ],
)
def test_words_that_do_not_say_where_the_matter_is(
    places: PlaceIndex, text: str, role: str
) -> None:
    assert places.find(text)[-1].role == role


def test_ordinary_words_holding_a_short_name_are_no_place(places: PlaceIndex) -> None:
    assert places.find("去泡温泉") == []
    assert places.find("重新和老板谈") == []
    assert places.find("健康和安全") == []
