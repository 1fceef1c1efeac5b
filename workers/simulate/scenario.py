"""Scenario files for `billing simulate` (SIMULATE.md): parsing and validation.

Everything a scenario can get wrong is found here, before anything runs: the error names the
field (`actions[2].at`, `org.users[1].email`, `policy.retry_days`). Whether an action is
*allowed* at its time is not decided here: that is the workflow's business, and a refusal
shows in the timeline as `action_rejected`."""

import re
from dataclasses import MISSING, dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from dateutil.relativedelta import relativedelta

from domain.cards import CardDetails, sandbox_tokenise
from domain.catalog import Catalog
from domain.errors import CardRejected, DomainError, InvalidInput
from domain.limits import Limits, check_request_fields, check_whole, shown, utf8_text
from domain.onboarding import NewOrg, NewUser, validate_new_org
from domain.operations import OPERATIONS
from domain.policy import Policy, PolicyError
from domain.requests import Kind
from domain.rules import check_catalog_names
from domain.states import FREE_PLAN, Cycle, Resolution, Switch
from domain.subscription import CatalogFacts, catalog_facts
from workers.simulate import fields as read
from workers.simulate.fields import ScenarioError
from workers.runtime.files import MAX_INPUT_FILE_MB, FileTooLarge, read_bounded
from workflows.messages import REPORT_SIGNALS

MAX_UNTIL_YEARS = 100
MAX_POLICY_DAYS = 3660          # a policy's day counts: ten years is beyond any trial or dunning ladder
MAX_POLICY_HOURS = 24 * 366


# ---- the parsed scenario ------------------------------------------------------------------------

@dataclass(frozen=True)
class Action:
    index: int                 # position in the file: `actions[index]`
    at_text: str               # the duration as written
    at: datetime               # start + at (real calendar, not shifted)
    kind: str                  # the Update name (SIMULATE.md action name)
    request: Any               # the Update argument; None when `rejection` is set
    rejection: str | None = None  # a refusal known before the workflow is asked (gateway-rejected card)
    via: str = "update"        # a report may come as its signal instead, as a usage feed sends it


@dataclass(frozen=True)
class Scenario:
    start: datetime
    until: datetime
    until_text: str
    policy: Policy
    org: NewOrg
    card: CardDetails | None
    actions: list[Action]          # in application order: by time, then file order
    description: str = ""


# ---- policy ----------------------------------------------------------------------------------

POLICY_FIELDS = ["trial_days", "trial_reminder_days", "retry_days", "downgrade_window_min_days",
                 "downgrade_window_max_days", "large_account_licences", "billing_staff", "staff_notify_email",
                 "escalation_first_response_hours", "escalation_determination_hours"]


def parse_policy(raw: Any, base: Policy) -> Policy:
    """The configured policy with the scenario's overrides. In a simulation everyone counts as
    billing staff unless `policy.billing_staff` lists who does (SIMULATE.md)."""
    changes: dict[str, Any] = {"billing_staff": None}
    if raw is None:
        raw = {}
    data = read.mapping(raw, "policy")
    read.no_unknown(data, POLICY_FIELDS, "policy")
    for name, value in data.items():
        path = f"policy.{name}"
        if name in ("trial_reminder_days", "retry_days"):
            days = read.whole_list(value, path)
            if name == "retry_days" and not days:
                raise ScenarioError(path, "needs at least one retry day")
            for i, day in enumerate(days):
                if day <= 0:
                    raise ScenarioError(f"{path}[{i}]", f"days must be positive, got {day}")
                if day > MAX_POLICY_DAYS:
                    raise ScenarioError(f"{path}[{i}]", f"at most {MAX_POLICY_DAYS:,} days, got {shown(day)}")
            if name == "retry_days" and list(days) != sorted(set(days)):
                raise ScenarioError(path, f"retry days must be strictly increasing, got {list(days)}")
            changes[name] = days
        elif name == "billing_staff":
            if not isinstance(value, list):
                raise ScenarioError(path, f"expected a list of e-mail addresses, got {read.type_name(value)}")
            if len(value) > read.MAX_LIST:
                raise ScenarioError(path, f"at most {read.MAX_LIST} e-mail addresses, got {len(value)}")
            changes[name] = tuple(read.text(v, f"{path}[{i}]", "email").strip().lower() for i, v in enumerate(value))
        elif name == "staff_notify_email":
            changes[name] = read.text(value, path, "email")
        else:
            # Bounded so that a date computed from it stays in the calendar (no OverflowError mid-run).
            maximum = {"large_account_licences": base.limits.licences_per_org}.get(
                name, MAX_POLICY_HOURS if name.endswith("_hours") else MAX_POLICY_DAYS)
            changes[name] = read.bounded(check_whole, value, path, name, maximum=maximum,
                                     minimum=0 if name == "downgrade_window_min_days" else 1)
    trial_days = changes.get("trial_days", base.trial_days)
    reminders = changes.get("trial_reminder_days", base.trial_reminder_days)
    if any(day >= trial_days for day in reminders):
        if "trial_reminder_days" in changes:
            raise ScenarioError("policy.trial_reminder_days",
                                f"reminders must come before the trial ends: each day below trial_days "
                                f"({trial_days}), got {list(reminders)}")
        raise ScenarioError("policy.trial_days", f"{trial_days} days leaves no room for the trial reminders "
                                                 f"{list(reminders)} days before the end; set "
                                                 "policy.trial_reminder_days too")
    low = changes.get("downgrade_window_min_days", base.downgrade_window_min_days)
    high = changes.get("downgrade_window_max_days", base.downgrade_window_max_days)
    if low > high:
        raise ScenarioError("policy.downgrade_window_min_days",
                            f"the window's minimum ({low} days) is above its maximum ({high} days)")
    try:
        return replace(base, **changes)
    except PolicyError as err:  # Policy's own checks (the staff's addresses), naming the field
        field, message = err.problems[0]
        raise ScenarioError(f"policy.{field}", message.removeprefix(f"{field}: ")) from None


# ---- org ----------------------------------------------------------------------------------------

ORG_FIELDS = ["id", "name", "admin_email", "locale", "currency", "plan", "cycle", "licences", "card",
              "auto_allocate_storage", "users", "country", "tax_id"]


def _field_error(prefix: str, err: DomainError) -> ScenarioError:
    """validate_new_org's messages start with the field (`users[1].email: ...`)."""
    match = re.match(r"([A-Za-z_][\w\[\]\.]*): (.*)", err.message, re.S)
    if match:
        return ScenarioError(f"{prefix}.{match.group(1)}", match.group(2))
    return ScenarioError(prefix, err.message)


def parse_org(raw: Any, catalog: Catalog, limits: Limits = Limits()) -> tuple[NewOrg, CardDetails | None]:
    if raw is None:
        raise ScenarioError("org", "required: the organisation to simulate")
    data = read.mapping(raw, "org")
    read.no_unknown(data, ORG_FIELDS, "org")
    for required in ("id", "admin_email"):
        if required not in data:
            raise ScenarioError(f"org.{required}", "required")
    org_id = read.string(data["id"], "org.id")
    plan = read.string(data.get("plan", "trial"), "org.plan")
    if plan != "trial" and plan not in catalog.plans:
        raise ScenarioError("org.plan", f"unknown plan {plan!r}; use trial or one of {', '.join(catalog.plans)}")
    cycle = data.get("cycle")
    if cycle is not None:
        cycle = read.string(cycle, "org.cycle")
        if cycle not in [c.value for c in Cycle]:
            raise ScenarioError("org.cycle", f"{cycle!r} is not a cycle; use monthly or yearly")
    if plan not in ("trial", FREE_PLAN) and cycle is None:
        raise ScenarioError("org.cycle", f"required for the paid plan {plan}: monthly or yearly")
    licences = data.get("licences")
    if licences is not None:
        licences = read.whole(licences, "org.licences", minimum=0)
    users_raw = data.get("users", [])
    if not isinstance(users_raw, list):
        raise ScenarioError("org.users", f"expected a list of users, got {read.type_name(users_raw)}")
    if len(users_raw) > limits.users_per_org:
        raise ScenarioError("org.users", f"at most {limits.users_per_org:,} users per org, got {len(users_raw):,}")
    users = []
    for i, user in enumerate(users_raw):
        path = f"org.users[{i}]"
        user = read.mapping(user, path)
        read.no_unknown(user, ["email", "storage_gb"], path)
        if "email" not in user:
            raise ScenarioError(f"{path}.email", "required")
        users.append(NewUser(read.string(user["email"], f"{path}.email"),
                             read.number(user.get("storage_gb", 0), f"{path}.storage_gb")))
    new = NewOrg(id=org_id, name=read.string(data.get("name", org_id), "org.name"),
                 admin_email=read.string(data["admin_email"], "org.admin_email"), users=users,
                 locale=read.string(data.get("locale", "en"), "org.locale"),
                 currency=read.string(data.get("currency", "USD"), "org.currency"), plan=plan, cycle=cycle,
                 licences=licences,
                 auto_allocate_storage=read.boolean(data.get("auto_allocate_storage", False),
                                                    "org.auto_allocate_storage"),
                 country=read.string(data["country"], "org.country") if data.get("country") is not None else None,
                 tax_id=read.string(data["tax_id"], "org.tax_id") if data.get("tax_id") is not None else None)
    try:
        new = validate_new_org(new, catalog, limits)
    except DomainError as err:
        raise _field_error("org", err) from None
    card = None
    if data.get("card") is not None:
        try:
            card = sandbox_tokenise(read.card_number(data["card"], "org.card"))
        except DomainError as err:
            raise ScenarioError("org.card", err.message.removeprefix("card: ")) from None
    return new, card


# ---- actions ------------------------------------------------------------------------------------

SIMULATED_REASON = "billing simulate"


def _action_fields(operation) -> dict[str, tuple[Kind, Any]]:
    """An action's keys: the fields of the operation's request (SIMULATE.md), with their kinds."""
    spec = {}
    for item in fields(operation.inputs):
        default = REQUIRED if item.default is MISSING else item.default
        spec[item.name] = (item.metadata.get("kind", Kind.TEXT), default)
    return spec


REQUIRED = object()
ACTION_FIELDS: dict[str, dict[str, tuple[Kind, Any]]] = {name: _action_fields(op) for name, op in OPERATIONS.items()
                                                       if op.generated}


def _action_value(kind: Kind, value: Any, path: str) -> Any:
    """The value read as its kind's type; what it names in the catalog is checked with the whole
    request (domain.rules.check_catalog_names), its bounds too (check_request_fields)."""
    if kind in (Kind.TEXT, Kind.EMAIL, Kind.PLAN, Kind.ADDON):
        return read.string(value, path)
    if kind in (Kind.COUNT, Kind.UNIT_GB):
        return read.whole(value, path)
    if kind == Kind.GB:
        return read.number(value, path)
    if kind == Kind.CYCLE:
        if value is None:
            return None
        cycle = read.string(value, path)
        if cycle not in [c.value for c in Cycle]:
            raise ScenarioError(path, f"{cycle!r} is not a cycle; use monthly or yearly")
        return cycle
    if kind == Kind.CARD:
        return read.card_number(value, path)
    if kind == Kind.SWITCH:
        if isinstance(value, bool):   # YAML 1.1 reads a bare on/off as a boolean
            return Switch.ON.value if value else Switch.OFF.value
        setting = read.string(value, path)
        if setting not in set(Switch):
            raise ScenarioError(path, f"{setting!r} is not a setting; use on or off")
        return setting
    if kind == Kind.RESOLUTION:
        action = read.string(value, path)
        if action not in set(Resolution):
            raise ScenarioError(path, f"{action!r} is not a resolution; use {Resolution.choices()}")
        return action
    raise AssertionError(kind)


def _request_field_path(path: str, spec: dict[str, tuple[Kind, Any]], field: str) -> str:
    """Where a request field came from: its own key, or the card number a token was made of."""
    if field not in spec:
        derived = [name for name, (kind, _) in spec.items() if kind == Kind.CARD]
        if derived:
            return f"{path}.{derived[0]}"
    return f"{path}.{field}"


def parse_action(raw: Any, index: int, start: datetime, until: datetime, until_text: str,
                 catalog: CatalogFacts, limits: Limits = Limits()) -> Action:
    path = f"actions[{index}]"
    data = read.mapping(raw, path)
    if "do" not in data:
        raise ScenarioError(f"{path}.do", f"required: the action to take; actions are {', '.join(ACTION_FIELDS)}")
    kind = data["do"]
    if not isinstance(kind, str) or kind not in ACTION_FIELDS:
        raise ScenarioError(f"{path}.do", f"unknown action {shown(kind)}; actions are {', '.join(ACTION_FIELDS)}")
    if "at" not in data:
        raise ScenarioError(f"{path}.at", "required: when, as an ISO-8601 duration after start (e.g. P10D)")
    at = read.after(start, data["at"], f"{path}.at")
    if at > until:
        raise ScenarioError(f"{path}.at", f"{data['at']} is after the end of the run (until {until_text})")
    spec = ACTION_FIELDS[kind]
    signal = next((name for name, operation in REPORT_SIGNALS.items() if operation == kind), None)
    read.no_unknown(data, ["at", "do", *spec, *(["via"] if signal else [])], path)
    via = data.get("via", "update")
    if via not in ("update", "signal"):
        raise ScenarioError(f"{path}.via", f"{shown(via)} is not a way to send it; use update (answered) or signal "
                                           f"({signal}: never answered, a bad report dropped with a log line)")
    values: dict[str, Any] = {}
    for name, (field_kind, default) in spec.items():
        if name not in data or (data[name] is None and default is not REQUIRED):
            if default is REQUIRED:
                raise ScenarioError(f"{path}.{name}", f"required for {kind}")
            values[name] = default
        elif field_kind == Kind.INSTANT:
            # A moment of the run, written like `at`: an ISO-8601 duration after start.
            values[name] = read.after(start, data[name], f"{path}.{name}").isoformat()
        else:
            values[name] = _action_value(field_kind, data[name], f"{path}.{name}")
    if OPERATIONS[kind].reason_required and "reason" not in data:
        # Staff actions need a reason; SIMULATE.md's actions give none, so a dry run supplies one.
        values["reason"] = SIMULATED_REASON
    try:
        # A card number is tokenised here, as the CLI does before it sends the Update.
        request = OPERATIONS[kind].request_from_input(values)
    except CardRejected as err:
        # A well-formed test card the gateway refuses: a refusal at run time, not a bad file.
        return Action(index, data["at"], at, kind, None, rejection=err.message)
    except DomainError as err:
        raise ScenarioError(f"{path}.card", err.message.removeprefix("card: ")) from None
    try:
        # The bounds every entry point applies (the Update's validator too): a value the
        # database can store and the bill can price. Refused here, the file is refused whole.
        check_request_fields(request, limits)
    except InvalidInput as err:
        field, _, message = err.message.partition(": ")
        raise ScenarioError(_request_field_path(path, spec, field), message) from None
    try:
        check_catalog_names(catalog, request)   # as the CLI checks before it sends
    except DomainError as err:
        raise ScenarioError(f"{path}.{err.field}", err.message.removeprefix(f"{err.field}: ")) from None
    return Action(index, data["at"], at, kind, request, via=via)


# ---- the whole file -----------------------------------------------------------------------------

TOP_FIELDS = ["description", "start", "until", "policy", "org", "actions"]


def parse_scenario(raw: Any, catalog: Catalog, base_policy: Policy) -> Scenario:
    if raw is None:
        raise ScenarioError("", "the scenario file is empty")
    data = read.mapping(raw, "scenario")
    read.no_unknown(data, TOP_FIELDS, "")
    for required in ("start", "until", "org"):
        if required not in data:
            raise ScenarioError(required, "required (see `billing simulate --example`)")
    description = read.string(data.get("description", ""), "description")
    start = read.moment(data["start"], "start")
    until_text = data["until"]
    until = read.after(start, until_text, "until")
    if until <= start:
        raise ScenarioError("until", f"{until_text} is no time at all; the run needs a positive duration")
    try:
        too_long = until > start + relativedelta(years=MAX_UNTIL_YEARS)
    except (OverflowError, ValueError):  # a start near the year 9999: `until` is in the calendar already
        too_long = False
    if too_long:
        raise ScenarioError("until", f"{until_text} is longer than {MAX_UNTIL_YEARS} years")
    policy = parse_policy(data.get("policy"), base_policy)
    org, card = parse_org(data["org"], catalog, policy.limits)
    actions_raw = data.get("actions") or []
    if not isinstance(actions_raw, list):
        raise ScenarioError("actions", f"expected a list of actions, got {read.type_name(actions_raw)}")
    facts = catalog_facts(catalog, org.currency)
    actions = [parse_action(item, i, start, until, until_text, facts, policy.limits)
               for i, item in enumerate(actions_raw)]
    # Actions at the same instant apply in file order (sorted() is stable).
    actions = sorted(actions, key=lambda action: action.at)
    return Scenario(start=start, until=until, until_text=until_text, policy=policy, org=org, card=card,
                    actions=actions, description=description)


class _ScenarioLoader(yaml.SafeLoader):
    """safe_load, but a key given twice in one mapping is refused (PyYAML keeps the last one
    silently: `count: 1` then `count: 100` would buy 100), and a number too long for Python's
    int() is a YAML error with its line rather than a ValueError."""

    def construct_mapping(self, node, deep=False):  # noqa: ANN001
        if isinstance(node, yaml.MappingNode):
            # Before merge keys (<<) are flattened in: a key may override a merged one.
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: construct_mapping refuses it with its mark
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"duplicate key {shown(key)} (first given at line {first.line + 1})", key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):  # noqa: ANN001
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            raise yaml.constructor.ConstructorError(None, None, f"a number of {len(node.value)} characters is "
                                                    "too long", node.start_mark) from None


_ScenarioLoader.add_constructor("tag:yaml.org,2002:int", _ScenarioLoader.construct_yaml_int)


def load_scenario(path: Path, catalog: Catalog, base_policy: Policy, max_file_mb: int = MAX_INPUT_FILE_MB) -> Scenario:
    try:
        text = utf8_text(read_bounded(Path(path), max_file_mb))
    except FileTooLarge as err:
        raise ScenarioError("", str(err)) from None
    except OSError as err:
        raise ScenarioError("", f"cannot read {path}: {err.strerror or err}") from None
    except InvalidInput as err:
        raise ScenarioError("", f"{path} is not a scenario file: {err.message}; a scenario is YAML saved "
                                "as UTF-8") from None
    try:
        raw = yaml.load(text, Loader=_ScenarioLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        where = ""
        mark = getattr(err, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        raise ScenarioError("", f"{path} is not valid YAML{where}: {getattr(err, 'problem', None) or err}") from None
    return parse_scenario(raw, catalog, base_policy)
