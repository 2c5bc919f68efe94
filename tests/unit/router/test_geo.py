"""Geo point → county by the nearest approximate seat."""

from __future__ import annotations

from pathlib import Path

import pytest

from fengqiao.services.router.directory import load_directory
from fengqiao.services.router.geo import SeatIndex, SeatsError, load_seats


@pytest.fixture(scope="module")
def seats() -> SeatIndex:
    return load_seats()


@pytest.mark.parametrize(
    ("lat", "lon", "unit_id"),
    [
        (41.75, 86.17, "652801"),  # 库尔勒
        (44.89, 82.08, "652701"),  # 博乐
        (39.49, 76.73, "653129"),  # 伽师
        (47.84, 88.13, "654301"),  # 阿勒泰市
        (44.31, 86.05, "xpcc-659001"),  # 石河子
    ],
)
def test_a_point_goes_to_the_nearest_seat(
    seats: SeatIndex, lat: float, lon: float, unit_id: str
) -> None:
    hit = seats.nearest(lat, lon)
    assert hit is not None and hit.unit_id == unit_id


def test_outside_xinjiang_is_no_evidence(seats: SeatIndex) -> None:
    assert seats.nearest(39.9, 116.4) is None  # 北京
    assert seats.nearest(36.6, 101.8) is None  # 西宁


def test_far_from_every_seat_is_no_evidence(seats: SeatIndex) -> None:
    # Inside the box, in the middle of the 塔克拉玛干 / 羌塘 far from any seat.
    assert seats.nearest(35.0, 85.0) is None


def test_a_point_weighs_less_the_farther_it_is(seats: SeatIndex) -> None:
    near, far = seats.nearest(41.34, 86.26), seats.nearest(40.6, 86.8)
    assert near is not None and far is not None
    assert near.unit_id == far.unit_id == "652823"  # 尉犁县
    assert 0.35 <= far.weight < near.weight <= 0.65


def test_every_seat_is_a_unit_and_every_county_has_a_seat(seats: SeatIndex) -> None:
    directory = load_directory()
    ids = {unit_id for unit_id, _, _ in seats.seats}
    assert ids <= {u.id for u in directory}
    counties = {u.id for u in directory if u.tier == "county" and u.kind == "county"}
    # Seats not known well enough are left out on purpose (see the file's header).
    assert counties - ids == {"653132", "653229"}


def test_the_file_says_it_is_approximate() -> None:
    from fengqiao.services.router.geo import SEATS_FILE

    assert "approximate: true" in SEATS_FILE.read_text(encoding="utf-8")


def test_a_seat_outside_the_box_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "seats.yaml"
    path.write_text(
        "schema_version: 1\napproximate: true\nnote: x\nbounds: {lat: [34, 49], lon: [73, 96]}\n"
        "max_km: 100\nseats: {'652701': [10.0, 82.0]}\n",
        encoding="utf-8",
    )
    with pytest.raises(SeatsError, match=r"seats\.652701"):
        load_seats(path)
