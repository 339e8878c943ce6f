"""The dashboard in a merchandiser's words (issue 24, "Words"): metric names a shop reads, with the technical
name kept in the help; "no change" said plainly when two runs' figures are identical; one card per figure on
What-if; "Bought in" and "0 = any time" in sight on Segments; the Item page's tables sorted by what they show.
Through Streamlit's AppTest on the small trained shop (`ruled_copy`, `trained_shop`)."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from crossrec_core.store import Store
from test_app import add_pair, trained_shop  # noqa: F401  (the session's small trained shop)
from test_views_item import run_app as app
from ui import words
from ui.deltas import delta_frame
from ui.fmt import fmt_interval


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def config(table) -> str:
    """A table's column settings (headers, help) as the browser gets them."""
    return str(getattr(table.proto, "columns", ""))


def test_metric_names_read_as_a_shop_with_the_technical_name_in_the_help():
    assert words.word("recall") == "Found later buys"
    assert words.meaning("recall", 20) == ("Recall@20: of the products shoppers went on to buy, how many the list "
                                           "of 20 had")
    assert words.meaning("ndcg", 10).startswith("NDCG@10: ") and words.word("ndcg") == "Found near the top"
    assert words.word("mrr") == "MRR"  # no shop words: the core's label
    assert "validation carve-out" in words.LEARN_HELP and "carve-out" not in words.LEARN
    assert "learned ranker" in words.MODEL_HELP and "ranker" not in " ".join(words.MODELS.values())


def test_identical_figures_say_no_change_and_a_crossing_interval_no_clear_difference():
    same = {"recall": {"base": 0.2, "other": 0.2, "diff": 0.0, "low": 0.0, "high": 0.0}}
    noisy = {"recall": {"base": 0.2, "other": 0.21, "diff": 0.01, "low": -0.01, "high": 0.03}}
    assert delta_frame(same, "a", "b", 20)["verdict"].tolist() == ["no change"]
    assert delta_frame(noisy, "a", "b", 20)["verdict"].tolist() == ["no clear difference"]
    assert delta_frame(noisy, "a", "b", 20)["metric"].tolist() == ["Found later buys"]
    iv = {"intervals": {"recall": {"diff": 0.004, "low": -0.001, "high": 0.009, "best": "als"}}}
    assert fmt_interval(iv) == "+0.0040 [-0.0010, +0.0090] vs Matrix factorisation (ALS): no clear difference"


def test_runs_retrained_on_unchanged_data_compare_as_no_change(ruled_copy, monkeypatch):
    from crossrec_core.config import Settings
    from crossrec_core.train import train

    with Store(ruled_copy) as store:  # the same data, the same given weights as "first"
        train(store, Settings(db_path=ruled_copy), name="again", learn=False, baselines=False)
    at = app(ruled_copy, monkeypatch, "runs")
    ok(at)
    table = next(d for d in at.dataframe if "serving" in d.value.columns)
    assert all(f'"{h}"' in config(table) for h in ("Found later buys", "Near the top", "vs simple methods"))
    assert "Recall@20" in config(table) and not any("@" in c for c in table.value.columns)  # in the help only
    assert "vs_best" in table.value.columns and "weights" not in table.value.columns  # the table fits 820 px
    details = " ".join(m.value for m in at.markdown)
    assert "How lists are ordered" in details and "ranker" not in details  # how the run was made, in words
    at.toggle(key="cmp_go_first_again").set_value(True).run()
    ok(at)
    assert any(i.value.startswith("No change: first and again give identical figures") for i in at.info), \
        [i.value for i in at.info]
    deltas = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    assert set(deltas["verdict"]) == {"no change"}


def test_segment_form_says_bought_in_and_any_time_in_sight(ruled_copy, monkeypatch):
    at = app(ruled_copy, monkeypatch, "segments")
    ok(at)
    assert at.selectbox(key="seg_bought").label == "Bought in"  # as the saved segment reads: "bought in X"
    assert "0 = any time" in at.number_input(key="seg_days").label
    assert any("a cart in the category counts" in c.value for c in at.caption)


def test_item_page_tables_are_sorted_by_the_column_they_show(trained_shop, monkeypatch):
    with Store(trained_shop, read_only=True) as store:
        ev = store.events()
        item = str(ev[ev["event_type"] == "purchase"]["item_id"].value_counts().index[0])
    at = app(trained_shop, monkeypatch, "item", item=item)
    ok(at)
    together = next(d.value for d in at.dataframe if "together" in d.value.columns)
    assert len(together) > 1 and together["together"].is_monotonic_decreasing
    assert any(c.value.startswith("Shoppers: everyone who viewed, carted or bought") for c in at.caption)


def test_whatif_shows_one_card_per_figure_and_no_raw_item_id_header(ruled_copy, monkeypatch):
    at = app(ruled_copy, monkeypatch, "whatif")
    add_pair(at)
    at.slider(key="wi_n").set_value(100)
    at.button(key="wi_run").click().run()  # held-out metrics on (the default)
    ok(at)
    labels = [m.label for m in at.metric]
    assert labels.count("Found later buys") == 1 and not any(lbl.startswith("Held-out") for lbl in labels), labels
    assert at.checkbox(key="wi_eval").label == "Held-out metrics"
    moved = [d for d in at.dataframe if "item_id" in d.value.columns and "users" in d.value.columns]
    assert moved and all('"Item id"' in config(d) or "Item id" in config(d) for d in moved)


def test_a_table_cell_text_is_cut_at_a_word_to_fit_its_pixels():
    from ui.text import fit_px, text_px

    reason = "Shoppers who bought All-Clad D3 Saucepan 2 qt, Stainless went on to it; goes with it in baskets"
    cut = fit_px(reason, 250)
    assert cut.endswith("…") and text_px(cut) <= 250 and reason.startswith(cut[:-1])
    assert reason[len(cut) - 1] == " "  # cut between words, not inside one
    assert fit_px("Short title", 250) == "Short title" and fit_px(None, 50) == ""
