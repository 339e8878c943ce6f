"""CSV export: round-trips through pandas, opens cleanly in Excel, neutralises formulas."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from crossrec_core.config import Settings
from crossrec_core.export import COLUMNS, export_bytes, neutralise, write_csv
from crossrec_core.recommender import Recommender
from crossrec_core.signals.registry import names
from crossrec_core.store import Store

SIGNALS = names()

EVIL = '=HYPERLINK("http://evil.example","click")'


@pytest.mark.parametrize("value,expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-2", "-2"), ("-2+A1", "'-2+A1"), ("-x", "'-x"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("plain", "plain"), ("a=b", "a=b"), (3.5, 3.5),
])
def test_neutralise(value, expected):
    assert neutralise(value) == expected


@pytest.fixture(scope="module")
def evil_rec(small_shop_db, tmp_path_factory):
    """The small shop plus an item whose title is a formula, alone in its category."""
    path = tmp_path_factory.mktemp("export") / "shop.duckdb"
    path.write_bytes(open(small_shop_db, "rb").read())
    store = Store(path)
    store.ingest_frames(items=pd.DataFrame([{
        "item_id": "EVIL-1", "title": EVIL, "category": "Formula > Test",
        "description": 'line one\nline "two", with comma', "brand": "-Brand", "price": 1.0}]))
    yield Recommender(Settings(db_path=path)).fit(store)
    store.close()


def test_export_round_trips_and_neutralises(evil_rec, tmp_path):
    users = evil_rec.store.user_ids()[:40]
    out = tmp_path / "recs.csv"
    n = write_csv(evil_rec, out, users, k=5)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    df = pd.read_csv(out, encoding="utf-8-sig", dtype={"user_id": str, "item_id": str})
    assert list(df.columns) == COLUMNS and len(df) == n == 40 * 5
    assert all(ranks == [1, 2, 3, 4, 5] for ranks in df.groupby("user_id")["rank"].apply(list))
    sums = df[list(SIGNALS)].sum(axis=1)
    assert (abs(sums - df["score"]) < 1e-5).all()
    target = export_bytes(evil_rec, users[:3], k=1, mode="target", category="Formula > Test")
    rows = pd.read_csv(__import__("io").BytesIO(target), encoding="utf-8-sig")
    assert list(rows["title"]) == ["'" + EVIL] * 3
    assert not any(str(v).startswith(("=", "+", "-", "@")) for v in rows.select_dtypes(object).to_numpy().ravel())


def test_cli_export(small_shop_db, tmp_path):
    users = tmp_path / "segment.csv"
    with Store(small_shop_db, read_only=True) as store:
        ids = store.user_ids()[:7]
    pd.DataFrame({"user_id": ids}).to_csv(users, index=False)
    out = tmp_path / "seg.csv"
    proc = subprocess.run([sys.executable, "-m", "crossrec_core.cli", "export", "--db", str(small_shop_db),
                           "--out", str(out), "--users", str(users), "--k", "3", "--mode", "cross", "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out, encoding="utf-8-sig", dtype={"user_id": str})
    assert set(df["user_id"]) == set(ids) and df["rank"].max() == 3
    pd.DataFrame({"user_id": ["ghost"]}).to_csv(users, index=False)
    bad = subprocess.run([sys.executable, "-m", "crossrec_core.cli", "export", "--db", str(small_shop_db),
                          "--out", str(out), "--force", "--users", str(users), "--quiet"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "unknown user 'ghost'" in bad.stderr and "Traceback" not in bad.stderr


def test_export_of_n_users_writes_n_users_with_labelled_fallbacks(small_shop_db, tmp_path):
    """A shopper with no possible list in the mode (here: bought the only item of the target category)
    gets the all-categories list, labelled, instead of silently vanishing from the file."""
    path = tmp_path / "shop.duckdb"
    path.write_bytes(open(small_shop_db, "rb").read())
    with Store(path) as store:
        store.ingest_frames(items=pd.DataFrame([{"item_id": "ONLY-1", "title": "The only one", "category": "Solo > One",
                                                 "description": "", "brand": "", "price": 1.0}]),
                            events=pd.DataFrame([{"user_id": "omni", "item_id": "ONLY-1", "event_type": "purchase",
                                                  "timestamp": "2024-02-01T10:00:00Z"}]))
        rec = Recommender(Settings(db_path=path)).fit(store)
        users = [*store.user_ids()[:4], "omni"]
        out = tmp_path / "solo.csv"
        write_csv(rec, out, users, k=2, mode="target", category="Solo > One")
    df = pd.read_csv(out, encoding="utf-8-sig", dtype={"user_id": str, "item_id": str})
    assert sorted(df["user_id"].unique()) == sorted(users)
    omni = df[df["user_id"] == "omni"]
    assert len(omni) == 2 and omni["reason"].str.startswith("Fallback (nothing left").all()
    assert (df[df["user_id"] != "omni"]["item_id"] == "ONLY-1").all()


@pytest.mark.parametrize("mode", ["all", "cross"])
def test_streamed_rows_equal_the_per_shopper_lists(evil_rec, mode):
    """iter_rows (the arrays, no frame per shopper) gives what the explained per-shopper lists say."""
    from crossrec_core.export import iter_rows

    users = list(evil_rec.store.user_ids())[:60]
    rows = list(iter_rows(evil_rec, users, k=7, mode=mode, batch_size=16))
    want = []
    for uid, df in evil_rec.recommend_batch(users, k=7, mode=mode, explain=True):
        if df.empty:
            continue
        for r in df.itertuples(index=False):
            want.append([uid, r.rank, r.item_id, r.reason])
    got = [[row[0], row[1], row[2], row[-2]] for row in rows if not str(row[-2]).startswith("Fallback")]
    assert got == [[neutralise(str(a)), b, neutralise(str(c)), neutralise(str(d))] for a, b, c, d in want]
    assert len({row[0] for row in rows}) == len(users)  # every shopper listed (fallbacks included)
