"""Who may call which route of which service, and what a person may do to a case: the one
policy (issue 19, deliver 2).

`POLICY` names every route of every service (`service`, method, path as in its OpenAPI) with
the roles that may call it, or says why it is public. A service's app refuses to start with a
route the policy does not name (`Guard.audit`), and a request to one is refused (403); the
policy test walks every service's OpenAPI against this table (tests/service/test_policy.py).

The route's rule is checked before the endpoint runs: no credentials → 401, a role not
listed → 403. What depends on the case (which unit holds it, where it may go) is decided by the
functions below, called by the endpoints with the case in hand; a case the person's unit may
not see is answered 404, exactly like one that does not exist.

Who acted (`unit_id` and `person` of `unit.actions`, the `operator` of a reply's decision) is
always the identity's, never a field of the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fengqiao.auth.identity import Identity, Role

H, L, D = Role.HANDLER, Role.UNIT_LEAD, Role.DISPATCHER
REV, OPS, AUD = Role.REVIEWER, Role.OPS, Role.AUDITOR


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role] = frozenset()  # any of these; empty with public=False: anyone known
    public: str | None = None  # why no identity is asked (signed webhooks, health...)

    def allows(self, identity: Identity) -> bool:
        return not self.roles or identity.has(*self.roles)


def public(why: str) -> Rule:
    return Rule(public=why)


def roles(*allowed: Role) -> Rule:
    return Rule(roles=frozenset(allowed))


ANYONE = Rule()  # any authenticated person (who am I)
CASE_READERS = roles(H, L, D, REV, AUD, OPS)  # reads, scoped to the unit's subtree
WORKERS = roles(H, L)  # the unit's own work on its cases
LEADS = roles(L)
DISPATCHERS = roles(D)
FIGURES = roles(L, D, AUD, OPS)  # statistics and counts over many units
REVIEWERS = roles(REV)
REPLY_READERS = roles(REV, AUD, OPS)
TRIAGE_READERS = roles(D, AUD)
OPERATORS = roles(OPS)  # dead letters

# Every service has these (fengqiao.runtime.http and the AsyncAPI description).
_COMMON: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): public("liveness for the process supervisor; says nothing else"),
    ("GET", "/readyz"): public("readiness for the load balancer; names no case or person"),
    ("GET", "/metrics"): public("Prometheus scrape; counters only"),
    ("GET", "/asyncapi.json"): roles(OPS),  # topics
    ("GET", "/asyncapi"): roles(OPS),
}

_CASE = "/units/me/cases/{case_id}"
_WORKBENCH_ACTIONS = (
    "accept",
    "progress",
    "resolve",
    "return",
    "extension",
    "ask-citizen",
    "notes",
)
_TRIAGE_ACTIONS = ("confirm", "correct", "link", "unlink", "merge")

POLICY: dict[str, dict[tuple[str, str], Rule]] = {
    "intake": {
        ("POST", "/webhooks/generic/{source}"): public("signed: HMAC of the source's secret"),
        ("POST", "/webhooks/weibo/{account}"): public("signed: the platform's push signature"),
        ("GET", "/webhooks/weibo/{account}"): public("the platform's URL verification, signed"),
        ("GET", "/open311/v2/services.json"): public("Open311: the public service list"),
        ("POST", "/open311/v2/requests.json"): public("Open311: an api key per client"),
        ("GET", "/open311/v2/requests/{request_id}.json"): public(
            "Open311: a request's public status, by its unguessable id"
        ),
    },
    "router": {
        # Dispatchers above the holder; a unit lead whose unit holds a case after a return
        # (终审 kept it), within its subtree (`may_reassign`, `may_send_on`).
        ("POST", "/ops/cases/{case_id}/reassign"): roles(D, L),
        ("GET", "/ops/returns"): FIGURES,
        ("GET", "/triage/me"): ANYONE,
        ("GET", "/triage/units"): TRIAGE_READERS,
        ("GET", "/directory"): ANYONE,  # the matrix's units by name (its accounts are public)
        ("GET", "/triage/queue"): TRIAGE_READERS,
        ("GET", "/triage/queue/{item_id}"): TRIAGE_READERS,
        ("POST", "/triage/queue/{item_id}/confirm"): DISPATCHERS,
        ("POST", "/triage/queue/{item_id}/correct"): DISPATCHERS,
        # Dead letters (fengqiao/ops/http.py, hosted by the router): operators only.
        ("GET", "/ops/dead-letters"): OPERATORS,
        ("GET", "/ops/dead-letters/{letter_id}"): OPERATORS,
        ("POST", "/ops/dead-letters/{letter_id}/replay"): OPERATORS,
        ("POST", "/ops/dead-letters/{letter_id}/purge"): OPERATORS,
    },
    "tracker": {
        ("GET", "/units/me"): ANYONE,
        ("GET", "/units/me/cases"): CASE_READERS,
        ("GET", _CASE): CASE_READERS,
        ("POST", f"{_CASE}/accept"): WORKERS,
        ("POST", f"{_CASE}/progress"): WORKERS,
        ("POST", f"{_CASE}/resolve"): WORKERS,
        ("POST", f"{_CASE}/return"): WORKERS,
        ("POST", f"{_CASE}/extension"): WORKERS,
        ("POST", f"{_CASE}/extension/approve"): LEADS,
        ("POST", f"{_CASE}/extension/refuse"): LEADS,
        ("POST", f"{_CASE}/ask-citizen"): WORKERS,
        ("POST", f"{_CASE}/notes"): WORKERS,
        ("GET", "/ops/cases/{case_id}"): CASE_READERS,
        ("POST", "/ops/cases/{case_id}/merge"): DISPATCHERS,
        ("GET", "/ops/stats"): FIGURES,
        # The workbench's 督办 and 统计 (issue 19, deliver 5): over the caller's subtree.
        ("GET", "/ops/supervision"): FIGURES,
        ("GET", "/ops/stats/months"): FIGURES,
        # The public page (issue 19, deliver 6): aggregates per prefecture and month only.
        ("GET", "/public"): public("the public page: aggregates, cells under 5 suppressed"),
        ("GET", "/public/summary"): public("the public page's figures: aggregates only"),
    },
    "notifier": {
        ("GET", "/ops/replies/held"): REPLY_READERS,
        ("POST", "/ops/replies/{key}/approve"): REVIEWERS,
        ("POST", "/ops/replies/{key}/reject"): REVIEWERS,
    },
    # The workbench (issue 19, deliver 5): pages for people, each a client of the APIs above
    # with the person's session (which check again); only its login form is public.
    "workbench": {
        ("GET", "/login"): public("the login form: asks for a username and a password"),
        ("POST", "/login"): public("logging in: rate-limited, a CSRF token of its own"),
        ("GET", "/login/sso"): public("single sign-on: sends the browser to the IdP"),
        ("GET", "/login/sso/callback"): public("the IdP's answer: state, nonce and PKCE checked"),
        ("POST", "/logout"): ANYONE,
        ("GET", "/"): CASE_READERS,
        ("GET", "/cases/{case_id}"): CASE_READERS,
        **{("POST", f"/cases/{{case_id}}/{a}"): WORKERS for a in _WORKBENCH_ACTIONS},
        # 分诊: the triage queue (the router's /triage API and the tracker's merge)
        ("GET", "/triage"): TRIAGE_READERS,
        ("GET", "/triage/{item_id}"): TRIAGE_READERS,
        **{("POST", f"/triage/{{item_id}}/{a}"): DISPATCHERS for a in _TRIAGE_ACTIONS},
        # 回复审核: the notifier's held replies (read: REPLY_READERS; decide: REVIEWERS).
        ("GET", "/replies"): REPLY_READERS,
        ("POST", "/replies/{key}/approve"): REVIEWERS,
        ("POST", "/replies/{key}/reject"): REVIEWERS,
        # 组长裁决: a unit lead's rulings on a case (the tracker's and the router's checks).
        ("POST", "/cases/{case_id}/extension/approve"): LEADS,
        ("POST", "/cases/{case_id}/extension/refuse"): LEADS,
        ("POST", "/cases/{case_id}/reassign"): LEADS,
        # 运维: the router's dead letters (above), as the person.
        ("GET", "/ops"): OPERATORS,
        ("GET", "/ops/dead-letters/{letter_id}"): OPERATORS,
        ("POST", "/ops/dead-letters/{letter_id}/replay"): OPERATORS,
        ("POST", "/ops/dead-letters/{letter_id}/purge"): OPERATORS,
        # 督办 and 统计: the tracker's figures over the subtree (the same rule as its API's).
        ("GET", "/supervise"): FIGURES,
        ("GET", "/stats"): FIGURES,
    },
}


def rule_for(service: str, method: str, path: str) -> Rule | None:
    """The rule of a route (its path as declared, `{param}`s and all), or None: refused."""
    key = (method.upper(), path)
    return POLICY.get(service, {}).get(key) or _COMMON.get(key)


def unpoliced(service: str, routes: Iterable[tuple[str, str]]) -> list[str]:
    """The routes (method, path) of `service` that the policy does not name."""
    return [f"{m} {p}" for m, p in routes if rule_for(service, m, p) is None]


# ---------------------------------------------------------------------- case-level decisions


def sees(identity: Identity, chain: Sequence[str], co_units: Iterable[str] = ()) -> bool:
    """A person sees a case their unit leads, co-handles, or that lies below it (its unit is on
    the case's dispatch chain); never a sibling's or a parent's. A case no office has yet (no
    chain: waiting in triage) is the dispatchers' to see."""
    if not chain:
        return identity.has(Role.DISPATCHER)
    return identity.unit_id in chain or identity.unit_id in co_units


def may_reassign(
    identity: Identity, holder_chain: Sequence[str], target_chain: Sequence[str]
) -> bool:
    """Only a unit above the case's current holder (on its chain, not the holder itself) moves
    it, and only to a unit inside its own subtree (the target's chain passes through it)."""
    unit = identity.unit_id
    above_holder = unit in holder_chain[:-1]
    return above_holder and unit in target_chain


def may_send_on(
    identity: Identity, holder: str, returned_by: Sequence[str], target_chain: Sequence[str]
) -> bool:
    """A unit lead's ruling on a return: when their unit holds a case that a unit below it
    returned (`returned_by`: the chain of the unit of the last return; the 终审 kept the case
    with its parent), they send it on to a unit below their own, inside their subtree."""
    unit = identity.unit_id
    return (
        identity.has(Role.UNIT_LEAD)
        and holder == unit
        and unit in returned_by[:-1]
        and unit in target_chain[:-1]
    )


def may_merge(
    identity: Identity, case: tuple[Sequence[str], Iterable[str]],
    into: tuple[Sequence[str], Iterable[str]],
) -> bool:  # fmt: skip
    """Merging needs a person who sees both cases (each as (chain, co_units))."""
    return sees(identity, *case) and sees(identity, *into)
