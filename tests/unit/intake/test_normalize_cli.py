"""`fengqiao normalize`: JSON lines in, normalized posts out; bad lines named, never a traceback."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fengqiao.services.intake.cli import run

NOW = datetime(2026, 8, 1, 10, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]
WAGES = "我在博乐市工地干活，老板拖欠工资三个月了，求助"


def line(**fields: Any) -> bytes:
    post = {"id": "1", "channel": "weibo", "account": "@新疆检察", "author": "u1", "text": WAGES}
    post.update(fields)
    return json.dumps(post).encode() + b"\n"


def normalize(data: bytes, **kwargs: Any) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    out, err = io.StringIO(), io.StringIO()
    code = run(io.BytesIO(data), out, err, now=NOW, **kwargs)
    return (
        code,
        [json.loads(x) for x in out.getvalue().splitlines()],
        [json.loads(x) for x in err.getvalue().splitlines()],
    )


def test_a_post_is_normalized() -> None:
    code, [post], errors = normalize(
        line(text="@新疆检察 #讨薪# 工資被拖欠 电话１３８１２３４５６７８ https://t.cn/x 😭")
    )
    assert (code, errors) == (0, [])
    triage = {k: post.pop(k) for k in ("urgent", "category", "review", "reasons", "link_reason")}
    assert post == {
        "id": "1",
        "text": "@新疆检察 #讨薪# 工资被拖欠 电话13812345678 https://t.cn/x 😭",
        "mentions": ["新疆检察"],
        "hashtags": ["讨薪"],
        "urls": ["https://t.cn/x"],
        "emoji": ["😭"],
        "pii": ["phone"],
        "masked_text": "@新疆检察 #讨薪# 工资被拖欠 电话138****5678 https://t.cn/x 😭",
        "lang": "zh",
        "is_appeal": True,
        "duplicate_of": None,
        "follow_up_of": None,
    }
    # Triage's labels beside them, and why (the model's figures first).
    assert (triage["urgent"], triage["category"], triage["link_reason"]) == (
        False,
        "wage_arrears",
        None,
    )
    assert triage["reasons"][0].startswith("appeal ")
    assert set(triage["review"]) <= {"uncertain_appeal", "uncertain_category"}


def test_duplicates_name_the_earlier_line() -> None:
    data = (
        line(id="a", text=f"@新疆检察 {WAGES}")
        + line(id="b", author="u2", text=WAGES)
        + line(id="c", account="@博乐检察", text=f"@博乐检察 {WAGES}!!")
        + line(id="d", text="还没人联系我")
        + line(id="e", text="为你们点赞")
    )
    code, posts, _ = normalize(data)
    assert code == 0
    assert [(p["id"], p["duplicate_of"], p["follow_up_of"]) for p in posts] == [
        ("a", None, None),
        ("b", None, None),  # another author
        ("c", "a", "a"),
        ("d", None, "a"),
        ("e", None, "a"),  # the author's thanks join their case, as no appeal
    ]
    assert posts[3]["link_reason"] == "refers back (还没人), the latest case"
    assert posts[4]["link_reason"] == "thanks after (点赞)"
    assert posts[-1]["is_appeal"] is False


def test_a_repeated_id_is_a_re_send_with_the_same_answer() -> None:
    code, posts, _ = normalize(line(id="a") + line(id="b") + line(id="b"))
    assert code == 0
    assert posts[1] == posts[2]
    assert posts[1]["duplicate_of"] == "a"


def test_author_and_geo_forms() -> None:
    code, posts, errors = normalize(
        line(author={"id": "u1", "name": "网友"}, geo={"lat": 44.9, "lon": 82.07})
    )
    assert (code, errors, len(posts)) == (0, [], 1)


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        (b"not json\n", None, "not JSON"),
        (b"[1, 2]\n", None, "not a JSON object"),
        (b"\xff\xfe{}\n", None, "not UTF-8"),
        (b"[" * 60_000 + b"\n", None, "not JSON"),
        (line(text=""), "text", "at least 1"),
        (line(text="x" * 5001), "text", "at most 5000"),
        (line(channel="Weibo!"), "channel", "pattern"),
        (line(author={"name": "no id"}), "author.id", "Field required"),
        (line(author=5), "author", "dictionary"),
        (line(geo={"lat": 91, "lon": 0}), "geo.lat", "less than or equal"),
        (line(geo={"lat": float("nan"), "lon": 0}), "geo.lat", "finite"),
        (line(id="\ud800"), "id", "unicode"),
        (line(text="\ud83d"), "text", "unicode"),
        (line(created_at="yesterday"), "created_at", "datetime"),
        (line(created_at="2026-08-01T10:00:00"), "created_at", "timezone"),
        (b'{"id": 1e99999, "text": 12345678901234567890}\n', "id", "string"),
    ],
)
def test_bad_lines_are_named_and_refused(data: bytes, field: str | None, error: str) -> None:
    code, posts, errors = normalize(data)
    assert code == 1
    assert posts == []
    assert errors[0]["line"] == 1
    assert errors[0]["field"] == field
    assert error in errors[0]["error"]


def test_errors_never_echo_the_text() -> None:
    _, _, errors = normalize(line(text="电话13812345678 " * 400, channel="BAD"))
    assert errors
    assert all("13812345678" not in json.dumps(e) for e in errors)


def test_good_lines_go_on_after_bad_ones_and_the_exit_code_says_so() -> None:
    code, posts, errors = normalize(line(id="a") + b"{oops\n" + b"\n" + line(id="c", author="u9"))
    assert code == 1
    assert [p["id"] for p in posts] == ["a", "c"]
    assert [e["line"] for e in errors] == [2]


def test_an_oversized_line_is_refused_without_being_read_whole() -> None:
    big = line(text="工资" * 2000)  # about 12 KB
    code, posts, errors = normalize(
        line(id="a") + big + line(id="c", author="u2"), max_line_bytes=4096
    )
    assert code == 1
    assert [p["id"] for p in posts] == ["a", "c"]
    assert errors == [{"line": 2, "field": None, "error": "line longer than 4096 bytes"}]


def test_an_oversized_last_line_without_newline() -> None:
    code, posts, errors = normalize(b"x" * 10_000, max_line_bytes=100)
    assert (code, posts, [e["line"] for e in errors]) == (1, [], [1])


def test_a_line_of_exactly_the_limit_is_taken() -> None:
    data = line()
    code, posts, _ = normalize(data, max_line_bytes=len(data) - 1)
    assert (code, len(posts)) == (0, 1)


@pytest.mark.parametrize(
    "text",
    [
        "\u202e\u200b\u0000\u061c" * 50 + "救命",
        "<script>alert(1)</script> '; DROP TABLE x; --",
        "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f" * 20,
        "#" * 3000,
        "@" * 3000,
        "//@" * 1000,
        "[赞]" * 1000,
        "https://" + "a" * 4000,
    ],
)
def test_hostile_text_is_normalized_not_crashed_on(text: str) -> None:
    code, posts, errors = normalize(line(text=text))
    assert errors == [] and code == 0
    [post] = posts
    assert "\u202e" not in post["text"] and "\u0000" not in post["text"]
    json.dumps(post, ensure_ascii=False).encode("utf-8")


def test_empty_input_is_fine() -> None:
    assert normalize(b"") == (0, [], [])


def test_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fengqiao.cli", "normalize"],
        input=line(id="a") + b"garbage\n",
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout.decode())["id"] == "a"
    assert json.loads(result.stderr.decode()) == {
        "line": 2,
        "field": None,
        "error": "not JSON: JSONDecodeError",
    }
