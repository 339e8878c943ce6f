"""Go-live made explicit, in-process through the real CLI entry point: a trained run stays off until
promoted (the first run of a database excepted), every change is in the audit log, and undo reverts it."""
from __future__ import annotations

import json
from pathlib import Path

from crossrec_core.cli import main
from crossrec_core.store import Store


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([*map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def runs(capsys, db) -> list[dict]:
    code, out, err = cli(capsys, "runs", "list", "--db", db, "--json")
    assert code == 0 and out.count("\n") == 1, err
    return json.loads(out)


def live(capsys, db) -> str:
    return [r["name"] for r in runs(capsys, db) if r["live"]][0]


def test_train_leaves_the_live_run_until_promoted_and_undo_restores(ruled_copy, capsys):
    assert [(r["name"], r["live"]) for r in runs(capsys, ruled_copy)] == [("first", True)]  # the first run is live
    code, out, err = cli(capsys, "train", "--db", ruled_copy, "--no-learn", "--name", "second", "--quiet")
    assert code == 0, err
    assert "run second is recorded; the live run is still 'first' (`crossrec runs promote second`)" in out
    listed = runs(capsys, ruled_copy)
    assert [(r["name"], r["live"]) for r in listed] == [("second", False), ("first", True)]
    assert {"name", "created", "live", "metrics", "kind", "weights", "note"} <= set(listed[0])
    assert listed[0]["metrics"]["slices"]["all"]["crossrec"]["users"] > 0

    assert cli(capsys, "runs", "promote", "--db", ruled_copy, "second")[0] == 0
    assert live(capsys, ruled_copy) == "second"
    code, out, _ = cli(capsys, "undo", "--db", ruled_copy)
    assert code == 0 and out.startswith("undid change") and "live run" in out
    assert live(capsys, ruled_copy) == "first"
    with Store(ruled_copy, read_only=True) as store:
        log = store.audit_log()
    assert list(log["what"]) == ["undo", "live run", "live run"]
    assert log["before"].iloc[1] == {"run": "first"} and log["after"].iloc[1] == {"run": "second"}
    assert bool(log["undone"].iloc[1]) and not bool(log["undone"].iloc[2])

    code, out, err = cli(capsys, "train", "--db", ruled_copy, "--no-learn", "--name", "third", "--promote", "--quiet")
    assert code == 0 and "run third is live" in out, err
    assert live(capsys, ruled_copy) == "third"


def test_undo_reverts_rules_then_live_run_in_order_and_says_when_nothing_is_left(ruled_copy, capsys):
    with Store(ruled_copy, read_only=True) as store:
        item = store.items()["item_id"].iloc[0]
    cli(capsys, "rules", "add", "--db", ruled_copy, "--exclude-item", item)
    cli(capsys, "rules", "remove", "--db", ruled_copy, 1)
    assert json.loads(cli(capsys, "rules", "list", "--db", ruled_copy, "--json")[1]) == []
    assert cli(capsys, "rules", "undo", "--db", ruled_copy)[0] == 0  # the removal
    assert [r["id"] for r in json.loads(cli(capsys, "rules", "list", "--db", ruled_copy, "--json")[1])] == [1]
    assert cli(capsys, "undo", "--db", ruled_copy)[0] == 0  # the addition
    assert json.loads(cli(capsys, "rules", "list", "--db", ruled_copy, "--json")[1]) == []
    assert cli(capsys, "rules", "undo", "--db", ruled_copy) == (
        2, "", "crossrec rules: nothing to undo in the rules\n")  # the live run is not a rule
    code, out, err = cli(capsys, "undo", "--db", ruled_copy)  # the first run going live: refused (issue 22.18)
    assert (code, out) == (2, "") and "would leave no live run" in err and err.count("\n") == 1
    assert [r["live"] for r in runs(capsys, ruled_copy)] == [True]


def test_runs_note_delete_never_the_live_one(ruled_copy, capsys):
    cli(capsys, "train", "--db", ruled_copy, "--no-learn", "--name", "spare", "--quiet")
    assert cli(capsys, "runs", "note", "--db", ruled_copy, "spare", "--note", "popularity heavier")[0] == 0
    assert runs(capsys, ruled_copy)[0]["note"] == "popularity heavier"
    assert cli(capsys, "runs", "delete", "--db", ruled_copy, "first") == (
        2, "", "crossrec runs: run 'first' is live; make another run live first (`crossrec runs promote`)\n")
    with Store(ruled_copy, read_only=True) as store:
        folder = Path(f"{ruled_copy}.artefacts") / store.run("spare")["artefact_path"]
    assert folder.is_dir()
    assert cli(capsys, "runs", "delete", "--db", ruled_copy, "spare")[0] == 0
    assert [r["name"] for r in runs(capsys, ruled_copy)] == ["first"] and not folder.exists()
    assert cli(capsys, "runs", "promote", "--db", ruled_copy, "nope") == (
        2, "", "crossrec runs: no run named 'nope'\n")
    code, out, _ = cli(capsys, "history", "--db", ruled_copy, "--json")
    assert [h["what"] for h in json.loads(out)][:2] == ["run deleted", "run note"]
