"""The names people read for the codes the services speak (states, categories, time-limit
classes, return reasons), in both languages. A code without a name is shown as it is."""

from __future__ import annotations

_NAMES: dict[str, dict[str, tuple[str, str]]] = {
    "state": {
        "received": ("已受理", "received"),
        "acknowledged": ("已回应", "acknowledged"),
        "dispatched": ("已派单", "dispatched"),
        "accepted": ("已签收", "accepted"),
        "in_progress": ("办理中", "in progress"),
        "resolved": ("已办结", "resolved"),
        "callback_pending": ("待回访", "callback pending"),
        "closed": ("已结案", "closed"),
        "returned": ("已退单", "returned"),
        "coordinating": ("协调中", "coordinating"),
        "extended": ("已延期", "extended"),
        "reopened": ("重新办理", "reopened"),
        "merged": ("已合并", "merged"),
    },
    "category": {
        "wage_arrears": ("讨薪·劳务纠纷", "wage arrears"),
        "judicial_aid": ("司法救助", "judicial aid"),
        "personal_injury": ("人身伤害", "personal injury"),
        "urgent_assistance": ("紧急救助", "urgent assistance"),
        "complaint_appeal": ("控告申诉", "complaint or appeal"),
        "crime_report": ("举报报案", "crime report"),
        "public_interest": ("公益诉讼", "public interest"),
        "legal_consultation": ("法律咨询", "legal consultation"),
        "minors": ("未成年人保护", "minors"),
        "other_agency": ("其他部门事项", "another agency's matter"),
        "not_appeal": ("非诉求", "not an appeal"),
    },
    "urgency": {
        "urgent": ("紧急", "urgent"),
        "timely": ("及时", "timely"),
        "general": ("一般", "general"),
        "complex": ("复杂", "complex"),
        "possibly_urgent": ("疑似紧急", "possibly urgent"),
    },
    # The router's return reasons (services/router/data/returns.yaml).
    "return_reason": {
        "not_our_jurisdiction": ("不属本院管辖", "not our jurisdiction"),
        "outside_remit": ("不属检察职能", "outside the procuratorate's remit"),
        "duplicate": ("重复诉求", "a duplicate"),
        "insufficient_information": ("信息不足无法办理", "too little information to act"),
        "other": ("其他", "other"),
    },
    # 回复审核: the notifier's held replies (services/notifier/domain.py).
    "channel": {
        "comment": ("评论", "comment"),
        "private_message": ("私信", "private message"),
        "status": ("微博", "post on the account"),
    },
    "purpose": {
        "acknowledgment": ("受理回复", "acknowledgment"),
        "dispatch_announcement": ("转办告知", "dispatch notice"),
        "progress": ("进展告知", "progress"),
        "resolution": ("办结告知", "resolution"),
        "callback_question": ("回访", "callback question"),
        "extension_notice": ("延期告知", "extension notice"),
        "coordination_notice": ("协调告知", "coordination notice"),
    },
    "reply_status": {
        "sent": ("已发送", "sent"),
        "held": ("待审核", "held for review"),
        "failed": ("发送失败", "failed"),
    },
    "hold": {
        "category": ("敏感类别，须审核后发布", "a category whose replies need approval"),
        "urgent": ("紧急案件，须审核后发布", "an urgent case: replies need approval"),
        "confidence": ("分流把握不足，须审核后发布", "routed with low confidence"),
        "unknown_outcome": (
            "上次发送结果不明，请核实平台上是否已发布",
            "an earlier attempt's outcome is unknown: check the platform",
        ),
    },
}
LANG_INDEX = {"zh": 0, "en": 1}
RETURN_REASONS = tuple(_NAMES["return_reason"])


def name(kind: str, code: object, lang: str = "zh") -> str:
    """The name of `code` (a `kind` of code) in `lang`; "—" for none, the code when unknown."""
    if code is None or code == "":
        return "—"
    names = _NAMES.get(kind, {}).get(str(code))
    return names[LANG_INDEX.get(lang, 0)] if names else str(code)
