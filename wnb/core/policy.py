"""Who may do what (issue 11): one table of actions and the roles allowed, checked by `Service` for every action.

The API, the pages, the CLI, the MLLP listener and the inbox all ask this module, so none can allow what
another refuses. A caller is a `Principal`: a client system (by API key), a person (by password, or a CLI
`--by` naming an enabled account) or wnb itself (`system`: the operator's shell, the scheduler, the inbox,
the MLLP listener, scenarios and simulations). Beyond the role, two things narrow what is allowed:

- a task is acted on only by its current owner role, the role that first owned it, the safeguarding lead
  and an administrator;
- a client key writes only for the sources it is bound to (`wnb keys create --source`, `wnb keys bind`),
  and writes safeguarding context only when bound for it (`--context`); an administrator writes for any.

`ENTRY_POINTS` names the action behind every route and CLI command; a test walks the app and the CLI and
fails on one missing here. `markdown_table()` is the README's table.

Over 400 lines on purpose: the two tables (what each role may do, and the action behind every way in) and the
checks that read them are the whole authorisation policy, which a reviewer reads in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wnb.core.domain import Role
from wnb.core.errors import Forbidden


class Kind(StrEnum):
    CLIENT = "client"  # a client system, by API key
    USER = "user"  # a person, by password (or a CLI --by naming their enabled account)
    SYSTEM = "system"  # wnb itself: the operator's shell, the scheduler, the inbox, the MLLP listener


@dataclass(frozen=True)
class Principal:
    """Who is calling: their kind, name and role, and for a client key what it is bound to write."""

    kind: str  # a Kind
    name: str
    role: Role | None = None  # None only for wnb itself (system)
    sources: frozenset[str] | None = None  # a client key's event sources; None: never bound (made before issue 11)
    writes_context: bool = False  # a client key bound to write safeguarding context (the child register)
    recipient: str | None = None  # a partner key's recipient (an ODS code): it acknowledges that one's messages
    via: str | None = None  # how a person came: "cli" for `--by`, recorded in the audit detail

    @property
    def actor(self) -> str:
        """How the audit log names them: `client:<name>`, `user:<name>`, or wnb's own name (no namespace)."""
        return self.name if self.kind == Kind.SYSTEM else f"{self.kind}:{self.name}"

    @property
    def via_detail(self) -> dict[str, str]:
        """How a person came, for the detail of their audit records (`{"via": "cli"}`), or nothing."""
        return {"via": self.via} if self.via else {}

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def describe(self) -> str:
        if self.kind == Kind.SYSTEM:
            return f"wnb ({self.name})"
        assert self.role is not None
        return f"the {'key' if self.kind == Kind.CLIENT else 'user'} {self.name} (role {self.role.value})"


def system(name: str) -> Principal:
    """wnb itself under `name` (audited as the bare name): the operator's shell, the scheduler, a scenario."""
    return Principal(Kind.SYSTEM, name)


class Action(StrEnum):
    EVENTS_INGEST = "events.ingest"
    CONTEXT_WRITE = "context.write"
    RECORDS_READ = "records.read"
    RECORDS_EXPLAIN = "records.explain"
    FAMILY_READ = "family.read"
    WORKLIST = "worklist.open"
    TASK_ACKNOWLEDGE = "task.acknowledge"
    TASK_COMPLETE = "task.complete"
    TASK_CANCEL = "task.cancel"
    TASK_CLAIM = "task.claim"
    TASK_ASSIGN = "task.assign"
    TASK_RELEASE = "task.release"
    COMMUNICATION_SEND = "communication.send"
    COMMUNICATION_ACKNOWLEDGE = "communication.acknowledge"
    FLAG_RESOLVE = "flag.resolve"
    REJECTS_READ = "rejects.read"
    REJECTS_HANDLE = "rejects.handle"
    GOVERNANCE_READ = "governance.read"
    AUDIT_READ = "audit.read"
    RULES_SIMULATE = "rules.simulate"
    RULES_CHECK = "rules.check"
    METRICS_READ = "metrics.read"
    SWEEP = "sweep.run"
    KEYS_ADMIN = "keys.admin"
    USERS_ADMIN = "users.admin"
    OPERATE = "service.operate"
    ACCOUNT_PASSWORD = "account.password"
    RULES_PROPOSE = "rules.propose"
    RULES_APPROVE = "rules.approve"
    RULES_ACTIVATE = "rules.activate"
    RULES_HISTORY = "rules.history"


@dataclass(frozen=True)
class Rule:
    """The roles allowed an action, whether wnb itself may do it, and what narrows it further."""

    what: str
    roles: frozenset[Role]
    system: bool
    condition: str = ""


_PEOPLE_WHO_ACT = frozenset(
    {Role.BOOKING_TEAM, Role.CLINICIAN, Role.SAFEGUARDING_NURSE, Role.NAMED_NURSE, Role.SAFEGUARDING_LEAD, Role.ADMIN}
)
_READERS = _PEOPLE_WHO_ACT | {Role.GOVERNANCE}  # children's records: every person; never a clinic system
_GOVERNORS = frozenset({Role.GOVERNANCE, Role.SAFEGUARDING_LEAD, Role.ADMIN})
# The clinical safety officer signs off ruleset versions: they read the evidence, the audit and the dashboard,
# and simulate, but open no child's record.
_SAFETY = _GOVERNORS | {Role.CLINICAL_SAFETY_OFFICER}
_SAFETY_OFFICER = frozenset({Role.CLINICAL_SAFETY_OFFICER})
_DATA_QUALITY = frozenset({Role.GOVERNANCE, Role.BOOKING_TEAM, Role.SAFEGUARDING_LEAD, Role.ADMIN})
# DOMAIN.md §5.7: a flag is resolved by the safeguarding team (and an administrator).
_FLAG_RESOLVERS = frozenset({Role.SAFEGUARDING_NURSE, Role.NAMED_NURSE, Role.SAFEGUARDING_LEAD, Role.ADMIN})
# Issue 18 part 6: the family view (related people's active flags) reads the records of people the reader did
# not open, so only the safeguarding team that judges a pattern across a family sees it; not the booking team,
# clinicians or governance, who read the child's own record only.
_FAMILY_READERS = _FLAG_RESOLVERS  # the same team, for its own reason
# Issue 18 part 3: a partner's system (a GP practice's, a social care system) acknowledges the messages sent to
# its recipient with a client key bound to that recipient; an administrator may for any.
_PARTNERS = frozenset({Role.CLINIC_SYSTEM, Role.ADMIN})
# Who may act on a task whatever role owns it.
ACT_FOR_ANY_ROLE = frozenset({Role.SAFEGUARDING_LEAD, Role.ADMIN})
_ADMIN = frozenset({Role.ADMIN})
# Who assigns a task to a named person (issue 16): the lead and an administrator any task; the named nurse a
# task whose escalation chain reaches the named nurse (the chains they oversee).
_LEADS = frozenset({Role.SAFEGUARDING_LEAD, Role.NAMED_NURSE, Role.ADMIN})
_NOBODY: frozenset[Role] = frozenset()

_TASK_CONDITION = "a task only its current owner role, the role that first owned it, safeguarding-lead or admin"
_ASSIGN_CONDITION = (
    "safeguarding-lead or admin any task; named-nurse a task whose escalation chain reaches named-nurse; "
    "only to an enabled account of the task's owner role"
)
_CLAIM_CONDITION = "only a task of one's own role now, not assigned to someone else"
_RELEASE_CONDITION = "only its assignee, or one who may assign it"
_SOURCE_CONDITION = "clinic-system only for the sources its key is bound to; admin for any source (audited)"

POLICY: dict[Action, Rule] = {
    Action.EVENTS_INGEST: Rule(
        "post attendance events, FHIR Appointments, HL7 messages; ingest files",
        frozenset({Role.CLINIC_SYSTEM}) | _ADMIN,
        True,
        _SOURCE_CONDITION,
    ),
    Action.CONTEXT_WRITE: Rule(
        "write a child's safeguarding context",
        frozenset({Role.CLINIC_SYSTEM}) | _ADMIN,
        True,
        "clinic-system only with a key bound for context (`--context`), never implied by a source",
    ),
    Action.RECORDS_READ: Rule("read flags, tasks and a child's record (reads of a child audited)", _READERS, True),
    Action.RECORDS_EXPLAIN: Rule("explain why a flag or task was raised", _READERS, True),
    Action.FAMILY_READ: Rule(
        "see a child's family view: related people's active flags (each read audited as a read of that person)",
        _FAMILY_READERS,
        False,
    ),
    Action.WORKLIST: Rule("open a worklist", _PEOPLE_WHO_ACT, False),
    Action.TASK_ACKNOWLEDGE: Rule("acknowledge a task", _PEOPLE_WHO_ACT, True, _TASK_CONDITION),
    Action.TASK_COMPLETE: Rule("complete a task", _PEOPLE_WHO_ACT, True, _TASK_CONDITION),
    Action.TASK_CANCEL: Rule("cancel a task", _PEOPLE_WHO_ACT, True, _TASK_CONDITION),
    Action.TASK_CLAIM: Rule("claim a task (assign it to oneself)", _PEOPLE_WHO_ACT, False, _CLAIM_CONDITION),
    Action.TASK_ASSIGN: Rule("assign or reassign a task to a named person", _LEADS, False, _ASSIGN_CONDITION),
    Action.TASK_RELEASE: Rule("release a task assigned to a person", _PEOPLE_WHO_ACT, False, _RELEASE_CONDITION),
    Action.COMMUNICATION_SEND: Rule(
        "send a message from an information-sharing task to the recipient in the child's context; mark a letter sent",
        _PEOPLE_WHO_ACT,
        True,
        _TASK_CONDITION,
    ),
    Action.COMMUNICATION_ACKNOWLEDGE: Rule(
        "acknowledge a message sent to a recipient outside the trust (by API; people outside use the message's link)",
        _PARTNERS,
        False,
        "a client key only for the recipient it is bound to (wnb keys bind --recipient ODS); admin any",
    ),
    Action.FLAG_RESOLVE: Rule("resolve a flag", _FLAG_RESOLVERS, True),
    Action.REJECTS_READ: Rule("read the data-quality queue", _DATA_QUALITY, True),
    Action.REJECTS_HANDLE: Rule("mark a rejected row handled", _DATA_QUALITY, False),
    Action.GOVERNANCE_READ: Rule("open the governance dashboard and read its figures (JSON, CSV)", _SAFETY, False),
    Action.AUDIT_READ: Rule("read, export or verify the audit log", _SAFETY, True),
    Action.RULES_SIMULATE: Rule("simulate a candidate ruleset on past data", _SAFETY, True),
    Action.RULES_CHECK: Rule("check or test a ruleset", _NOBODY, True),
    Action.METRICS_READ: Rule("read the Prometheus metrics", _ADMIN, False),
    Action.SWEEP: Rule("run the sweep (WNB-14, escalations)", _NOBODY, True),
    Action.KEYS_ADMIN: Rule("create, bind, revoke and list API keys", _ADMIN, True),
    Action.USERS_ADMIN: Rule("create, disable, list and unlock accounts; set a password", _ADMIN, True),
    Action.OPERATE: Rule("run the service, listeners and inbox; migrate, back up, restore", _NOBODY, True),
    Action.ACCOUNT_PASSWORD: Rule(
        "change one's own password on the pages", _READERS | _SAFETY_OFFICER, False, "only one's own"
    ),
    Action.RULES_PROPOSE: Rule("propose a ruleset version with its evidence", _SAFETY, False),
    Action.RULES_APPROVE: Rule(
        "approve or reject a proposed ruleset version",
        _SAFETY_OFFICER,
        False,
        "never the version's proposer; the password checked as at sign-in",
    ),
    Action.RULES_ACTIVATE: Rule(
        "activate, schedule or roll back a ruleset version",
        _ADMIN,
        False,
        "in production only an approved version; its evidence against the active version",
    ),
    Action.RULES_HISTORY: Rule("read the ruleset registry: history, differences", _SAFETY, True),
}

TASK_ACTIONS = {"ack": Action.TASK_ACKNOWLEDGE, "complete": Action.TASK_COMPLETE, "cancel": Action.TASK_CANCEL}
ASSIGNMENT_ACTIONS = {"claim": Action.TASK_CLAIM, "assign": Action.TASK_ASSIGN, "release": Action.TASK_RELEASE}


def allows(principal: Principal, action: Action) -> bool:
    """Whether `principal`'s kind and role may do `action` at all (a task's owner or a key's binding aside)."""
    rule = POLICY[action]
    if principal.kind == Kind.SYSTEM:
        return rule.system
    return principal.role in rule.roles


def check(principal: Principal, action: Action) -> None:
    """Raise Forbidden, saying who may, unless `principal` may do `action`."""
    if not allows(principal, action):
        raise Forbidden(f"{principal.describe()} may not {POLICY[action].what}; {_who_may(action)}")


def _who_may(action: Action) -> str:
    roles = [role.value for role in Role if role in POLICY[action].roles]
    return f"allowed: {', '.join(roles)}" if roles else "only wnb's operator at the server's command line may"


def refusal_reason(action: Action) -> str:
    """Who may do `action`, in words: `only governance, safeguarding-lead or admin may open the governance ...`."""
    roles = [role.value for role in Role if role in POLICY[action].roles]
    who = ", ".join(roles[:-1]) + f" or {roles[-1]}" if len(roles) > 1 else "".join(roles) or "wnb's operator"
    return f"only {who} may {POLICY[action].what}"


def task_roles(owner_role: str, first_owner_role: str) -> frozenset[Role]:
    """The roles that may act on a task now owned by `owner_role` and first owned by `first_owner_role`."""
    owners = {Role(owner_role), Role(first_owner_role)} & _PEOPLE_WHO_ACT
    return frozenset(owners) | ACT_FOR_ANY_ROLE


def may_act_on_task(principal: Principal, action: Action, owner_role: str, first_owner_role: str) -> bool:
    if not allows(principal, action):
        return False
    return principal.kind == Kind.SYSTEM or principal.role in task_roles(owner_role, first_owner_role)


def check_task(principal: Principal, action: Action, ref: str, owner_role: str, first_owner_role: str) -> None:
    """Raise Forbidden unless `principal` may do `action` on the task `ref` (its owners, the lead, an admin)."""
    check(principal, action)
    if not may_act_on_task(principal, action, owner_role, first_owner_role):
        owners = owner_role if owner_role == first_owner_role else f"{owner_role} (first {first_owner_role})"
        raise Forbidden(
            f"task {ref} is for the {owners} role; {principal.describe()} may not act on it "
            f"(allowed: its owner roles, {', '.join(sorted(ACT_FOR_ANY_ROLE))})"
        )


def may_assign(principal: Principal, chain: tuple[Role, ...]) -> bool:
    """Whether `principal` may assign a task whose escalation chain is `chain` (its first owner role first)."""
    if not allows(principal, Action.TASK_ASSIGN):
        return False
    return principal.role in ACT_FOR_ANY_ROLE or principal.role in chain


def check_assignment(
    principal: Principal, action: str, ref: str, owner_role: str, assignee: str | None, chain: tuple[Role, ...]
) -> None:
    """Raise Forbidden unless `principal` may claim, assign or release the task `ref` (wnb.core.plan says whether
    the task's state allows it)."""
    check(principal, ASSIGNMENT_ACTIONS[action])
    if action == "claim" and principal.role is not None and principal.role.value != owner_role:
        raise Forbidden(
            f"task {ref} is for the {owner_role} role; {principal.describe()} may not claim it "
            "(a task is claimed by a member of its role)"
        )
    if action == "assign" and not may_assign(principal, chain):
        raise Forbidden(
            f"{principal.describe()} may not assign task {ref}: its chain is "
            f"{' → '.join(role.value for role in chain)} (allowed: {', '.join(sorted(ACT_FOR_ANY_ROLE))}, "
            "or named-nurse when the chain reaches them)"
        )
    if action == "release" and assignee not in (None, principal.name) and not may_assign(principal, chain):
        raise Forbidden(
            f"task {ref} is assigned to {assignee}; {principal.describe()} may not release it "
            "(allowed: its assignee, or one who may assign it)"
        )


UNBOUND_KEY = (
    "the API key {name} is not bound to any source: bind it with "
    "`wnb keys bind {name} --source SOURCE [--source ...] [--context]` before it writes"
)


def source_refusal(principal: Principal, source: object) -> str | None:
    """Why `principal` may not write events for `source`, or None when it may."""
    if principal.kind != Kind.CLIENT or principal.is_admin or source is None:
        return None  # no source at all: the event is invalid, and refused for that
    if principal.sources is None:
        return UNBOUND_KEY.format(name=principal.name)
    if not isinstance(source, str) or source not in principal.sources:  # a list or number is no bound source
        bound = ", ".join(sorted(principal.sources)) or "none"
        return f"the API key {principal.name} may not write events for source {source!r} (bound to: {bound})"
    return None


def context_refusal(principal: Principal) -> str | None:
    """Why `principal` may not write safeguarding context, or None when it may."""
    if principal.kind != Kind.CLIENT or principal.is_admin:
        return None
    if principal.sources is None:
        return UNBOUND_KEY.format(name=principal.name)
    if not principal.writes_context:
        return (
            f"the API key {principal.name} may not write safeguarding context: "
            f"bind it with `wnb keys bind {principal.name} --context`"
        )
    return None


def acknowledgement_refusal(principal: Principal, recipient_ods: str | None) -> str | None:
    """Why `principal` may not acknowledge a message to `recipient_ods`, or None when it may."""
    if principal.is_admin:
        return None
    if principal.recipient is None:
        return (
            f"the API key {principal.name} is not bound to a recipient: bind it with "
            f"`wnb keys bind {principal.name} --recipient ODS` (the recipient's ODS code)"
        )
    if principal.recipient != recipient_ods:
        return f"the API key {principal.name} acknowledges only messages to {principal.recipient}"
    return None


# ---- every route and command, and the action behind it (None: open to anyone) ----

ANONYMOUS = None

ENTRY_POINTS: dict[str, tuple[Action, ...] | None] = {
    # HTTP API
    "GET /health/live": ANONYMOUS,
    "GET /health/ready": ANONYMOUS,
    "GET /metrics": (Action.METRICS_READ,),
    "GET /": ANONYMOUS,  # a redirect to the pages
    "GET /docs": ANONYMOUS,
    "GET /redoc": ANONYMOUS,
    "GET /docs/assets": ANONYMOUS,  # Swagger UI's and ReDoc's scripts and styles
    "GET /openapi.json": ANONYMOUS,
    "POST /v1/attendance-events": (Action.EVENTS_INGEST,),
    "POST /v1/hl7": (Action.EVENTS_INGEST,),
    "PUT /v1/people/{nhs_number}/context": (Action.CONTEXT_WRITE,),
    "GET /v1/flags": (Action.RECORDS_READ,),
    "GET /v1/tasks": (Action.RECORDS_READ,),
    "GET /v1/people/{nhs_number}/timeline": (Action.RECORDS_READ,),
    "GET /v1/people/{nhs_number}/chronology": (Action.RECORDS_READ,),
    "GET /v1/people/{nhs_number}/family": (Action.FAMILY_READ,),
    "GET /v1/reports/governance": (Action.GOVERNANCE_READ,),
    "POST /v1/tasks/{task_id}/{action}": tuple(TASK_ACTIONS.values()),
    "POST /v1/tasks/{task_id}/claim": (Action.TASK_CLAIM,),
    "POST /v1/tasks/{task_id}/assign": (Action.TASK_ASSIGN,),
    "POST /v1/tasks/{task_id}/release": (Action.TASK_RELEASE,),
    "POST /v1/tasks/{task_id}/wait": (Action.TASK_ACKNOWLEDGE,),
    "POST /v1/tasks/{task_id}/communications": (Action.COMMUNICATION_SEND,),
    "GET /v1/communications/{communication_id}": (Action.RECORDS_READ,),
    "POST /v1/communications/{communication_id}/sent": (Action.COMMUNICATION_SEND,),
    "POST /v1/communications/{communication_id}/ack": (Action.COMMUNICATION_ACKNOWLEDGE,),
    "GET /web/ack/{token}": ANONYMOUS,  # the recipient's page: the signed link is the proof, no personal data shown
    "POST /web/ack/{token}": ANONYMOUS,
    "POST /v1/flags/{flag_id}/resolve": (Action.FLAG_RESOLVE,),
    "POST /fhir/Appointment": (Action.EVENTS_INGEST,),
    "POST /fhir": (Action.EVENTS_INGEST,),
    "GET /fhir/Flag": (Action.RECORDS_READ,),
    "GET /fhir/Task": (Action.RECORDS_READ,),
    "GET /fhir/AuditEvent": (Action.AUDIT_READ,),
    # the pages
    "GET /web/static": ANONYMOUS,
    "GET /web/sign-in": ANONYMOUS,
    "POST /web/sign-in": ANONYMOUS,
    "POST /web/sign-out": ANONYMOUS,
    "GET /web/password": (Action.ACCOUNT_PASSWORD,),
    "POST /web/password": (Action.ACCOUNT_PASSWORD,),
    "GET /web/": (Action.WORKLIST,),
    "POST /web/tasks/{task_id}/{action}": (Action.TASK_ACKNOWLEDGE, Action.TASK_COMPLETE),  # no cancel on the pages
    "POST /web/tasks/{task_id}/claim": (Action.TASK_CLAIM,),
    "POST /web/tasks/{task_id}/release": (Action.TASK_RELEASE,),
    "POST /web/tasks/{task_id}/assign": (Action.TASK_ASSIGN,),
    "POST /web/tasks/{task_id}/wait": (Action.TASK_ACKNOWLEDGE,),
    "POST /web/tasks/acknowledge": (Action.TASK_ACKNOWLEDGE,),  # the selected tasks, each checked as one
    "POST /web/tasks/{task_id}/send": (Action.COMMUNICATION_SEND,),
    "GET /web/communications/{communication_id}/letter": (Action.RECORDS_READ,),
    "POST /web/communications/{communication_id}/sent": (Action.COMMUNICATION_SEND,),
    "GET /web/children": (Action.RECORDS_READ,),
    "GET /web/children/{nhs_number}": (Action.RECORDS_READ,),
    "GET /web/children/{nhs_number}/chronology": (Action.RECORDS_READ,),
    "POST /web/flags/{flag_id}/resolve": (Action.FLAG_RESOLVE,),
    "GET /web/governance": (Action.GOVERNANCE_READ,),
    "GET /web/governance.csv": (Action.GOVERNANCE_READ,),
    "GET /web/audit": (Action.AUDIT_READ,),
    "GET /web/explain/{ref}": (Action.RECORDS_EXPLAIN,),
    "GET /web/simulate": (Action.RULES_SIMULATE,),
    "POST /web/simulate": (Action.RULES_SIMULATE,),
    "GET /web/rulesets": (Action.RULES_HISTORY,),
    "GET /web/rulesets/diff": (Action.RULES_HISTORY,),
    "GET /web/rulesets/jobs/{job_id}": (Action.RULES_HISTORY,),
    "POST /web/rulesets/jobs/{job_id}/again": (Action.RULES_PROPOSE,),
    "GET /web/rulesets/propose": (Action.RULES_PROPOSE,),
    "POST /web/rulesets/propose": (Action.RULES_PROPOSE,),
    "POST /web/rulesets/upload": (Action.RULES_PROPOSE,),
    "GET /web/rulesets/{version}": (Action.RULES_HISTORY,),
    "GET /web/rulesets/{version}/report": (Action.RULES_HISTORY,),
    "POST /web/rulesets/{version}/approve": (Action.RULES_APPROVE,),
    "POST /web/rulesets/{version}/reject": (Action.RULES_APPROVE,),
    "POST /web/rulesets/{version}/activate": (Action.RULES_ACTIVATE,),
    "GET /web/rejects": (Action.REJECTS_READ,),
    "POST /web/rejects/{ref}/handled": (Action.REJECTS_HANDLE,),
    # the command line (`wnb ...`): as wnb's operator, or as the person named by --by where it has one
    "cli ingest": (Action.EVENTS_INGEST,),
    "cli context import": (Action.CONTEXT_WRITE,),
    "cli recipients import": (Action.CONTEXT_WRITE,),
    "cli recipients list": (Action.RECORDS_READ,),
    "cli sweep": (Action.SWEEP,),
    "cli flags": (Action.RECORDS_READ,),
    "cli tasks": (Action.RECORDS_READ,),
    "cli task ack": (Action.TASK_ACKNOWLEDGE,),
    "cli task complete": (Action.TASK_COMPLETE,),
    "cli task cancel": (Action.TASK_CANCEL,),
    "cli task claim": (Action.TASK_CLAIM,),
    "cli task assign": (Action.TASK_ASSIGN,),
    "cli task release": (Action.TASK_RELEASE,),
    "cli task wait": (Action.TASK_ACKNOWLEDGE,),
    "cli task young-person-letters": (Action.RECORDS_READ,),
    "cli task send": (Action.COMMUNICATION_SEND,),
    "cli task letter-sent": (Action.COMMUNICATION_SEND,),
    "cli flag resolve": (Action.FLAG_RESOLVE,),
    "cli rejects": (Action.REJECTS_READ,),
    "cli audit verify": (Action.AUDIT_READ,),
    "cli audit export": (Action.AUDIT_READ,),
    "cli audit checkpoint": (Action.OPERATE,),
    "cli audit keygen": (Action.OPERATE,),
    "cli audit new-key": (Action.OPERATE,),
    "cli explain": (Action.RECORDS_EXPLAIN,),
    "cli chronology": (Action.RECORDS_READ,),
    "cli rules check": (Action.RULES_CHECK,),
    "cli rules test": (Action.RULES_CHECK,),
    "cli rules simulate": (Action.RULES_SIMULATE,),
    "cli rules propose": (Action.RULES_PROPOSE,),
    "cli rules approve": (Action.RULES_APPROVE,),
    "cli rules reject": (Action.RULES_APPROVE,),
    "cli rules activate": (Action.RULES_ACTIVATE,),
    "cli rules history": (Action.RULES_HISTORY,),
    "cli rules diff": (Action.RULES_HISTORY,),
    "cli rules report": (Action.RULES_HISTORY,),
    "cli demo": (Action.OPERATE,),
    "cli serve": (Action.OPERATE,),
    "cli feeds": (Action.OPERATE,),
    "cli outbox": (Action.OPERATE,),
    "cli inbox": (Action.OPERATE,),
    "cli mllp": (Action.OPERATE,),
    "cli db upgrade": (Action.OPERATE,),
    "cli db backup": (Action.OPERATE,),
    "cli db restore": (Action.OPERATE,),
    "cli keys create": (Action.KEYS_ADMIN,),
    "cli keys bind": (Action.KEYS_ADMIN,),
    "cli keys revoke": (Action.KEYS_ADMIN,),
    "cli keys list": (Action.KEYS_ADMIN,),
    "cli users create": (Action.USERS_ADMIN,),
    "cli users disable": (Action.USERS_ADMIN,),
    "cli users list": (Action.USERS_ADMIN,),
    "cli users password": (Action.USERS_ADMIN,),
    "cli users unlock": (Action.USERS_ADMIN,),
}


def entry_point(key: str) -> tuple[Action, ...] | None:
    """The actions behind a route (`GET /v1/flags`) or command (`cli task ack`); KeyError when it is not listed."""
    return ENTRY_POINTS[key]


def markdown_table() -> str:
    """The README's table: every action, the roles allowed, and what narrows it."""
    roles = list(Role)
    header = "| action | what | " + " | ".join(role.value for role in roles) + " | wnb itself | only when |"
    rule = "|" + "---|" * (len(roles) + 4)
    lines = [header, rule]
    for action, entry in POLICY.items():
        cells = ["yes" if role in entry.roles else "" for role in roles]
        system_cell = "yes" if entry.system else ""
        lines.append(
            f"| `{action.value}` | {entry.what} | " + " | ".join(cells) + f" | {system_cell} | {entry.condition} |"
        )
    return "\n".join(lines) + "\n"


def entry_points_table() -> str:
    """Every route and command with the action behind it, for the README."""
    lines = ["| route or command | action |", "|---|---|"]
    for key, actions in ENTRY_POINTS.items():
        shown = ", ".join(f"`{action.value}`" for action in actions) if actions else "anyone"
        where = f"`wnb {key[4:]}`" if key.startswith("cli ") else f"`{key}`"
        lines.append(f"| {where} | {shown} |")
    return "\n".join(lines) + "\n"


README_START, README_END = "<!-- policy-table -->", "<!-- /policy-table -->"


def readme_section() -> str:
    """What stands between the README's policy markers: both tables, generated from this module."""
    return f"{README_START}\n{markdown_table()}\n{entry_points_table()}{README_END}"


def rewrite_readme(text: str) -> str:
    """`text` (the README) with its policy section replaced by `readme_section()`."""
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    return text[:start] + readme_section() + text[end:]


if __name__ == "__main__":  # `python -m wnb.core.policy README.md` rewrites the README's tables after a change here
    import sys
    from pathlib import Path

    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    readme.write_text(rewrite_readme(readme.read_text(encoding="utf-8")), encoding="utf-8")
