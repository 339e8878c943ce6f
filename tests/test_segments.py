"""Named segments: an uploaded list or a rule ("bought in X in the last N days", "never bought in Y"),
saved in DuckDB and resolved to shoppers by export and by rules."""
from __future__ import annotations

import csv
import json

import pandas as pd

from crossrec_core.cli import main
from crossrec_core.segments import resolve_segment, save_rule_segment
from crossrec_core.store import Store


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([*map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_rule_segments_follow_the_events(ruled_copy):
    with Store(ruled_copy) as store:
        ev = store.events().merge(store.items()[["item_id", "cat_top"]], on="item_id")
        top = ev["cat_top"].value_counts().index[0]
        other = ev["cat_top"].value_counts().index[1]
        bought = ev[ev["event_type"].isin(["cart", "purchase"])]
        newest = ev["ts"].max()
        recent = set(bought[(bought["cat_top"] == top) & (bought["ts"] >= newest - pd.Timedelta(days=7))]["user_id"])
        never = set(bought[bought["cat_top"] == other]["user_id"])
        n = save_rule_segment(store, "recent fans", bought_in=top.lower(), days=7, never_bought_in=other)
        got = set(resolve_segment(store, "recent fans"))
    assert got == recent - never and n == len(got) > 0


def test_segments_cli_list_export_and_bad_input(ruled_copy, capsys, tmp_path):
    with Store(ruled_copy, read_only=True) as store:
        users = store.user_ids()[:3]
    listed = tmp_path / "vip.csv"
    listed.write_text("user_id\n" + "\n".join(users) + "\n", encoding="utf-8")
    code, out, err = cli(capsys, "segments", "add", "--db", ruled_copy, "vip", "--users", listed)
    assert (code, out, err) == (0, "saved segment 'vip': 3 shoppers\n", "")
    rows = json.loads(cli(capsys, "segments", "list", "--db", ruled_copy, "--json")[1])
    assert rows == [{"name": "vip", "definition": "uploaded list", "users": 3}]
    out_csv = tmp_path / "recs.csv"
    code, _, err = cli(capsys, "export", "--db", ruled_copy, "--out", out_csv, "--segment", "vip", "--k", 2, "--quiet")
    assert code == 0, err
    with open(out_csv, encoding="utf-8-sig", newline="") as f:
        assert sorted({r["user_id"] for r in csv.DictReader(f)}) == sorted(users)
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id\nnobody\n", encoding="utf-8")
    assert cli(capsys, "segments", "add", "--db", ruled_copy, "x", "--users", bad) == (
        2, "", "crossrec segments: segment 'x': unknown user 'nobody' (1 unknown)\n")
    assert cli(capsys, "rules", "add", "--db", ruled_copy, "--exclude-item", "P000001", "--segment", "nope") == (
        2, "", "crossrec rules: unknown segment 'nope' (see `crossrec segments list`)\n")


def test_segment_changes_are_audited_and_undone(ruled_copy):
    """Saving, replacing and deleting a segment each write an audit row; undo brings back the segment as it
    was, members included, and a replaced rule segment gets its old definition back."""
    from crossrec_core import governance
    from crossrec_core.segments import save_list_segment

    with Store(ruled_copy) as store:
        users = sorted(store.user_ids())
        save_list_segment(store, "vip", users[:3])
        save_list_segment(store, "vip", users[3:5])
        assert resolve_segment(store, "vip") == users[3:5]
        log = governance.history(store)
        assert list(log["what"][:2]) == ["segment", "segment"] and log["undoable"][:2].all()
        assert log.iloc[0]["before"]["users"] == users[:3]
        governance.undo(store)
        assert resolve_segment(store, "vip") == users[:3]
        store.delete_segment("vip")
        assert store.segment_spec("vip") is None
        done = governance.undo(store)
        assert done["what"] == "segment" and resolve_segment(store, "vip") == users[:3]
        governance.undo(store)  # the first save: undone, there is no segment of that name again
        assert store.segment_spec("vip") is None
        with_rule = save_rule_segment(store, "fans", never_bought_in=store.items()["cat_top"].iloc[0])
        assert with_rule > 0
        store.put_segment("fans", {"kind": "list"}, users[:1])
        governance.undo(store)
        assert store.segment_spec("fans")["kind"] == "rule" and len(resolve_segment(store, "fans")) == with_rule
