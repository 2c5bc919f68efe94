"""A geo point → the county whose seat is nearest (`data/seats.yaml`).

No county polygons are available offline, so this is an approximation on purpose: seats are
general-knowledge coordinates (the file says `approximate: true`), a point is given to the
nearest seat within `max_km`, and only inside Xinjiang's bounding box. The router weighs the
result low, and lower the farther the point is from the seat (see `weight`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["SEATS_FILE", "GeoHit", "SeatIndex", "SeatsError", "load_seats"]

SEATS_FILE = Path(__file__).parent / "data" / "seats.yaml"
_EARTH_KM = 6371.0
_NEAR_WEIGHT = 0.65  # at the seat: a little above an account's 0.6
_FAR_WEIGHT = 0.35  # at max_km: below an account, just under a stated residence


class SeatsError(ValueError):
    """The seats file is malformed; the message names the entry."""


class _Bounds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    lat: tuple[float, float]
    lon: tuple[float, float]


class _SeatsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: int
    approximate: bool
    note: str
    bounds: _Bounds
    max_km: float = Field(gt=0)
    seats: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class GeoHit:
    unit_id: str
    km: float
    weight: float


@dataclass(frozen=True)
class SeatIndex:
    """Seats by unit id; `nearest` is pure."""

    seats: tuple[tuple[str, float, float], ...]
    bounds: tuple[float, float, float, float]  # lat min, lat max, lon min, lon max
    max_km: float

    def nearest(self, lat: float, lon: float) -> GeoHit | None:
        """The unit whose seat is nearest, or None outside the box or beyond max_km."""
        lat_min, lat_max, lon_min, lon_max = self.bounds
        if not (lat_min <= lat <= lat_max and lon_min <= lon <= lon_max):
            return None
        cos_lat = math.cos(math.radians(lat))
        best, best_d2 = None, math.inf
        for unit_id, s_lat, s_lon in self.seats:
            d2 = (s_lat - lat) ** 2 + ((s_lon - lon) * cos_lat) ** 2
            if d2 < best_d2:
                best, best_d2 = unit_id, d2
        km = math.radians(math.sqrt(best_d2)) * _EARTH_KM
        if best is None or km > self.max_km:
            return None
        return GeoHit(best, round(km, 1), self.weight(km))

    def weight(self, km: float) -> float:
        """How much a point counts: 0.65 at a seat, falling linearly to 0.35 at max_km."""
        share = min(km, self.max_km) / self.max_km
        return round(_NEAR_WEIGHT - (_NEAR_WEIGHT - _FAR_WEIGHT) * share, 3)


def load_seats(path: Path = SEATS_FILE) -> SeatIndex:
    """Load and validate the seats file; SeatsError names what is wrong."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = _SeatsFile.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise SeatsError(f"{path.name}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SeatsError(f"{path.name}: {where}: {first['msg']}") from exc
    b = parsed.bounds
    for unit_id, (lat, lon) in parsed.seats.items():
        if not (b.lat[0] <= lat <= b.lat[1] and b.lon[0] <= lon <= b.lon[1]):
            raise SeatsError(f"{path.name}: seats.{unit_id}: ({lat}, {lon}) is outside bounds")
    return SeatIndex(
        tuple((u, lat, lon) for u, (lat, lon) in parsed.seats.items()),
        (b.lat[0], b.lat[1], b.lon[0], b.lon[1]),
        parsed.max_km,
    )
