"""The serving run, its fitted model (loaded once per run and data state) and cached recommendation lists.

Lists are keyed by `rec_key()` = (database path, store version, serving run): a new event, a new run or a
new serving choice each make the next list fresh. The model itself is keyed by the run and the data
fingerprint, so saving a scenario or a map does not reload it, while a load or a removal of events does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from crossrec_core.errors import CrossRecError
from crossrec_core.store import Store

if TYPE_CHECKING:  # the model's modules load with the first model, not with the first page
    from crossrec_core.recommender import Recommender

from . import flow, state
from .text import error


def serving_run() -> dict | None:
    df = state.runs()
    if df.empty or not df["serving"].any():
        return None
    return df[df["serving"]].iloc[0].to_dict()


@st.cache_resource(show_spinner="Loading the serving model…", max_entries=3)
def _load_recommender(path: str, run_name: str, fingerprint: str, _store: Store) -> Recommender:
    from crossrec_core.train import load_run

    rec = load_run(_store, run_name, rules=False)  # the live rules go on top per store version (_ruled)
    # A model saved by another version of the code can load and then fail on first use: find out now,
    # and say what to do, instead of failing on every page.
    probe = _store.user_summary()
    probe = probe[probe["events"] > 0]["user_id"].head(1).tolist()
    if probe:
        try:
            rec.recommend(probe[0], k=3, explain=True)
        except CrossRecError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise CrossRecError(f"the model of run '{run_name}' does not work with this version of CrossRec "
                                f"({type(exc).__name__}: {exc}); retrain on the Runs page") from exc
    return rec


@st.cache_resource(show_spinner=False, max_entries=3)
def _ruled(_rec: Recommender, run_name: str, fingerprint: str, key: tuple) -> Recommender:
    """The run's model serving the live rules as of store version `key` (a rule or segment change is a
    committed write, so the next read puts the new rules on)."""
    from crossrec_core.runs import with_live_rules

    return with_live_rules(_rec, state.store())


def recommender() -> Recommender | None:
    """The serving run's fitted model (None when no run yet or its model cannot be loaded)."""
    run = serving_run()
    if run is None:
        return None
    try:
        rec = _load_recommender(state.db_path(), run["name"], state.fingerprint(), state.store())
        return _ruled(rec, run["name"], state.fingerprint(), state.key())
    except ImportError:
        st.warning("The training module is not installed in this build.")
        return None
    except CrossRecError as exc:
        error(exc)
        return None


def require_recommender() -> Recommender:
    """The serving model, or an empty state that says what to do, and stop."""
    rec = recommender()
    if rec is None:
        if serving_run() is None:
            flow.no_run()
        flow.stop()
    return rec


def rec_key() -> tuple:
    """The cache key of recommendation lists: the data state and the serving run."""
    run = serving_run()
    return (*state.key(), run["name"] if run else None)


@st.cache_data(show_spinner=False, max_entries=512)
def _recommend(_rec: Recommender, rkey: tuple, context: str, subject: str | tuple, k: int, mode: str,
               category: str | None) -> pd.DataFrame:
    kwargs = dict(k=k, mode=mode, category=category, explain=True)
    if context == "user":
        return _rec.recommend(subject, **kwargs)
    if context == "profile":
        return _rec.recommend_for_profile(subject, **kwargs)
    if context == "items":
        return _rec.recommend_for_items(list(subject), **kwargs)
    return _rec.recommend_for_query(subject, **kwargs)


def recommend(rec: Recommender, user_id: str, k: int, mode: str, category: str | None) -> pd.DataFrame:
    """A shopper's explained top-k."""
    return _recommend(rec, rec_key(), "user", user_id, k, mode, category)


def recommend_profile(rec: Recommender, text: str, k: int, mode: str, category: str | None) -> pd.DataFrame:
    """The explained top-k for a typed profile (a cold-start shopper)."""
    return _recommend(rec, rec_key(), "profile", text, k, mode, category)


def recommend_items(rec: Recommender, item_ids: tuple, k: int, mode: str, category: str | None) -> pd.DataFrame:
    """What goes with these seed items."""
    return _recommend(rec, rec_key(), "items", tuple(item_ids), k, mode, category)


def recommend_query(rec: Recommender, text: str, k: int, mode: str, category: str | None) -> pd.DataFrame:
    """The explained top-k for a search query."""
    return _recommend(rec, rec_key(), "query", text, k, mode, category)
