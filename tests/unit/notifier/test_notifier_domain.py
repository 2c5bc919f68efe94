"""Rendering the reply templates and the content gate."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts import ReplyChannel, ReplyPurpose, ReplyRequested, ReplyTarget
from services.notifier.domain import LIMITS, TEMPLATES, ContentRefused, Renderer, gate

AT = datetime(2026, 8, 1, 10, tzinfo=UTC)
TARGET = ReplyTarget(platform="weibo", account="@新疆检察", user_id="u1", post_id="p1")
# Weibo links "@name" up to the next space or punctuation, as intake reads mentions.
MENTION = re.compile(r"@[\w\u4e00-\u9fff-]{1,30}")

VARIABLES = {
    "acknowledgment": {"account": "@新疆检察", "case_ref": "89abcdef"},
    "dispatch_announcement": {"to_handle": "@博乐检察", "case_ref": "89abcdef"},
    "resolution": {
        "case_ref": "89abcdef",
        "outcome": "拖欠的工资已全部追回",
        "account": "@博乐检察",
    },
}


def request(
    template_id: str,
    variables: dict[str, str],
    channel: ReplyChannel = ReplyChannel.COMMENT,
) -> ReplyRequested:
    return ReplyRequested(
        occurred_at=AT,
        producer="tracker",
        case_id="c-0123456789abcdef",
        purpose=ReplyPurpose.ACKNOWLEDGMENT,
        channel=channel,
        target=TARGET,
        template_id=template_id,
        variables=variables,
    )


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def test_every_template_has_its_variables_here() -> None:
    names = {p.name.split(".")[0] for p in TEMPLATES.glob("*.j2")}
    assert names == set(VARIABLES)


@pytest.mark.parametrize(
    ("template_id", "expected"),
    [
        (
            "acknowledgment",
            "您好，@新疆检察 已收到您的求助（编号89abcdef），正在转交有管辖权的检察院办理，"
            "办理进展会及时向您反馈。",
        ),
        (
            "dispatch_announcement",
            "@博乐检察 请接单：网友反映的问题（编号89abcdef）已派至贵院，请及时签收办理并反馈。",
        ),
        (
            "resolution",
            "您好，您反映的问题（编号89abcdef）已办结：拖欠的工资已全部追回。如有疑问请私信@博乐检察。",
        ),
    ],
)
def test_each_template_renders_with_its_variables(
    renderer: Renderer, template_id: str, expected: str
) -> None:
    text = renderer.render(request(template_id, VARIABLES[template_id]))
    assert text == expected
    assert gate(text, ReplyChannel.COMMENT) == text


@pytest.mark.parametrize("template_id", sorted(VARIABLES))
def test_mentions_in_a_reply_end_where_the_handle_ends(
    renderer: Renderer, template_id: str
) -> None:
    variables = VARIABLES[template_id]
    text = renderer.render(request(template_id, variables))
    handles = {v for v in variables.values() if v.startswith("@")}
    assert set(MENTION.findall(text)) == handles


@pytest.mark.parametrize("template_id", sorted(VARIABLES))
def test_a_missing_variable_refuses_the_content(renderer: Renderer, template_id: str) -> None:
    variables = dict(VARIABLES[template_id])
    missing = sorted(variables)[0]
    del variables[missing]
    with pytest.raises(ContentRefused, match=f"template {template_id}.comment.j2: '{missing}'"):
        renderer.render(request(template_id, variables))


def test_an_unknown_template_refuses_the_content(renderer: Renderer) -> None:
    with pytest.raises(ContentRefused, match=r"no template nope\.comment\.j2"):
        renderer.render(request("nope", {}))


def test_a_template_exists_per_channel(renderer: Renderer) -> None:
    # No private-message template is shipped yet: asking for one is refused, not guessed.
    with pytest.raises(ContentRefused, match=r"no template acknowledgment\.private_message\.j2"):
        renderer.render(
            request("acknowledgment", VARIABLES["acknowledgment"], ReplyChannel.PRIVATE_MESSAGE)
        )


def test_templates_come_from_the_directory_given(tmp_path: Path) -> None:
    (tmp_path / "hello.private_message.j2").write_text("你好 {{ name }}\n", encoding="utf-8")
    text = Renderer(tmp_path).render(
        request("hello", {"name": "网友"}, ReplyChannel.PRIVATE_MESSAGE)
    )
    assert text == "你好 网友"


def test_variables_are_not_html_escaped(renderer: Renderer) -> None:
    variables = {**VARIABLES["resolution"], "outcome": "A&B <已退款>"}
    assert "A&B <已退款>" in renderer.render(request("resolution", variables))


# --------------------------------------------------------------------------- the gate


@pytest.mark.parametrize(
    ("smuggled", "kind"),
    [
        ("请拨打13812345678", "phone"),
        ("请拨打138 1234 5678", "phone"),
        ("身份证11010519491231002X", "id_number"),
        ("退款到4111 1111 1111 1111", "bank_card"),
    ],
)
def test_private_data_smuggled_through_variables_is_refused(
    renderer: Renderer, smuggled: str, kind: str
) -> None:
    text = renderer.render(request("resolution", {**VARIABLES["resolution"], "outcome": smuggled}))
    with pytest.raises(ContentRefused, match=f"reply contains private data: {kind}"):
        gate(text, ReplyChannel.COMMENT)


def test_masked_private_data_passes() -> None:
    text = "电话138****5678的网友您好"
    assert gate(text, ReplyChannel.COMMENT) == text


def test_a_comment_may_have_140_characters() -> None:
    assert LIMITS[ReplyChannel.COMMENT] == 140
    assert gate("字" * 140, ReplyChannel.COMMENT) == "字" * 140


def test_a_longer_comment_is_refused() -> None:
    with pytest.raises(ContentRefused, match="reply is 141 characters; comment allows 140"):
        gate("字" * 141, ReplyChannel.COMMENT)


def test_a_private_message_may_have_300_characters() -> None:
    assert gate("字" * 300, ReplyChannel.PRIVATE_MESSAGE) == "字" * 300
    with pytest.raises(ContentRefused, match="reply is 301 characters; private_message allows 300"):
        gate("字" * 301, ReplyChannel.PRIVATE_MESSAGE)


def test_an_empty_reply_is_refused() -> None:
    with pytest.raises(ContentRefused, match="reply is empty"):
        gate("", ReplyChannel.COMMENT)
