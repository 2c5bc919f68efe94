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
    "mode": {
        "public_mention": ("公开转办", "public mention"),
        "private_message": ("私信转办", "private message"),
    },
    # The tracker's timeline (case.event's `event`).
    "event": {
        "case.opened": ("受理", "opened"),
        "case.acknowledged": ("已回复群众", "acknowledged"),
        "case.acknowledgment_overdue": ("回复超时", "acknowledgment overdue"),
        "case.dispatched": ("派单", "dispatched"),
        "case.dispatch_ignored": ("派单未生效", "dispatch ignored"),
        "case.coordination_requested": ("请求协办", "coordination requested"),
        "case.accepted": ("签收", "signed for"),
        "case.signing_overdue": ("签收超时", "signing overdue"),
        "case.progress": ("进展", "progress"),
        "case.progress_overdue": ("进展超时", "progress overdue"),
        "case.reminded": ("提醒", "reminded"),
        "case.chased": ("催办", "chased"),
        "case.escalated": ("上报督办", "escalated"),
        "case.supervision_ordered": ("督办令", "supervision ordered"),
        "case.extension_requested": ("申请延期", "extension requested"),
        "case.extended": ("批准延期", "extended"),
        "case.extension_refused": ("延期未批准", "extension refused"),
        "case.paused": ("追问群众(计时暂停)", "asked the citizen (clock paused)"),
        "case.resumed": ("恢复计时", "clock resumed"),
        "case.returned": ("退单", "returned"),
        "case.resolved": ("办结", "resolved"),
        "case.callback_asked": ("回访", "callback asked"),
        "case.closed": ("结案", "closed"),
        "case.reopened": ("重新办理", "reopened"),
        "case.follow_up": ("群众追问", "citizen followed up"),
        "case.merged": ("合并", "merged"),
        "case.event": ("事件", "event"),
    },
    # Why a post is in the triage queue (the router's Decision.review).
    "review": {
        "possibly_urgent": ("疑似紧急", "possibly urgent"),
        "uncertain_appeal": ("是否诉求存疑", "maybe not an appeal"),
        "uncertain_category": ("类别存疑", "category unsure"),
        "uncertain_place": ("地点存疑", "place unsure"),
        "no_place": ("未识别地点", "no place found"),
        "suggested_link": ("疑似重复诉求", "possibly a repeat"),
        "no_triage": ("未经分诊", "not triaged"),
    },
    # What the router's place evidence and the confidences are about.
    "evidence": {
        "text_place": ("文中地名", "a place in the text"),
        "geo": ("定位", "location"),
        "account": ("接收账号", "the account written to"),
        "residence": ("用户所在地", "the author's residence"),
        "fallback": ("默认", "default"),
        "rule": ("规则", "a rule"),
        "appeal": ("是否诉求", "appeal"),
        "urgent": ("紧急", "urgent"),
        "category": ("类别", "category"),
        "place": ("地点", "place"),
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
