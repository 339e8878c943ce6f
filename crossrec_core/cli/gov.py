"""`crossrec rules|runs|undo|history|segments`: what shoppers get, changed deliberately and undoably."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Callable

from .. import governance, segments
from ..errors import CrossRecError
from ..paths import expand
from .base import command, input_files, open_store, print_json

if TYPE_CHECKING:
    from ..store import Store

# flag -> (rule kind, what it names)
ACTIONS = {"pin": ("pin", "item"),
           "exclude_item": ("exclude", "item"), "exclude_category": ("exclude", "category"),
           "exclude_brand": ("exclude", "brand"),
           "bury_item": ("bury", "item"), "bury_category": ("bury", "category"), "bury_brand": ("bury", "brand"),
           "boost_item": ("boost", "item"), "boost_category": ("boost", "category"), "boost_brand": ("boost", "brand"),
           "boost_price": ("boost", "price")}


def _price_range(text: str) -> tuple[float | None, float | None]:
    lo, sep, hi = text.partition("-")
    try:
        if not sep:
            raise ValueError
        return (float(lo) if lo.strip() else None, float(hi) if hi.strip() else None)
    except ValueError:
        raise CrossRecError(f"--boost-price '{text}' is not a range such as 10-50, 100- or -20") from None


def rule_from_args(args: argparse.Namespace):
    """The one rule `rules add` describes (exactly one action flag)."""
    from ..rules import Rule

    given = [a for a in ACTIONS if getattr(args, a) is not None]
    if len(given) != 1:
        raise CrossRecError("give exactly one of --pin, --exclude-*, --bury-* or --boost-* (see --help)")
    action = given[0]
    kind, target = ACTIONS[action]
    value = getattr(args, action)
    if kind != "boost" and args.multiplier is not None:
        raise CrossRecError("--multiplier goes with a --boost-* rule")
    if kind != "pin" and args.position is not None:
        raise CrossRecError("--position goes with --pin")
    if args.from_category is not None and action != "boost_category":
        raise CrossRecError("--from-category goes with --boost-category (a category pair)")
    fields = {"price_min": None, "price_max": None}
    if target == "price":
        fields["price_min"], fields["price_max"] = _price_range(value)
    else:
        fields[target] = value
    return Rule(kind, **fields, from_category=args.from_category, position=args.position,
                multiplier=args.multiplier, segment=args.segment, start=args.start, end=args.end,
                name=args.name or "", note=args.note or "")


@command
def cmd_rules(args: argparse.Namespace) -> int:
    """List, add or remove the live business rules."""
    return _list_or_change(args, governance.rules_json, _rule_line, _rule_change,
                           "no live rules (add one: `crossrec rules add --help`)")


def _rule_change(store: Store, args: argparse.Namespace) -> str:
    if args.action == "undo":
        return _undone(governance.undo(store, rules_only=True))
    if args.action == "add":
        rule = governance.add_rule(store, rule_from_args(args), args.note or "")
        return f"added rule {rule.id} '{rule.name}': {rule.kind} {rule.what()}"
    rule = governance.remove_rule(store, args.id)
    return f"removed rule {rule.id} '{rule.name}' (`crossrec undo` brings it back)"


def _list_or_change(args: argparse.Namespace, rows_of: Callable[[Store], list[dict]], line: Callable[[dict], str],
                    change: Callable[[Store, argparse.Namespace], str], empty: str) -> int:
    """`list` prints the rows (`_listing`); every other action is a `change`."""
    return _listing(args, rows_of, line, empty) if args.action == "list" else _change(args, change)


def _change(args: argparse.Namespace, change: Callable[[Store, argparse.Namespace], str]) -> int:
    """A changing action: `change` on the store opened for writing, then the line it returns."""
    with open_store(args, write=True) as store:
        line = change(store, args)
    print(line)
    return 0


def _undone(done: dict) -> str:
    return f"undid change {done['change_id']}: {done['what']} ({done['note']})"


def _listing(args: argparse.Namespace, rows_of, line, empty: str = "") -> int:
    """A `list` action: one JSON document with --json, else one line per row (or `empty`)."""
    with open_store(args) as store:
        rows = rows_of(store)
    if args.json:
        print_json(rows)
    elif not rows and empty:
        print(empty)
    for r in rows if not args.json else []:
        print(line(r))
    return 0


def _rule_line(r: dict) -> str:
    effect = {"pin": f"at {r['position']}", "boost": f"×{r['multiplier'] or 0:g}"}.get(r["kind"], "")
    extra = "".join(f"  {label} {r[key]}" for key, label in (("segment", "segment"), ("start", "from"),
                                                             ("end", "until")) if r.get(key))
    return f"{r['id']:>4}  {r['kind']:<7} {r['what']:<40} {effect:<14} {r['name']}{extra}"


def _run_line(r: dict) -> str:
    m = ((r["metrics"]["slices"] or {}).get("all") or {}).get("crossrec") or {}
    rec = "" if m.get("recall") is None else f"Recall@{r['metrics']['k']} {m['recall']:.4f}"
    return f"{'*' if r['live'] else ' '} {r['name']:<32} {r['created'][:19]:<19} {r['kind']:<5} {rec:<18} {r['note']}"


@command
def cmd_runs(args: argparse.Namespace) -> int:
    """List runs, make one live, annotate or delete one."""
    return _list_or_change(args, governance.runs_json, _run_line, _run_change, "no runs yet (`crossrec train`)")


def _run_change(store: Store, args: argparse.Namespace) -> str:
    if args.action == "promote":
        governance.promote_run(store, args.name, args.note or "")
        return f"run '{args.name}' is live (`crossrec undo` makes the previous one live again)"
    if args.action == "note":
        governance.annotate_run(store, args.name, args.note or "")
        return f"noted on run '{args.name}'"
    governance.delete_run(store, args.name)
    return f"deleted run '{args.name}' and its model"


@command
def cmd_undo(args: argparse.Namespace) -> int:
    """Revert the last change to the rules, the live run or a segment."""
    return _change(args, lambda store, _: _undone(governance.undo(store)))


@command
def cmd_history(args: argparse.Namespace) -> int:
    """The audit log: every change to the rules, the live run and the runs, newest first."""
    with open_store(args) as store:
        df = governance.history(store, args.limit)
    if args.json:
        print_json([{**r, "at": str(r["at"])} for r in df.to_dict(orient="records")])
        return 0
    for r in df.itertuples(index=False):
        print(f"{r.change_id:>5}  {str(r.at)[:19]}  {r.what:<12} {r.note}{'  (undone)' if r.undone else ''}")
    return 0


@command
def cmd_segments(args: argparse.Namespace) -> int:
    """List, save or remove named segments of shoppers."""
    return _list_or_change(args, segments.segments_json,
                           lambda r: f"{r['name']:<32} {r['users']:>8,} shoppers  {r['definition']}",
                           _segment_change, "no segments (`crossrec segments add --help`)")


def _segment_change(store: Store, args: argparse.Namespace) -> str:
    if args.action == "remove":
        store.delete_segment(args.name)
        return f"removed segment '{args.name}'"
    if args.users:
        from ..ingest import read_table

        input_files(args, "--users")
        table = read_table(args.users, "users")
        n = segments.save_list_segment(store, args.name, table.frame["user_id"].astype(str).tolist())
    else:
        n = segments.save_rule_segment(store, args.name, bought_in=args.bought_in, days=args.days,
                                       never_bought_in=args.never_bought_in)
    return f"saved segment '{args.name}': {n:,} shoppers"


def _actions(sub, common, name: str, help_: str):
    p = sub.add_parser(name, parents=[common], help=help_)
    return p.add_subparsers(dest="action", metavar="ACTION", required=True)


def _json_flag(p) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document")


def add_parsers(sub, common) -> None:
    acts = _actions(sub, common, "rules", "list, add or remove the live business rules")
    _json_flag(acts.add_parser("list", parents=[common], help="the live rules, in the order they apply"))
    p = acts.add_parser("remove", parents=[common], help="take a rule out of the live set (undo brings it back)")
    p.add_argument("id", type=int, help="the rule's id (`crossrec rules list`)")
    acts.add_parser("undo", parents=[common], help="revert the last change to the rules (not to the live run)")
    p = acts.add_parser("add", parents=[common], help="add a rule to the live set: exactly one --pin, "
                                                       "--exclude-*, --bury-* or --boost-*")
    p.add_argument("--name", help="a name shown wherever the rule changed a list")
    p.add_argument("--note", help="why (kept with the rule and in the history)")
    p.add_argument("--pin", metavar="ITEM", help="pin this item at --position")
    p.add_argument("--position", type=int, help="for --pin: 1 = first")
    for kind in ("exclude", "bury", "boost"):
        p.add_argument(f"--{kind}-item", metavar="ITEM")
        p.add_argument(f"--{kind}-category", metavar="C", help="top-level name, level-2 path or full path")
        p.add_argument(f"--{kind}-brand", metavar="B")
    p.add_argument("--boost-price", metavar="LO-HI", help="price range, e.g. 10-50, 100- or -20")
    p.add_argument("--multiplier", type=float, help="for --boost-*: above 1 boosts, below 1 damps")
    p.add_argument("--from-category", metavar="A", help="with --boost-category: only shoppers with history in A")
    p.add_argument("--segment", help="only for the shoppers of this saved segment")
    p.add_argument("--start", metavar="D", help="first day it applies (YYYY-MM-DD)")
    p.add_argument("--end", metavar="D", help="last day it applies (YYYY-MM-DD)")

    acts = _actions(sub, common, "runs", "list runs; make one live; annotate or delete one")
    _json_flag(acts.add_parser("list", parents=[common], help="every run, newest first (* = live)"))
    for action, help_ in (("promote", "make a run live (undo makes the previous one live again)"),
                          ("note", "keep a note with a run"), ("delete", "remove a run and its model (never the live one)")):
        p = acts.add_parser(action, parents=[common], help=help_)
        p.add_argument("name", help="the run")
        p.add_argument("--note", help="why" if action != "note" else "the note")

    sub.add_parser("undo", parents=[common], help="revert the last change to the rules or the live run")

    p = sub.add_parser("history", parents=[common], help="every change to the rules, the live run and the runs")
    p.add_argument("--limit", type=int, default=50)
    _json_flag(p)

    acts = _actions(sub, common, "segments", "named segments of shoppers, for rules and export")
    _json_flag(acts.add_parser("list", parents=[common], help="every segment and how many shoppers it holds now"))
    p = acts.add_parser("remove", parents=[common], help="remove a segment")
    p.add_argument("name")
    p = acts.add_parser("add", parents=[common], help="save a segment: a list (--users) or a rule (--bought-in, "
                                                       "--never-bought-in)")
    p.add_argument("name")
    p.add_argument("--users", type=expand, help="CSV/Parquet with a user_id column (a list segment)")
    p.add_argument("--bought-in", metavar="C", help="shoppers who carted or bought in C")
    p.add_argument("--days", type=int, help="... in the last N days before the newest event")
    p.add_argument("--never-bought-in", metavar="C", help="and never carted or bought in C")
