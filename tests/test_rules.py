"""Managed business rules, in-process through the real CLI entry point: stored in DuckDB with versions,
applied the same in `recommend`, `export` and evaluation, and named wherever they changed a list."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from crossrec_core.cli import main
from crossrec_core.governance import add_rule, live_rules
from crossrec_core.rules import Rule
from crossrec_core.runs import serving_recommender
from crossrec_core.store import Store


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([*map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def recommend(capsys, db, user, k=10) -> list[dict]:
    code, out, err = cli(capsys, "recommend", "--db", db, "--user", user, "--k", k, "--json")
    assert code == 0, err
    return json.loads(out)


def a_user_and_item(db: Path) -> tuple[str, str]:
    """A shopper with history and an item not in their current top 10 that they never touched."""
    with Store(db, read_only=True) as store:
        rec = serving_recommender(store)
        user = store.user_summary().query("events > 3")["user_id"].iloc[0]
        listed = set(rec.recommend(user, k=10)["item_id"])
        touched = set(store.user_events(user)["item_id"])
        item = next(i for i in store.items()["item_id"] if i not in listed and i not in touched)
    return user, item


def test_pin_puts_the_item_at_its_position_in_recommend_and_export(ruled_copy, capsys, tmp_path):
    user, item = a_user_and_item(ruled_copy)
    before = recommend(capsys, ruled_copy, user)
    code, out, err = cli(capsys, "rules", "add", "--db", ruled_copy, "--name", "Summer tripods", "--pin", item,
                         "--position", 3)
    assert code == 0 and err == "" and "added rule 1 'Summer tripods'" in out
    after = recommend(capsys, ruled_copy, user)
    assert after[2]["item_id"] == item and after[2]["applied_rules"] == ["pinned at 3 by rule 'Summer tripods'"]
    assert [r["item_id"] for r in after[:2]] == [r["item_id"] for r in before[:2]]
    assert [r["item_id"] for r in after[3:]] == [r["item_id"] for r in before[2:9]]  # the rest moved down one
    assert all("applied_rules" not in r for r in after if r["item_id"] != item)  # only where a rule acted

    users = tmp_path / "users.csv"
    users.write_text(f"user_id\n{user}\n", encoding="utf-8")
    out_csv = tmp_path / "recs.csv"
    code, _, err = cli(capsys, "export", "--db", ruled_copy, "--out", out_csv, "--users", users, "--k", 10, "--quiet")
    assert code == 0, err
    with open(out_csv, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    third = next(r for r in rows if r["rank"] == "3")
    assert third["item_id"] == item and third["applied_rules"] == "pinned at 3 by rule 'Summer tripods'"


def test_rules_list_json_shape_and_remove(ruled_copy, capsys):
    assert cli(capsys, "rules", "list", "--db", ruled_copy, "--json")[1] == "[]\n"
    with Store(ruled_copy, read_only=True) as store:
        cat = store.categories()["cat_top"].iloc[0]
    cli(capsys, "rules", "add", "--db", ruled_copy, "--name", "less of it", "--boost-category", cat,
        "--multiplier", 0.5, "--note", "clearance")
    cli(capsys, "rules", "add", "--db", ruled_copy, "--exclude-category", cat.lower())
    code, out, _ = cli(capsys, "rules", "list", "--db", ruled_copy, "--json")
    rules = json.loads(out)
    assert code == 0 and out.count("\n") == 1
    assert [(r["id"], r["name"], r["kind"], r["target"]) for r in rules] == [
        (1, "less of it", "boost", "category"), (2, f"category {cat}", "exclude", "category")]
    assert rules[0]["multiplier"] == 0.5 and rules[0]["note"] == "clearance" and rules[1]["category"] == cat
    assert {"id", "name", "kind", "what", "segment", "start", "end"} <= set(rules[0])
    assert cli(capsys, "rules", "remove", "--db", ruled_copy, 1)[0] == 0
    assert [r["id"] for r in json.loads(cli(capsys, "rules", "list", "--db", ruled_copy, "--json")[1])] == [2]
    with Store(ruled_copy, read_only=True) as store:
        assert list(store.rule_versions()["version"]) == [3, 2, 1]  # every change is a version


@pytest.mark.parametrize("args, message", [
    (["--pin", "NO-SUCH-ITEM", "--position", 2], "unknown item 'NO-SUCH-ITEM'"),
    (["--exclude-category", "Gardening Tools"], "unknown category 'Gardening Tools'"),
    (["--boost-brand", "NoSuchBrand", "--multiplier", 2], "unknown brand 'NoSuchBrand'"),
    (["--pin", "P000001"], "a pin needs an item and a position of 1 or more"),
    (["--boost-price", "cheap", "--multiplier", 2], "--boost-price 'cheap' is not a range such as 10-50, 100- or -20"),
    (["--exclude-item", "P000001", "--start", "2026-02-30"], "rule start '2026-02-30' is not a date (YYYY-MM-DD)"),
])
def test_bad_rule_is_one_line_and_changes_nothing(ruled_copy, capsys, args, message):
    code, out, err = cli(capsys, "rules", "add", "--db", ruled_copy, "--name", "x", *args)
    assert (code, out, err) == (2, "", f"crossrec rules: {message}\n")
    with Store(ruled_copy, read_only=True) as store:
        assert store.rule_set() == (0, [])


def test_exclude_bury_boost_segment_and_dates(ruled_copy):
    user, item = a_user_and_item(ruled_copy)
    with Store(ruled_copy) as store:
        base = serving_recommender(store).recommend(user, k=10)
        top, second = base["item_id"].iloc[0], base["item_id"].iloc[1]
        brand = base["brand"].iloc[0]
        add_rule(store, Rule("exclude", item=second, name="gone"))
        add_rule(store, Rule("bury", item=top, name="down"))
        add_rule(store, Rule("pin", item=item, position=1, name="old", end="2000-01-01"))  # long over
        lists = serving_recommender(store).recommend(user, k=10)
        assert second not in set(lists["item_id"]) and item not in set(lists["item_id"])
        assert top not in set(lists["item_id"])  # after every other allowed item: out of the top 10
        assert lists["item_id"].iloc[0] == base["item_id"].iloc[2]
        store.put_segment("vip", {"kind": "list"}, [user])
        add_rule(store, Rule("pin", item=item, position=2, segment="vip", name="vip pin"))
        rec = serving_recommender(store)
        assert rec.recommend(user, k=10)["item_id"].iloc[1] == item
        other = store.user_summary().query("events > 3")["user_id"].iloc[1]
        assert item not in set(rec.recommend(other, k=10)["item_id"])  # not in the segment
        assert live_rules(store).segments == {"vip": frozenset({user})}
        brands = rec.recommend(user, k=10)["brand"]
        brand = next(b for b in brands.iloc[::-1] if isinstance(b, str) and b)
        add_rule(store, Rule("boost", brand=brand.upper(), multiplier=0.0, name="no brand"))
        damped = serving_recommender(store).recommend(user, k=10)
        assert brand not in set(damped["brand"].iloc[2:])  # its items sank out of the list
        store.write_rule_set([], what="rules", note="clear")
        add_rule(store, Rule("boost", brand=brand.lower(), multiplier=3.0, name="more"))
        boosted = serving_recommender(store).recommend(user, k=10)
        mine = boosted["brand"] == brand
        assert mine.any() and (boosted.loc[mine, "applied_rules"] == "boosted ×3 by rule 'more'").all()
        assert (boosted.loc[~mine, "applied_rules"] == "").all()


def test_evaluation_ranks_the_lists_the_rules_serve(ruled_copy):
    """What-if and run metrics go through `score`: an excluded item is never ranked, a pinned one is."""
    from crossrec_core.evaluate import make_split, model_top_k
    from crossrec_core.rules import Rules
    from crossrec_core.scorer import FusedScorer

    with Store(ruled_copy, read_only=True) as store:
        items, events = store.items(), store.events()
        rec = serving_recommender(store)
    split = make_split(items, events, rec.settings)
    users = list(split.users("all")[:20])
    fused = FusedScorer(rec.settings, rec.weights).fit(split.train, None, items)
    ctx = split.context(users)
    excl = split.exclusions(users)
    plain = model_top_k(fused, fused.score(ctx), excl, 10)
    pin = items["item_id"].iloc[int(np.argmin(split.item_users))]  # the least bought item
    gone = items["item_id"].iloc[int(plain[0, 0])]
    ruled = fused.with_weights(fused.weights, Rules(managed=[Rule("pin", item=pin, position=2),
                                                            Rule("exclude", item=gone)]))
    top = model_top_k(ruled, ruled.score(split.context(users)), excl, 10)
    pos = fused.data_.item_index.get_loc(pin)
    allowed = ~excl[:, pos]
    assert (top[allowed, 1] == pos).all() and not (top == fused.data_.item_index.get_loc(gone)).any()
