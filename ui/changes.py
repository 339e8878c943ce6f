"""Changes in a merchandiser's words: a rule names its item by title ("pinned at 1: Trail shoe X (P000561)"),
an audit-log row says what it changed ("added rule 'Summer tripods' (pinned at 1: …)", "made run r2 live,
instead of r1"), and the next undo says which change it takes back. The one place these words live (the
History and Rules pages and every confirmation use them)."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from crossrec_core import segments
from crossrec_core.errors import CrossRecError
from crossrec_core.rules import Rule

from . import state
from .fmt import fmt_when
from .text import short


def item_titles(item_ids: list[str]) -> dict[str, str]:
    """id → short title, for the items that exist."""
    ids = [i for i in item_ids if i]
    if not ids:
        return {}
    items = state.store().items_by_id(ids)
    return dict(zip(items["item_id"], items["title"].map(lambda t: short(t, 50))))


def rule_does(rule: Rule, titles: dict[str, str] | None = None) -> str:
    """What a rule does, an item named by its title: "pinned at 1: Trail shoe X (P000561)"."""
    titles = item_titles([rule.item]) if titles is None and rule.item else (titles or {})
    if rule.item and rule.item in titles:
        return f"{rule.verb()}: {titles[rule.item]} ({rule.item})"
    return f"{rule.verb()} {rule.what()}"


def rule_named(rule: Rule) -> str:
    """"rule 'Summer tripods' (pinned at 1: Trail shoe X (P000561))"."""
    return f"rule '{rule.name}' ({rule_does(rule)})"


def _parsed(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def in_words(value: Any) -> str:
    """A before/after cell of the audit log in words: rule sets as their rules, runs by name."""
    value = _parsed(value)
    if value is None:
        return ""
    if isinstance(value, dict):
        for key in ("added", "removed"):
            if isinstance(value.get(key), dict):
                return f"{key} {rule_named(Rule.from_dict(value[key]))}"
        if "segment" in value:
            return segment_words(value)
        if "run" in value:
            return f"run {value['run']} live" if value["run"] else "no live run"
        if "version" in value:
            return rule_set_words(int(value["version"] or 0))
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def segment_words(value: dict) -> str:
    """'segment 'VIPs': uploaded list, 120 shoppers' (or 'no segment 'VIPs'')."""
    if not value.get("spec"):
        return f"no segment '{value['segment']}'"
    users = value.get("users")
    count = len(users) if isinstance(users, list) else users
    listed = f", {count:,} shoppers listed" if value["spec"].get("kind") == "list" and count is not None else ""
    return f"segment '{value['segment']}': {segments.describe(value['spec'])}{listed}"


def rules_as_of(version: int) -> str:
    """'the rules as of 2026-12-05 14:03': a rule set named by when it was made, not by its number."""
    frame = state.read("rule_versions")
    when = frame.loc[frame["version"] == int(version), "created_at"]
    return f"the rules as of {fmt_when(when.iloc[0])}" if len(when) else "earlier rules"


def rule_set_words(version: int) -> str:
    """'the rules as of 2026-12-05 14:03: Summer tripods (pinned at 3: Tripod X (P1)); …'."""
    if not version:
        return "no rules"
    try:
        rules = [Rule.from_dict(r) for r in state.store().rule_set(version)[1]]
    except CrossRecError:
        return rules_as_of(version)
    titles = item_titles([r.item for r in rules if r.item])
    listed = "; ".join(f"{r.name} ({rule_does(r, titles)})" for r in rules)
    return f"{rules_as_of(version)}: {listed}" if listed else f"{rules_as_of(version)}: none"


def change_words(row: dict) -> str:
    """What one audit-log row changed, in a sentence fragment ("added rule 'X' (pinned at 1: …)")."""
    before, after = _parsed(row.get("before")), _parsed(row.get("after"))
    what = row.get("what")
    if what == "live run":
        was = (before or {}).get("run")
        return f"made run {(after or {}).get('run')} live" + (f", instead of {was}" if was else "")
    if what == "segment":
        return ("saved " if (after or {}).get("spec") else "deleted ") + in_words(after if (after or {}).get("spec")
                                                                                 else before)
    if what == "scenario promotion":
        return str(row.get("note") or "promoted a scenario's rules")
    for side in (after, before):
        if isinstance(side, dict) and ({"added", "removed"} & set(side)):
            return in_words(side)
    return f"{what}: {in_words(after)}"


def next_undo(rules_only: bool = False) -> dict | None:
    """The change "Undo" would take back (the one governance.undo picks), or None."""
    from crossrec_core.governance import RULE_CHANGES

    return state.store().last_undoable(RULE_CHANGES if rules_only else None)


def undo_confirmation(change: dict) -> str:
    """The confirmation box's words: "Yes, undo change #4: added rule 'X' (pinned at 1: …)"."""
    return f"Yes, undo change #{int(change['change_id'])}: {change_words(change)}"


def undone_message(change: dict) -> str:
    """What an undo did, after it: "Undid change #4: added rule 'X' (…). It is recorded on History."."""
    return f"Undid change #{int(change['change_id'])}: {change_words(change)}. The undo is recorded on History."
