"""The units of the directory, built from the divisions file (``build_directory.py`` writes them).

Each builder returns a unit as a plain dict in the file's key order; names the divisions file
marks ambiguous are moved to ``names.ambiguous`` of every candidate.
"""

from __future__ import annotations

import json
import re
from typing import Any

from directory_facts import (
    ARTICLE_HANDLES,
    CONFIRMED_COUNTY_PROCURATORATES,
    EXTRA_AMBIGUOUS,
    PARTNER_SUFFIXES,
    RAILWAY,
    VERIFIED_HANDLES,
)

Unit = dict[str, Any]

_NOTE = re.compile(r"^(?P<name>[^(]+?)\s*\((?P<note>.*)\)\s*$")
_SOURCE = re.compile(r"\bS\d+b?\b")
_CODE_AT_START = re.compile(r"^(\d{6})\b")
_FORMER_FULL = re.compile(r"^former ([^\d\s,]\S*) \d{6}")


# --------------------------------------------------------------------------- small helpers


def split_note(text: str) -> tuple[str, str | None]:
    """Split a trailing parenthesised note off a name.

    '米泉 (former 米泉市 652303, merged 2007)' → ('米泉', 'former 米泉市 652303, merged 2007').
    """
    match = _NOTE.match(text)
    if match is None:
        return text.strip(), None
    return match["name"].strip(), match["note"].strip()


def sources_in(record: dict[str, Any]) -> list[str]:
    """Every S-code cited in a record (not in its nested counties), in order."""
    flat = json.dumps({k: v for k, v in record.items() if k != "counties"}, ensure_ascii=False)
    return list(dict.fromkeys(_SOURCE.findall(flat)))


def name_status(status: str) -> str:
    if status.startswith("confirmed"):
        return "confirmed"
    if status.upper().startswith("UNCONFIRMED"):
        return "unconfirmed"
    return "inferred"


def add_unique(values: list[str], *items: str) -> None:
    for item in items:
        if item and item not in values:
            values.append(item)


def empty_names(full: str | None) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {
        "full": [],
        "short": [],
        "aliases": [],
        "former": [],
        "ambiguous": [],
    }
    if full:
        names["full"].append(full)
    return names


def partners(division: str, level: int) -> dict[str, dict[str, Any]]:
    """Partner agencies by pattern; level 0 region, 1 prefecture, 2 county."""
    return {
        kind: {"name": division + suffixes[level], "inferred": True}
        for kind, *suffixes in PARTNER_SUFFIXES
    }


def weibo(record: dict[str, Any], pattern_name: str | None) -> dict[str, Any]:
    """The handle: the divisions file's when it has one, else the @<short name>检察 pattern."""
    given = record.get("procuratorate_weibo")
    handle = given["handle"] if given else f"@{pattern_name}检察" if pattern_name else None
    if handle in VERIFIED_HANDLES:
        return {"handle": handle, "verified": True, "source": VERIFIED_HANDLES[handle]}
    if handle in ARTICLE_HANDLES:
        return {"handle": handle, "verified": False, "source": "article"}
    if given:
        raise SystemExit(
            f"handle {handle} in the divisions file is neither verified nor in the article"
        )
    return {"handle": handle, "verified": False, "source": "pattern"}


def base_unit(**fields: Any) -> Unit:
    """A unit with every key in the file's order."""
    keys = [
        "id", "name", "name_status", "division", "tier", "kind", "parent", "status",
        "jurisdiction_codes", "weibo", "names", "partners", "notes", "source",
    ]  # fmt: skip
    return {key: fields[key] for key in keys if key in fields}


# --------------------------------------------------------------------------- place names


def division_names(record: dict[str, Any]) -> tuple[dict[str, list[str]], list[str]]:
    """Names and notes of a division, from short / aliases_unverified / aliases_ambiguous."""
    names = empty_names(record["name"])
    notes: list[str] = []
    add_unique(names["short"], *(s for s in record.get("short", []) if s != record["name"]))
    for raw in record.get("aliases_ambiguous", []):
        name, note = split_note(raw)
        # The file lists 沙依巴克 here only to say it is *not* ambiguous.
        target = "short" if note and note.startswith("not ambiguous") else "ambiguous"
        add_unique(names[target], name)
    for raw in record.get("aliases_unverified", []):
        name, note = split_note(raw)
        if name.startswith("原县级"):
            # "原县级吐鲁番市": the old county-level city, whose name now means the prefecture.
            old = name.removeprefix("原县级")
            add_unique(names["ambiguous"], old, old.removesuffix("市"))
            notes.append(f"former county-level {old} ({note})")
            continue
        if note and note.startswith("former"):
            add_unique(names["former"], name)
            # "米泉 (former 米泉市 652303 ...)": the full former name too.
            if full := _FORMER_FULL.match(note):
                add_unique(names["former"], full[1])
        elif name != record["name"]:
            add_unique(names["aliases"], name)
        if note:
            notes.append(f"{name}: {note}")
    return names, notes


def apply_ambiguity(units: list[Unit], table: dict[str, list[str]]) -> None:
    """Move every name the divisions file calls ambiguous to names.ambiguous of each candidate;
    add notes for names that look ambiguous but have one meaning (伊州, 塔县, 巴州, 克州...)."""
    by_code = {c: u for u in units for c in u["jurisdiction_codes"]}
    for key, values in table.items():
        codes = [m[1] for v in values if (m := _CODE_AT_START.match(v))]
        if len(codes) >= 2:
            for code in codes:
                mark_ambiguous(by_code[code], key)
        elif len(codes) == 1:
            by_code[codes[0]]["notes"].append(f"{key}: {values[0]}")
        for value in values:
            # "克州 = 653000 克孜勒苏柯尔克孜自治州"
            if (m := re.match(r"^(\S+) = (\d{6}) (.*)$", value)) and m[2] in by_code:
                by_code[m[2]]["notes"].append(f"{m[1]} = {m[3]} ({key})")
    for name, codes_ in EXTRA_AMBIGUOUS.items():
        for code in codes_:
            mark_ambiguous(by_code[code], name)


def mark_ambiguous(unit: Unit, name: str) -> None:
    for kind in ("short", "aliases", "former"):
        if name in unit["names"][kind]:
            unit["names"][kind].remove(name)
    add_unique(unit["names"]["ambiguous"], name)


# --------------------------------------------------------------------------- units


def region_unit(region: dict[str, Any]) -> Unit:
    names = empty_names(region["name"])
    add_unique(names["short"], *region["short"])
    return base_unit(
        id="xj",
        name=region["procuratorate"]["name"],
        name_status="confirmed",
        division=region["name"],
        tier="region",
        kind="region",
        parent=None,
        jurisdiction_codes=[region["code"]],
        weibo=weibo({"procuratorate_weibo": {"handle": "@新疆检察"}}, None),
        names=names,
        partners=partners(region["name"], 0),
        notes=[],
        source=list(dict.fromkeys([region["code_source"], "S9", "S10"])),
    )


def prefecture_unit(record: dict[str, Any]) -> Unit:
    names, notes = division_names(record)
    procuratorate = record["procuratorate"]
    administered_by = record.get("administered_by")
    is_branch = procuratorate["name"].endswith("分院")
    if procuratorate["status"] not in ("inferred",):
        notes.append(f"procuratorate name: {procuratorate['status']}")
    if record.get("note"):
        notes.append(record["note"])
    return base_unit(
        id=record["code"],
        name=procuratorate["name"],
        name_status=name_status(procuratorate["status"]),
        division=record["name"],
        tier="prefecture",
        kind="branch" if is_branch else "prefecture",
        parent=administered_by["code"] if administered_by else "xj",
        jurisdiction_codes=[record["code"]],
        weibo=weibo(record, record["short"][0]),
        names=names,
        partners=partners(record["name"], 1),
        notes=notes,
        source=sources_in(record),
    )


def county_unit(record: dict[str, Any], parent: str) -> Unit:
    names, notes = division_names(record)
    name, name_note = split_note(record["procuratorate"])
    code = record["code"]
    unconfirmed = "S4" in record.get("code_source", "")
    if code in CONFIRMED_COUNTY_PROCURATORATES:
        status = "confirmed"
    elif name_note or unconfirmed:
        status = "unconfirmed"
    else:
        status = "inferred"
    for key in ("status", "established", "seat"):
        if record.get(key):
            notes.append(f"{key}: {record[key]}")
    notes.extend(record.get("notes", []))
    if name_note:
        notes.append(f"procuratorate: {name_note}")
    source = sources_in(record)
    add_unique(source, *([CONFIRMED_COUNTY_PROCURATORATES[code]] if status == "confirmed" else []))
    return base_unit(
        id=code,
        name=name,
        name_status=status,
        division=record["name"],
        tier="county",
        kind="county",
        parent=parent,
        status="unconfirmed" if unconfirmed else "active",
        jurisdiction_codes=[code],
        weibo=weibo(record, record["short"][0]),
        names=names,
        partners=partners(record["name"], 2),
        notes=notes,
        source=source,
    )


def xpcc_units(cities: list[dict[str, Any]]) -> list[Unit]:
    names = empty_names("新疆生产建设兵团")
    names["short"].append("兵团")
    root_partners = partners("新疆生产建设兵团", 1)
    root_partners["court"]["name"] = "新疆维吾尔自治区高级人民法院生产建设兵团分院"
    units = [
        base_unit(
            id="xpcc",
            name="新疆生产建设兵团人民检察院",
            name_status="confirmed",
            division="新疆生产建设兵团",
            tier="region",
            kind="xpcc",
            parent=None,
            jurisdiction_codes=[],
            weibo=weibo({}, "兵团"),
            names=names,
            partners=root_partners,
            notes=[
                "Root of the XPCC (兵团) procuratorate system, separate from the local matrix "
                "(S13); covers the region-direct cities through its children."
            ],
            source=["S13"],
        )
    ]
    units.extend(xpcc_city(city) for city in cities)
    return units


def xpcc_city(record: dict[str, Any]) -> Unit:
    names, notes = division_names(record)
    division = record["xpcc_division"]
    confirmed_division = division.startswith("第")
    prefix = f"{division}{record['name']}" if confirmed_division else record["name"]
    if confirmed_division:
        add_unique(names["aliases"], division)
    else:
        notes.append(f"xpcc_division: {division}")
    unconfirmed = "S4" in record.get("code_source", "")
    for key in ("status", "established", "seat", "geographic_area_unverified"):
        if record.get(key):
            notes.append(f"{key}: {record[key]}")
    city_partners = partners(prefix, 1)
    city_partners["court"]["name"] = (
        f"{division}中级人民法院" if confirmed_division else f"{record['name']}人民法院"
    )
    return base_unit(
        id=f"xpcc-{record['code']}",
        name=f"新疆生产建设兵团{prefix}人民检察院",
        name_status="unconfirmed" if unconfirmed else "inferred",
        division=record["name"],
        tier="prefecture",
        kind="xpcc",
        parent="xpcc",
        status="unconfirmed" if unconfirmed else "active",
        jurisdiction_codes=[record["code"]],
        weibo=weibo(record, record["short"][0]),
        names=names,
        partners=city_partners,
        notes=notes,
        source=sources_in(record),
    )


def railway_units() -> list[Unit]:
    return [
        base_unit(
            id=spec["id"],
            name=spec["name"],
            name_status="confirmed",
            division=None,
            tier=spec["tier"],
            kind="railway",
            parent=spec["parent"],
            jurisdiction_codes=[],
            weibo={"handle": None, "verified": False, "source": "none"},
            names=empty_names(None),
            partners={
                "police": {"name": spec["police"], "inferred": True},
                "court": {"name": spec["court"], "inferred": True},
            },
            notes=["No territorial jurisdiction: cases on railway lines, stations and trains."],
            source=spec["source"],
        )
        for spec in RAILWAY
    ]


def build_units(data: dict[str, Any]) -> list[Unit]:
    units = [region_unit(data["region"])]
    for prefecture in data["prefectures"]:
        units.append(prefecture_unit(prefecture))
        units.extend(county_unit(c, prefecture["code"]) for c in prefecture["counties"])
    units.extend(railway_units())
    units.extend(xpcc_units(data["region_direct_cities"]))
    apply_ambiguity(units, data["ambiguous_short_names"])
    return units


def check_counts(data: dict[str, Any], units: list[Unit]) -> None:
    """The counts the divisions file states must match what was built."""
    counts = data["counts"]
    tiers = {
        "prefecture_level": [u for u in units if u["kind"] in ("prefecture", "branch")],
        "county_level_under_prefectures_2025": [
            u for u in units if u["kind"] == "county" and u["status"] == "active"
        ],
        "region_direct_cities_2025": [
            u for u in units if u["kind"] == "xpcc" and u["parent"] and u["status"] == "active"
        ],
    }
    for key, found in tiers.items():
        if len(found) != counts[key]:
            raise SystemExit(f"counts.{key} is {counts[key]} but {len(found)} units were built")
    geographic = [u for u in units if u["kind"] in ("county", "xpcc") and u["parent"]]
    if len(geographic) != counts["county_level_mid_2026_if_S4_confirmed"]:
        raise SystemExit(f"{len(geographic)} county-level units, expected the mid-2026 count")
