"""The README's example of the pytest plugin, exactly as printed there."""


def test_a_wage_arrears_appeal_is_dispatched_and_acknowledged(post_appeal, wait_for_case, platform):
    appeal = post_appeal("@新疆检察 博乐市的工地拖欠我们工资三个月了，求助", account="@新疆检察")
    case = wait_for_case(appeal, state="dispatched", timeout=90)
    assert case["chain"] == ["xj", "652700", "652701"]
    case = wait_for_case(appeal, where=lambda c: c["acknowledged"], timeout=60)
    replies = platform.replies_to(appeal.post_id)
    assert any(r["kind"] == "comment" and "已收到" in r["text"] for r in replies)
