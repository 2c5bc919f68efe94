"""Build the router's directory of units from the divisions file.

    python scripts/build_directory.py ../shared/data/xinjiang-divisions.json
    python scripts/build_directory.py ../shared/data/xinjiang-divisions.json --check

Writes ``services/router/data/directory.yaml`` and ``directory.schema.json``; ``--check`` only
compares them with what would be written (exit 1 when stale). The output is deterministic, so
rerunning it on the same input changes nothing. The result is loaded with the project's own
validating loader before anything is written.

What is taken from the divisions file and what is inferred here is listed in ``INFERRED`` and
copied into the YAML's ``system.inferred``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a plain script from a checkout

from fengqiao.services.router.directory import (  # noqa: E402
    DirectoryError,
    directory_json_schema,
    parse_directory,
)

DATA = ROOT / "services" / "router" / "data"
Unit = dict[str, Any]

# Handles domain.md (and the sources behind it) confirm; the only ones marked verified.
VERIFIED_HANDLES = {
    "@新疆检察": "S9",
    "@博州检察": "S10",
    "@博乐检察": "S11",
    "@喀什检察": "S11",
    "@伽师检察": "S11",
}
# Named in the article (S9) as matrix accounts, but whose owner is not confirmed.
ARTICLE_HANDLES = {"@乌鲁木齐检察", "@米东检察"}

# County procuratorates whose existence a source confirms (the divisions file's notes).
CONFIRMED_COUNTY_PROCURATORATES = {
    "652701": "S11",
    "653129": "S11",
    "654201": "S20",
    "654021": "S19",
}

# "阿地区" is listed as ambiguous without codes ("阿克苏地区 or 阿勒泰地区 - ask").
EXTRA_AMBIGUOUS = {"阿地区": ("652900", "654300")}

DEPARTMENTS = [
    ("criminal", "刑事检察"),
    ("civil", "民事检察"),
    ("administrative", "行政检察"),
    ("public_interest", "公益诉讼检察"),
    ("complaints", "控告申诉检察"),
    ("minors", "未成年人检察"),
    ("service_center", "12309检察服务中心"),
]

# Partner agencies by level: (kind, suffix at region level, suffix at prefecture, at county).
PARTNER_SUFFIXES = [
    ("police", "公安厅", "公安局", "公安局"),
    ("court", "高级人民法院", "中级人民法院", "人民法院"),
    ("labour_inspection", "劳动保障监察总队", "劳动保障监察支队", "劳动保障监察大队"),
    ("human_resources", "人力资源和社会保障厅", "人力资源和社会保障局", "人力资源和社会保障局"),
    ("culture_tourism", "文化和旅游厅", "文化体育广播电视和旅游局", "文化体育广播电视和旅游局"),
    ("health", "卫生健康委员会", "卫生健康委员会", "卫生健康委员会"),
    ("housing", "住房和城乡建设厅", "住房和城乡建设局", "住房和城乡建设局"),
    ("civil_affairs", "民政厅", "民政局", "民政局"),
    ("market_regulation", "市场监督管理局", "市场监督管理局", "市场监督管理局"),
]

RAILWAY = [
    {
        "id": "railway-urumqi",
        "name": "乌鲁木齐铁路运输检察分院",
        "tier": "prefecture",
        "parent": "xj",
        "police": "乌鲁木齐铁路公安局",
        "court": "乌鲁木齐铁路运输中级法院",
        "source": ["S16"],
    },
    {
        "id": "railway-urumqi.urumqi",
        "name": "乌鲁木齐铁路运输检察院",
        "tier": "county",
        "parent": "railway-urumqi",
        "police": "乌鲁木齐铁路公安处",
        "court": "乌鲁木齐铁路运输法院",
        "source": ["S17"],
    },
    {
        "id": "railway-urumqi.korla",
        "name": "库尔勒铁路运输检察院",
        "tier": "county",
        "parent": "railway-urumqi",
        "police": "库尔勒铁路公安处",
        "court": "库尔勒铁路运输法院",
        "source": ["S18"],
    },
]

TREE = [
    "xj (新疆维吾尔自治区人民检察院, kind region) is the root of the local matrix.",
    "Prefecture-level units hang under xj. 阿克苏, 喀什 and 和田 (地区) are kind branch: 分院 of "
    "the regional procuratorate (喀什 confirmed S11, 阿克苏 partly S12, 和田 by analogy).",
    "塔城地区 (654200) and 阿勒泰地区 (654300) are kind branch, tier prefecture, parent 654000: "
    "branches of the 伊犁州 procuratorate (伊犁州 is 副省级, S6). Their counties hang under the "
    "branch, so 塔城市's chain is xj → 654000 → 654200 → 654201.",
    "County-level units hang under their prefecture-level unit; 伊犁州直 counties under 654000.",
    "xpcc (新疆生产建设兵团人民检察院, kind xpcc, tier region) is a second root; the region-direct "
    "cities run with XPCC divisions (师市合一) hang under it as xpcc-<code>, tier prefecture "
    "(the 师-level procuratorate of the city).",
    "railway-urumqi (乌鲁木齐铁路运输检察分院, kind railway, tier prefecture) hangs under xj with "
    "its basic railway procuratorates below it; railway units have no jurisdiction codes.",
]

INFERRED = [
    "Procuratorate names follow the standard pattern '<division>人民检察院' unless name_status is "
    "confirmed; 分院 names of 阿克苏/和田 are by analogy with 喀什; the 塔城/阿勒泰 branch names "
    "are unconfirmed.",
    "Weibo handles other than the verified ones follow the pattern @<short name>检察 "
    "(weibo.source 'pattern') and are unverified; @乌鲁木齐检察 and @米东检察 are named in the "
    "article (weibo.source 'article') but unverified. Railway units have no handle.",
    "Partner agencies are generated from name patterns (partners.*.inferred true).",
    "Departments are one default list for all units, not per-unit facts.",
    "XPCC city procuratorate names ('新疆生产建设兵团<师><city>人民检察院') and their place at "
    "tier prefecture are inferred (example: 第三师图木舒克市检察院, S15).",
    "The railway tree (分院 under xj; 乌鲁木齐 and 库尔勒 railway procuratorates under the 分院) "
    "is inferred from S16-S18; other railway procuratorates may exist.",
    "岑岭县 (653132) and 草湖市 (659013) come from secondary sources only (S4): "
    "status unconfirmed.",
    "和康县 and 和安县 (2024) are confirmed divisions, but their own procuratorates are not: they "
    "may still be served by 皮山县 / 和田县 procuratorates (name_status unconfirmed).",
    "The article counts 119 matrix accounts (S9); this directory lists one unit per division "
    "plus XPCC and railway units, so the numbers differ.",
]

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


# --------------------------------------------------------------------------- output


class _Dumper(yaml.SafeDumper):
    """Block style for units, flow style for short lists and small flat mappings."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_short(data))


def _represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    flow = _short([*data, *data.values()])
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


def _short(values: list[Any]) -> bool:
    """Scalars that fit on one line read best in flow style."""
    scalars = all(isinstance(v, str | int | bool) or v is None for v in values)
    return scalars and sum(len(str(v)) for v in values) <= 72


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(dict, _represent_dict)


def render(data: dict[str, Any], units: list[Unit]) -> str:
    document = {
        "schema_version": 1,
        "system": {
            "name": "新疆检察 Weibo matrix (fengqiao directory of units)",
            "description": "Procuratorates of the three-tier matrix (region → prefecture → "
            "county), the XPCC and railway procuratorates, with handles, place names, "
            "departments and partner agencies.",
            "generator": "scripts/build_directory.py",
            "generated_from": f"xinjiang-divisions.json (generated {data['generated']})",
            "as_of": data["as_of"],
            "matrix_accounts_reported": 119,
            "tree": TREE,
            "inferred": INFERRED,
            "sources": {
                k: {"what": v["what"], "url": v.get("url")} for k, v in data["sources"].items()
            },
        },
        "default_departments": [{"id": i, "name": n} for i, n in DEPARTMENTS],
        "units": units,
    }
    header = (
        "# Generated by scripts/build_directory.py from xinjiang-divisions.json; do not edit by\n"
        "# hand: change the generator or its input and rerun it. Schema: directory.schema.json.\n"
    )
    body = yaml.dump(document, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)
    return header + body


def render_schema() -> str:
    return json.dumps(directory_json_schema(), indent=2, ensure_ascii=False) + "\n"


def outputs(divisions: Path) -> dict[Path, str]:
    data = json.loads(divisions.read_text(encoding="utf-8"))
    units = build_units(data)
    check_counts(data, units)
    text = render(data, units)
    try:
        parse_directory(text, origin="directory.yaml (generated)")
    except DirectoryError as exc:
        raise SystemExit(f"the generated directory does not validate:\n{exc}") from None
    return {DATA / "directory.yaml": text, DATA / "directory.schema.json": render_schema()}


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("divisions", type=Path, help="path of xinjiang-divisions.json")
    parser.add_argument("--check", action="store_true", help="only check the files are current")
    args = parser.parse_args(None if argv is None else list(argv))
    stale = []
    for path, text in outputs(args.divisions).items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
