"""Check corpus files against LABELS.md and print what they hold.

    python data/triage/check.py data/triage/test/*.jsonl

Standard library only, so a writer can run it anywhere. Exit code 1 when any line breaks a rule;
each problem is printed with its file, line and id.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
CATEGORIES = {
    "wage_arrears", "judicial_aid", "personal_injury", "urgent_assistance", "complaint_appeal",
    "crime_report", "public_interest", "legal_consultation", "minors", "other_agency",
    "not_appeal",
}  # fmt: skip
TAGS = {
    "figurative", "joke", "ad", "spam", "praise", "thanks", "news", "law_popularization",
    "about_procuratorate", "venting", "repeat", "follow_up", "repost", "other_matter",
    "traditional", "pinyin", "typo", "uyghur", "kazakh", "dialect", "emoji", "short", "long",
    "no_stock_words", "third_person", "past_danger", "negated",
}  # fmt: skip


def places() -> tuple[set[tuple[str | None, str | None]], set[str]]:
    """(every valid (prefecture, county) pair, every handle) from places.tsv."""
    pairs: set[tuple[str | None, str | None]] = {(None, None)}
    handles: set[str] = set()
    lines = (HERE / "places.tsv").read_text(encoding="utf-8").splitlines()[1:]
    for line in lines:
        cols = line.split("\t")
        prefecture, county, handle = (None if c == "-" else c for c in cols[3:6])
        pairs.add((prefecture, county))
        if prefecture:
            pairs.add((prefecture, None))
        if handle:
            handles.add(handle)
    return pairs, handles


def check_file(path: Path, pairs: set, handles: set, seen_ids: set[str]) -> tuple[list, list]:
    problems: list[str] = []
    posts: list[dict] = []
    by_id: dict[str, dict] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            post = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc.msg})")
            continue
        problems += [f"{where} {post.get('id')}: {p}" for p in check_post(post, pairs, handles)]
        pid = post.get("id")
        if pid in seen_ids:
            problems.append(f"{where} {pid}: id used twice")
        seen_ids.add(pid)
        by_id[pid] = post
        posts.append(post)
    for post in posts:
        target = (post.get("expect") or {}).get("follow_up_of")
        if target is None:
            continue
        first = by_id.get(target)
        if first is None:
            problems.append(f"{path.name} {post['id']}: follow_up_of {target} is not in this file")
            continue
        if first["created_at"] >= post["created_at"]:
            problems.append(f"{path.name} {post['id']}: follow_up_of {target} is not earlier")
        if (first.get("expect") or {}).get("follow_up_of"):
            problems.append(f"{path.name} {post['id']}: {target} is not the first post of its case")
        if first["author"]["id"] != post["author"]["id"] and "//@" not in post["text"]:
            problems.append(f"{path.name} {post['id']}: linked to another author but no //@ repost")
    return problems, posts


def check_post(post: dict, pairs: set, handles: set) -> list[str]:
    problems = []
    for key in ("id", "channel", "account", "author", "text", "created_at", "expect"):
        if key not in post:
            problems.append(f"no {key}")
    if problems:
        return problems
    if not isinstance(post["author"], dict) or not post["author"].get("id"):
        problems.append("author must be {id, name?}")
    if not 1 <= len(post["text"]) <= 5000:
        problems.append("text must be 1-5000 characters")
    if post["account"] not in handles:
        problems.append(f"unknown account {post['account']}")
    try:
        if datetime.fromisoformat(post["created_at"]).tzinfo is None:
            problems.append("created_at has no time zone")
    except ValueError:
        problems.append("created_at is not ISO 8601")
    e = post["expect"]
    for key in ("is_appeal", "urgent", "category", "follow_up_of"):
        if key not in e:
            problems.append(f"expect has no {key}")
    if problems:
        return problems
    if e["category"] not in CATEGORIES:
        problems.append(f"unknown category {e['category']}")
    if e["is_appeal"] != (e["category"] != "not_appeal"):
        problems.append("is_appeal must be false exactly for not_appeal")
    if e["urgent"] and not e["is_appeal"]:
        problems.append("an urgent post is an appeal")
    if e["is_appeal"]:
        if "prefecture" not in e or "county" not in e:
            problems.append("an appeal needs prefecture and county (null allowed)")
        elif (e["prefecture"], e["county"]) not in pairs:
            problems.append(f"no such place: prefecture {e['prefecture']} county {e['county']}")
    elif "prefecture" in e or "county" in e:
        problems.append("a non-appeal has no prefecture/county keys")
    bad_tags = set(post.get("tags", [])) - TAGS
    if bad_tags:
        problems.append(f"unknown tags {sorted(bad_tags)}")
    return problems


def main(paths: list[str]) -> int:
    pairs, handles = places()
    problems: list[str] = []
    posts: list[dict] = []
    seen: set[str] = set()
    for name in paths:
        found, read = check_file(Path(name), pairs, handles, seen)
        problems += found
        posts += read
    for problem in problems:
        print(problem)
    expects = [p["expect"] for p in posts if "expect" in p]
    categories = Counter(e.get("category") for e in expects)
    tags = Counter(t for p in posts for t in p.get("tags", []))
    print(f"{len(posts)} posts, {len(problems)} problems")
    share = categories["not_appeal"] / max(1, len(posts))
    print(
        f"non-appeals {categories['not_appeal']} ({share:.0%}),"
        f" urgent {sum(bool(e.get('urgent')) for e in expects)},"
        f" linked {sum(bool(e.get('follow_up_of')) for e in expects)}"
    )
    print("categories: " + ", ".join(f"{c} {n}" for c, n in categories.most_common()))
    print("tags: " + ", ".join(f"{t} {n}" for t, n in tags.most_common()))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
