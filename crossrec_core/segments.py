"""Named segments of shoppers, saved in the store and resolved to user ids by export, what-if and rules.

A segment is a list (an uploaded file of user ids) or a rule: "bought in X in the last N days" (carted
or bought, counted back from the newest event in the data, so a historical log works too) and/or
"never bought in Y". A rule segment is resolved when it is used, so it follows the data.
"""
from __future__ import annotations

from .errors import CrossRecError

MAX_SEGMENT_NAME = 100


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_SEGMENT_NAME or any(not ch.isprintable() for ch in name):
        raise CrossRecError(f"a segment needs a printable name of at most {MAX_SEGMENT_NAME} characters")
    return name


def save_list_segment(store, name: str, user_ids: list[str]) -> int:
    """Save a segment of these shoppers (every id must be a known user); how many it holds."""
    name = _check_name(name)
    ids = [str(u).strip() for u in user_ids if str(u).strip()]
    if not ids:
        raise CrossRecError(f"segment '{name}' lists no user ids")
    known = set(store.user_ids())
    unknown = [u for u in ids if u not in known]
    if unknown:
        raise CrossRecError(f"segment '{name}': unknown user '{unknown[0]}' ({len(unknown)} unknown)")
    store.put_segment(name, {"kind": "list"}, ids)
    return len(set(ids))


def save_rule_segment(store, name: str, *, bought_in: str | None = None, days: int | None = None,
                      never_bought_in: str | None = None) -> int:
    """Save a rule segment; how many shoppers it holds now."""
    from .governance import _category

    name = _check_name(name)
    if bought_in is None and never_bought_in is None:
        raise CrossRecError("a rule segment needs 'bought in' and/or 'never bought in' a category")
    if days is not None and (bought_in is None or int(days) < 1):
        raise CrossRecError("'in the last N days' needs a 'bought in' category and N of 1 or more")
    spec = {"kind": "rule", "bought_in": None if bought_in is None else _category(store, bought_in),
            "days": None if days is None else int(days),
            "never_bought_in": None if never_bought_in is None else _category(store, never_bought_in)}
    store.put_segment(name, spec)
    return len(resolve_segment(store, name))


def resolve_segment(store, name: str) -> list[str]:
    """The user ids of a saved segment, sorted."""
    spec = store.segment_spec(name)
    if spec is None:
        raise CrossRecError(f"unknown segment '{name}' (see `crossrec segments list`)")
    if spec.get("kind") == "list":
        return store.segment_list(name)
    users = set(store.users_buying(spec["bought_in"], spec.get("days")) if spec.get("bought_in")
                else store.user_ids())
    if spec.get("never_bought_in"):
        users -= set(store.users_buying(spec["never_bought_in"]))
    return sorted(users)


def describe(spec: dict) -> str:
    """A segment's definition in words."""
    if spec.get("kind") == "list":
        return "uploaded list"
    parts = []
    if spec.get("bought_in"):
        parts.append(f"bought in {spec['bought_in']}" + (f" in the last {spec['days']} days" if spec.get("days") else ""))
    if spec.get("never_bought_in"):
        parts.append(f"never bought in {spec['never_bought_in']}")
    return " and ".join(parts)


def segments_json(store) -> list[dict]:
    """Every segment: {"name", "definition", "users"} (users: how many it resolves to now)."""
    return [{"name": r["name"], "definition": describe(r["spec"] or {}), "users": len(resolve_segment(store, r["name"]))}
            for r in store.segments().to_dict(orient="records")]
