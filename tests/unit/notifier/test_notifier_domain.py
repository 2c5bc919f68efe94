"""Rendering the reply templates, the content gate, fitting text to a channel, approvals."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fengqiao.contracts import ReplyChannel, ReplyPurpose, ReplyRequested, ReplyTarget
from fengqiao.services.notifier.domain import (
    LIMITS,
    MENTION,
    TEMPLATES,
    ContentPolicy,
    ContentRefused,
    Renderer,
    approval_reason,
    fit,
    gate,
    mentions_of,
    prepare,
)

AT = datetime(2026, 8, 1, 10, tzinfo=UTC)
TARGET = ReplyTarget(platform="weibo", account="@新疆检察", user_id="u1", post_id="p1")
COMMENT, PM, STATUS = ReplyChannel.COMMENT, ReplyChannel.PRIVATE_MESSAGE, ReplyChannel.STATUS
SAFE = ContentPolicy(safe_domain="fengqiao.example")

# What the tracker sends for each purpose (variables are strings, already masked).
VARIABLES: dict[str, dict[str, str]] = {
    "acknowledgment": {"account": "@新疆检察", "case_ref": "89abcdef"},
    "dispatch_announcement": {
        "account": "@新疆检察",
        "case_ref": "89abcdef",
        "unit_name": "乌鲁木齐市人民检察院",
        "to_handle": "@乌鲁木齐检察",
    },
    "progress": {
        "account": "@新疆检察",
        "case_ref": "89abcdef",
        "unit_name": "博乐市人民检察院",
        "note": "已联系用工单位，正在核实欠薪数额。",
    },
    "resolution": {
        "account": "@博乐检察",
        "case_ref": "89abcdef",
        "unit_name": "博乐市人民检察院",
        "outcome": "拖欠的工资已全部追回",
    },
    "callback_question": {
        "account": "@新疆检察",
        "case_ref": "89abcdef",
        "unit_name": "博乐市人民检察院",
    },
    "extension_notice": {
        "account": "@新疆检察",
        "case_ref": "89abcdef",
        "unit_name": "米东区人民检察院",
        "new_deadline": "2026-12-03 18:00",
    },
    "coordination_notice": {
        "account": "@新疆检察",
        "case_ref": "89abcdef",
        "partner_name": "博乐市公安局",
    },
}
# Every template shipped: purpose → its channels.
SHIPPED = {
    "acknowledgment": {COMMENT, PM},
    "dispatch_announcement": {COMMENT, PM},
    "progress": {COMMENT, PM},
    "resolution": {COMMENT, PM, STATUS},
    "callback_question": {PM},
    "extension_notice": {COMMENT, PM},
    "coordination_notice": {COMMENT, PM},
}
ALL = sorted((p, c) for p, channels in SHIPPED.items() for c in channels)
# Variables a template may go without.
OPTIONAL = {
    ("dispatch_announcement", COMMENT): {"to_handle"},
    ("resolution", COMMENT): {"unit_name"},
    ("resolution", PM): {"unit_name"},
}


def request(
    template_id: str, variables: dict[str, str], channel: ReplyChannel = COMMENT, **extra: object
) -> ReplyRequested:
    return ReplyRequested(
        occurred_at=AT,
        producer="tracker",
        case_id="c-0123456789abcdef",
        purpose=ReplyPurpose(template_id) if template_id in SHIPPED else ReplyPurpose.PROGRESS,
        channel=channel,
        target=TARGET,
        template_id=template_id,
        variables=variables,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def render(renderer: Renderer, template_id: str, channel: ReplyChannel, **changes: str) -> str:
    variables = {**VARIABLES[template_id], **changes}
    extra = {"link": "https://fengqiao.example/c/89abcdef"} if channel is STATUS else {}
    return renderer.render(request(template_id, variables, channel), **extra)


def test_every_purpose_has_templates_and_nothing_else_is_shipped() -> None:
    shipped = {tuple(p.name.split(".")[:2]) for p in TEMPLATES.glob("*.j2")}
    assert shipped == {(p, c.value) for p, c in ALL}
    assert set(SHIPPED) == {p.value for p in ReplyPurpose}


@pytest.mark.parametrize(("template_id", "channel"), ALL)
def test_each_template_renders_fits_its_channel_and_passes_the_gate(
    renderer: Renderer, template_id: str, channel: ReplyChannel
) -> None:
    text = render(renderer, template_id, channel)
    assert "编号89abcdef" in text
    assert "\n" not in text and "{" not in text
    assert len(text) <= LIMITS[channel]
    req = request(template_id, VARIABLES[template_id], channel)
    assert prepare(text, channel, SAFE, mentions_of(req)) == [text]
    source = (TEMPLATES / f"{template_id}.{channel.value}.j2").read_text(encoding="utf-8")
    for name, value in VARIABLES[template_id].items():
        if name in source and (template_id, channel, name) != (
            "dispatch_announcement",
            COMMENT,
            "unit_name",  # only when the unit has no handle
        ):
            assert value.rstrip("。") in text, name


@pytest.mark.parametrize(
    ("template_id", "channel", "expected"),
    [
        (
            "acknowledgment",
            COMMENT,
            "您好，@新疆检察 已收到您的求助（编号89abcdef），正在转交有管辖权的检察院办理，"
            "办理进展会及时向您反馈。",
        ),
        (
            "dispatch_announcement",
            COMMENT,
            "@乌鲁木齐检察 请接单：网友反映的问题（编号89abcdef）已派至贵院，"
            "请及时签收办理并反馈。",
        ),
        (
            "resolution",
            COMMENT,
            "您好，您反映的问题（编号89abcdef）已由博乐市人民检察院办结：拖欠的工资已全部追回。"
            "如有疑问请私信@博乐检察。",
        ),
        (
            "callback_question",
            PM,
            "您好，这里是@新疆检察。您反映的问题（编号89abcdef）已由博乐市人民检察院办结。"
            "请问您对办理结果是否满意？请回复数字：1 满意；2 基本满意；3 不满意。感谢您的支持！",
        ),
        (
            "extension_notice",
            COMMENT,
            "您好，您反映的问题（编号89abcdef）情况较为复杂，经上级批准，米东区人民检察院的办理期限"
            "延长至2026-12-03 18:00。我们会继续跟进并及时反馈。",
        ),
    ],
)
def test_what_the_public_reads(
    renderer: Renderer, template_id: str, channel: ReplyChannel, expected: str
) -> None:
    assert render(renderer, template_id, channel) == expected


def test_a_unit_without_a_handle_is_named(renderer: Renderer) -> None:
    for variables in (
        {**VARIABLES["dispatch_announcement"], "to_handle": ""},
        {k: v for k, v in VARIABLES["dispatch_announcement"].items() if k != "to_handle"},
    ):
        text = renderer.render(request("dispatch_announcement", variables))
        assert text.startswith("乌鲁木齐市人民检察院请接单：")
        assert MENTION.findall(text) == []


def test_an_older_request_without_unit_name_still_renders(renderer: Renderer) -> None:
    old = {"to_handle": "@博乐检察", "case_ref": "89abcdef"}
    assert renderer.render(request("dispatch_announcement", old)).startswith("@博乐检察 请接单")
    resolved = {"account": "@博乐检察", "case_ref": "89abcdef", "outcome": "已退款"}
    assert "问题（编号89abcdef）已办结：已退款。" in renderer.render(
        request("resolution", resolved)
    )


def test_a_sentence_end_in_a_variable_is_not_doubled(renderer: Renderer) -> None:
    text = render(renderer, "resolution", COMMENT, outcome="工资已追回。")
    assert "工资已追回。如有疑问" in text


@pytest.mark.parametrize(("template_id", "channel"), [pc for pc in ALL if pc[1] is not STATUS])
def test_a_missing_required_variable_is_a_refusal_naming_it(
    renderer: Renderer, template_id: str, channel: ReplyChannel
) -> None:
    optional = OPTIONAL.get((template_id, channel), set())
    required = [v for v in VARIABLES[template_id] if v not in optional]
    used = [
        v for v in required if v in (TEMPLATES / f"{template_id}.{channel.value}.j2").read_text()
    ]
    assert used
    for missing in used:
        variables = {k: v for k, v in VARIABLES[template_id].items() if k != missing}
        if (template_id, channel) == ("dispatch_announcement", COMMENT):
            variables.pop("to_handle")  # then the unit's name is required
        with pytest.raises(ContentRefused, match=f"{template_id}.{channel.value}.j2: '{missing}'"):
            renderer.render(request(template_id, variables, channel))


def test_an_unknown_template_refuses_the_content(renderer: Renderer) -> None:
    with pytest.raises(ContentRefused, match=r"no template nope\.comment\.j2"):
        renderer.render(request("nope", {}))


def test_no_public_satisfaction_question(renderer: Renderer) -> None:
    with pytest.raises(ContentRefused, match=r"no template callback_question\.comment\.j2"):
        renderer.render(request("callback_question", VARIABLES["callback_question"]))


def test_templates_come_from_the_directory_given(tmp_path: Path) -> None:
    (tmp_path / "hello.private_message.j2").write_text("你好 {{ name }}\n", encoding="utf-8")
    text = Renderer(tmp_path).render(request("hello", {"name": "网友"}, PM))
    assert text == "你好 网友"


def test_variables_are_not_html_escaped_nor_templates(renderer: Renderer) -> None:
    text = render(renderer, "resolution", COMMENT, outcome="A&B <已退款> {{ account }}")
    assert "A&B <已退款> {{ account }}" in text


# --------------------------------------------------------------------------- the gate


@pytest.mark.parametrize(
    ("smuggled", "kind"),
    [
        ("请拨打13812345678", "phone"),
        ("请拨打138 1234 5678", "phone"),
        ("请拨打+86-138-1234-5678", "phone"),
        ("请拨打１３８１２３４５６７８", "phone"),  # full-width digits
        ("请拨打138\u200b1234\u200b5678", "phone"),  # zero-width spaces
        ("请拨打138.1234.5678", "phone"),
        ("身份证11010519491231002X", "id_number"),
        ("身份证110105 19491231 002X", "id_number"),
        ("退款到4111 1111 1111 1111", "bank_card"),
        ("退款到4111-1111-1111-1111", "bank_card"),
    ],
)
@pytest.mark.parametrize(
    ("template_id", "variable"), [("resolution", "outcome"), ("progress", "note")]
)
def test_private_data_smuggled_through_variables_is_refused(
    renderer: Renderer, smuggled: str, kind: str, template_id: str, variable: str
) -> None:
    for channel in (COMMENT, PM):
        text = render(renderer, template_id, channel, **{variable: smuggled})
        with pytest.raises(ContentRefused, match=f"reply contains private data: .*{kind}"):
            prepare(text, channel, SAFE, {"@新疆检察", "@博乐检察"})


def test_private_data_in_a_template_is_refused(tmp_path: Path) -> None:
    (tmp_path / "hotline.comment.j2").write_text("请致电13812345678咨询", encoding="utf-8")
    text = Renderer(tmp_path).render(request("hotline", {}))
    with pytest.raises(ContentRefused, match="private data: phone"):
        prepare(text, COMMENT, SAFE)


def test_masked_private_data_and_ordinary_numbers_pass() -> None:
    for text in ("电话138****5678的网友您好", "编号89abcdef，2026-12-03 18:00前办结，涉及12000元"):
        assert prepare(text, COMMENT, SAFE) == [text]


@pytest.mark.parametrize("written", ["维稳", "维 稳", "维\u200b稳", "ＷＥＩＷＥＮ", "weiwen"])
def test_sensitive_words_are_refused_however_they_are_written(written: str) -> None:
    policy = ContentPolicy(sensitive_words=("维稳", "WeiWen"))
    with pytest.raises(ContentRefused, match="sensitive word"):
        prepare(f"您好，关于{written}的问题已转交。", COMMENT, policy)


def test_a_variable_may_not_mention_anyone_the_request_does_not(renderer: Renderer) -> None:
    text = render(renderer, "progress", COMMENT, note="已转@某大V 处理")
    with pytest.raises(ContentRefused, match="reply mentions @某大V, which the request does not"):
        prepare(text, COMMENT, SAFE, {"@新疆检察"})
    # In a private message nobody is notified by an @.
    assert prepare(render(renderer, "progress", PM, note="已转@某大V 处理"), PM, SAFE, set())


def test_links_in_public_replies_stay_on_the_safe_domain(renderer: Renderer) -> None:
    bad = render(renderer, "progress", COMMENT, note="详见 http://evil.example/x")
    with pytest.raises(ContentRefused, match=r"links outside the safe domain: evil\.example"):
        prepare(bad, COMMENT, SAFE, {"@新疆检察"})
    good = render(renderer, "progress", COMMENT, note="详见 https://www.fengqiao.example/c/1")
    assert prepare(good, COMMENT, SAFE, {"@新疆检察"}) == [good]


def test_a_shared_status_needs_a_safe_link_and_no_topic(renderer: Renderer) -> None:
    text = render(renderer, "resolution", STATUS)
    assert text.endswith("详情 https://fengqiao.example/c/89abcdef")
    assert prepare(text, STATUS, SAFE, {"@博乐检察"}) == [text]
    with pytest.raises(ContentRefused, match="may not carry a #话题#"):
        prepare(
            render(renderer, "resolution", STATUS, outcome="#新疆检察政在做# 已办结"), STATUS, SAFE
        )
    no_link = renderer.render(request("resolution", VARIABLES["resolution"], STATUS), link="")
    with pytest.raises(ContentRefused, match="needs a link on the safe domain"):
        prepare(no_link, STATUS, SAFE)


def test_an_empty_reply_is_refused() -> None:
    with pytest.raises(ContentRefused, match="reply is empty"):
        prepare("  ", COMMENT, SAFE)
    with pytest.raises(ContentRefused, match="reply is empty"):
        gate("", COMMENT)


def test_gate_checks_one_message_as_it_is() -> None:
    assert gate("字" * 140, COMMENT) == "字" * 140
    with pytest.raises(ContentRefused, match="reply is 141 characters; comment allows 140"):
        gate("字" * 141, COMMENT)
    with pytest.raises(ContentRefused, match="reply is 301 characters; private_message allows 300"):
        gate("字" * 301, PM)


# --------------------------------------------------------------------------- fitting


def test_a_long_comment_is_shortened_at_a_sentence_end() -> None:
    text = "第一句话说明情况。" * 10 + "第二部分" * 20
    [short] = fit(text, COMMENT, 140)
    assert len(short) <= 140 and short.endswith("。")
    assert text.startswith(short)


def test_a_long_comment_without_sentence_ends_is_cut_with_an_ellipsis() -> None:
    [short] = fit("字" * 200, COMMENT, 140)
    assert short == "字" * 139 + "…"


def test_a_cut_never_leaves_half_a_handle() -> None:
    text = "字" * 135 + "请@乌鲁木齐检察 跟进"
    [short] = fit(text, COMMENT, 140)
    assert short == "字" * 135 + "请…"


def test_a_long_private_message_is_split_at_sentence_ends() -> None:
    text = "这是一句完整的话，说明办理情况。" * 40
    parts = fit(text, PM, 300)
    assert len(parts) == 3
    assert all(len(p) <= 300 and p.endswith("。") for p in parts)
    assert "".join(parts) == text


def test_what_fits_is_left_alone() -> None:
    assert fit("  您好。 ", COMMENT, 140) == ["您好。"]


# --------------------------------------------------------------------------- approvals


def test_held_categories_and_urgent_cases_need_approval() -> None:
    policy = ContentPolicy(hold_categories=frozenset({"crime_report"}), hold_urgent=True)
    ack = VARIABLES["acknowledgment"]
    assert approval_reason(request("acknowledgment", ack), policy) is None
    assert approval_reason(request("acknowledgment", ack, category="wage_arrears"), policy) is None
    assert approval_reason(request("acknowledgment", ack, category="crime_report"), policy) == (
        "category crime_report needs an operator's approval"
    )
    assert approval_reason(request("acknowledgment", ack, urgent=True), policy) == (
        "urgent case: replies need an operator's approval"
    )
    assert approval_reason(request("acknowledgment", ack, urgent=True), ContentPolicy()) is None


def test_replies_of_a_case_routed_without_confidence_need_approval() -> None:
    policy = ContentPolicy(hold_below_confidence=0.6)
    ack = VARIABLES["acknowledgment"]
    assert approval_reason(request("acknowledgment", ack), policy) is None  # not routed yet
    assert approval_reason(request("acknowledgment", ack, confidence=0.8), policy) is None
    assert approval_reason(request("acknowledgment", ack, confidence=0.4), policy) == (
        "routed with confidence 0.40: replies need an operator's approval"
    )
    assert approval_reason(request("acknowledgment", ack, confidence=0.4), ContentPolicy()) is None
