"""Managing what shoppers get: the live rule set (versioned), the live run, the audit log and undo.

The functions a page or the CLI calls; each change is one transaction together with its audit row
(crossrec_core/store_gov.py), and `undo` reverts the newest change to the rules or the live run.
"""
from __future__ import annotations

import shutil
from typing import Any, TYPE_CHECKING

import pandas as pd

from .errors import CrossRecError
from .rules import Rule, Rules

if TYPE_CHECKING:
    from .recommender import Recommender
    from .store import Store


MAX_RULE_NAME = 100


# ---- rules ----------------------------------------------------------------------------------------


def rule_list(store: Store) -> list[Rule]:
    """The live rules, in the order they apply."""
    return [Rule.from_dict(r) for r in store.rule_set()[1]]


def live_rules(store: Store) -> Rules:
    """The live rule set as `Rules`, with the shoppers of every segment the rules name resolved."""
    from .segments import resolve_segment

    rules = rule_list(store)
    segments = {name: frozenset(resolve_segment(store, name)) for name in {r.segment for r in rules if r.segment}}
    return Rules(managed=rules, segments=segments)


def rules_json(store: Store) -> list[dict]:
    """`crossrec rules list --json`: one object per live rule, {"id", "name", "kind", "target", "what", ...}."""
    return [{"id": r.id, "name": r.name, "kind": r.kind, "target": r.target, "what": r.what(),
             **{k: v for k, v in r.to_dict().items() if k not in ("id", "name", "kind")}} for r in rule_list(store)]


def check_rule(store: Store, rule: Rule) -> Rule:
    """The rule's shape, and its item, brand, category and segment checked against this shop (one line
    each when wrong); brand and category spelled as the catalog spells them."""
    rule.check()
    name = (rule.name or "").strip()
    if len(name) > MAX_RULE_NAME or any(not ch.isprintable() for ch in name):
        raise CrossRecError(f"rule name must be printable and at most {MAX_RULE_NAME} characters")
    if rule.item is not None and not store.has_item(rule.item):
        raise CrossRecError(f"unknown item '{rule.item}'")
    if rule.brand is not None:
        brand = store.brand_name(rule.brand)
        if brand is None:
            raise CrossRecError(f"unknown brand '{rule.brand}'")
        rule.brand = brand
    for attr in ("category", "from_category"):
        value = getattr(rule, attr)
        if value is not None:
            setattr(rule, attr, _category(store, value))
    if rule.segment is not None and store.segment_spec(rule.segment) is None:
        raise CrossRecError(f"unknown segment '{rule.segment}' (see `crossrec segments list`)")
    rule.name = name or rule.what()  # after the names are spelled as the catalog spells them
    return rule


def _category(store: Store, name: str) -> str:
    from .rules import CategoryMatcher

    cats = store.categories()
    matcher = CategoryMatcher(cats["cat_top"].to_numpy(), cats["cat_sub"].to_numpy(), cats["category"].to_numpy())
    return matcher.resolve(name)


def _next_rule_id(store: Store) -> int:
    used = [r.get("id") or 0 for rules in store.rule_versions()["rules"] for r in (rules or [])]
    return max(used, default=0) + 1


def add_rule(store: Store, rule: Rule, note: str = "") -> Rule:
    """Check a rule and add it to the live rule set (a new version, one audit row)."""
    rule = check_rule(store, rule)
    rule.id = _next_rule_id(store)
    rules = [*store.rule_set()[1], rule.to_dict()]
    store.write_rule_set(rules, what="rules", note=note or f"added rule '{rule.name}'",
                         after={"added": rule.to_dict()})
    return rule


def remove_rule(store: Store, rule_id: int, note: str = "") -> Rule:
    """Take rule `rule_id` out of the live rule set (a new version, one audit row)."""
    rules = store.rule_set()[1]
    gone = [r for r in rules if r.get("id") == int(rule_id)]
    if not gone:
        raise CrossRecError(f"no live rule with id {rule_id} (see `crossrec rules list`)")
    store.write_rule_set([r for r in rules if r.get("id") != int(rule_id)], what="rules",
                         note=note or f"removed rule '{gone[0].get('name')}'", before={"removed": gone[0]})
    return Rule.from_dict(gone[0])


def replace_rules(store: Store, rules: list[Rule], note: str, what: str = "rules") -> int:
    """Make `rules` the whole live rule set (each checked; new ones get ids); the new version."""
    next_id = _next_rule_id(store)
    out = []
    for r in rules:
        r = check_rule(store, r)
        if r.id is None:
            r.id, next_id = next_id, next_id + 1
        out.append(r.to_dict())
    return store.write_rule_set(out, what=what, note=note)


# ---- runs -----------------------------------------------------------------------------------------


def runs_json(store: Store) -> list[dict]:
    """`crossrec runs list --json`: one object per run, newest first: {"name", "created", "live",
    "metrics", "kind", "weights", "note", "duration_s"}; metrics are the held-out slices and intervals."""
    df = store.runs()
    out = []
    for r in df.to_dict(orient="records"):
        m = r.get("metrics") or {}
        out.append({"name": r["name"], "created": pd.Timestamp(r["created_at"]).isoformat(), "live": bool(r["serving"]),
                    "kind": r["kind"], "note": r.get("note") if isinstance(r.get("note"), str) else "",
                    "weights": r.get("weights") or {}, "duration_s": float(r.get("duration_s") or 0.0),
                    "metrics": {"k": m.get("k"), "slices": m.get("slices", {}), "intervals": m.get("intervals", {})}})
    return out


def promote_run(store: Store, name: str, note: str = "") -> None:
    """Make a trained run live (one audit row; `undo` makes the previous one live again)."""
    live = store.run()
    if live is not None and live["name"] == name:
        raise CrossRecError(f"run '{name}' is live already")
    store.set_live_run(name, note or f"made run '{name}' live")


def annotate_run(store: Store, name: str, note: str) -> None:
    store.set_run_note(name, note)


def delete_run(store: Store, name: str) -> None:
    """Remove a run and its model folder (never the live run)."""
    from .runs import _RUN_FOLDER

    folder = store.delete_run_row(name, f"deleted run '{name}'")
    if folder and _RUN_FOLDER.fullmatch(str(folder)):
        shutil.rmtree(store.artefact_dir / str(folder), ignore_errors=True)


# ---- audit log ------------------------------------------------------------------------------------


def history(store: Store, limit: int = 100) -> pd.DataFrame:
    """The audit log for a page, newest first: change_id, at, what, before, after, note, undoable, undone."""
    return store.audit_log(limit)


RULE_CHANGES = ("rules", "scenario promotion")


def undo(store: Store, note: str = "", *, rules_only: bool = False) -> dict[str, Any]:
    """Revert the newest change to the rules, the live run or a segment (only to the rules with `rules_only`)
    not undone yet; what was reverted."""
    change = store.last_undoable(RULE_CHANGES if rules_only else None)
    if change is None:
        raise CrossRecError("nothing to undo" + (" in the rules" if rules_only else ""))
    text = note or f"undid change {change['change_id']} ({change['what']}: {change['note']})"
    if change["what"] == "live run":
        store.undo_live_run(change, text)
    elif change["what"] == "segment":
        store.undo_segment(change, text)
    else:  # rules, scenario promotion
        store.undo_rule_set(change, text)
    return {"change_id": int(change["change_id"]), "what": change["what"], "note": change["note"]}


# ---- what-if scenarios ----------------------------------------------------------------------------


def scenario_rules(store: Store, name: str) -> Rules:
    """A saved what-if scenario's rules (its category pairs and exclusions) as managed rules named after it."""
    df = store.scenarios()
    row = df[df["name"] == name]
    if row.empty:
        raise CrossRecError(f"no scenario named '{name}'")
    rules = Rules.from_dict((row.iloc[0]["spec"] or {}).get("rules"))
    managed = []
    for r in rules.all():
        r.name = f"{name}: {r.what()}"
        managed.append(r)
    return Rules(managed=managed)


def scenario_effect(store: Store, name: str, rec: Recommender | None = None, *, k: int | None = None, progress=None) -> dict:
    """What promoting scenario `name` would do, for a page to confirm first: its rules in words and the
    held-out deltas of the live lists with its rules added (each with its 95 % interval and noise flag)."""
    from .runs import serving_recommender
    from .whatif import held_out_deltas

    rec = rec if rec is not None else serving_recommender(store)
    if rec is None:
        raise CrossRecError("no live run yet: train one first (`crossrec train`)")
    rules = scenario_rules(store, name)
    _, deltas = held_out_deltas(rec, rules, None, k=int(k or rec.settings.evaluation.k), progress=progress)
    return {"scenario": name, "rules": [f"{r.verb()} {r.what()}" for r in rules.managed],
            "deltas": {m: d.to_dict() for m, d in deltas.items()}}


def promote_scenario(store: Store, name: str, note: str = "") -> int:
    """Add scenario `name`'s rules to the live rule set (one version, one audit row 'scenario promotion';
    `undo` takes them out again). Its fusion weights are not rules: train a run with them instead."""
    rules = scenario_rules(store, name).managed
    if not rules:
        raise CrossRecError(f"scenario '{name}' has no rules to promote")
    return replace_rules(store, [*rule_list(store), *rules], note or f"promoted scenario '{name}'",
                         what="scenario promotion")
