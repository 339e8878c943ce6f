"""Why an item is recommended: per-signal contributions, the evidence behind them, one plain sentence."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import SIGNALS
from .signals.base import Context

SIGNAL_LABELS = {  # plain words for the signals, shared by the sentences here and the dashboard
    "cooc": "bought together",
    "als": "taste match",
    "graph": "shopper paths",
    "ease": "basket affinity",
    "content": "similar text",
    "transition": "category flow",
    "popularity": "popular now",
}


@dataclass
class Explanation:
    """One recommended item's story: contributions sum to the score."""

    contributions: dict[str, float]
    evidence: dict[str, list[dict]] = field(default_factory=dict)
    reason: str = ""


def _title(items: dict[str, np.ndarray], pos: int, limit: int = 60) -> str:
    t = str(items["title"][pos]) or str(items["item_id"][pos])
    return t if len(t) <= limit else t[: limit - 1] + "…"


def explain_items(
    scorer,
    ctx: Context,
    row: int,
    items_idx: np.ndarray,
    contributions: list[dict[str, float]],
    items: dict[str, np.ndarray],
    profile_text: str | None = None,
    query: str | None = None,
) -> list[Explanation]:
    """Explanations for `items_idx` of user `row` of `ctx`; `contributions` holds each listed item's
    contributions (signal -> value) and `items` the catalog columns (item_id, title, cat_top) in item order."""
    signals = scorer.signals_
    evid: dict[str, list[list[tuple[int, float]]]] = {}
    for name in ("cooc", "graph", "ease", "als", "content"):
        if name in signals and any(c.get(name, 0.0) > 0 for c in contributions):
            evid[name] = signals[name].evidence(ctx, row, items_idx)
    out = []
    for n, i in enumerate(items_idx):
        contrib = {s: float(contributions[n].get(s, 0.0)) for s in SIGNALS}
        ev: dict[str, list[dict]] = {}
        for name, lists in evid.items():
            ev[name] = [{"item_id": str(items["item_id"][j]), "title": _title(items, j), "share": round(share, 3)}
                        for j, share in lists[n]]
        flow = None
        if "transition" in signals and contrib["transition"] > 0:
            flow = signals["transition"].evidence_flow(ctx, row, int(scorer.data_.cat_flow[i]))
            if flow is not None:
                ev["transition"] = [{"from": flow[0], "to": str(scorer.data_.cat_flow_names[scorer.data_.cat_flow[i]]),
                                     "p": round(float(flow[1]), 3), "lift": round(float(flow[2]), 2)}]
        reason = _sentence(scorer, contrib, ev, i, items, profile_text, query)
        out.append(Explanation(contributions=contrib, evidence=ev, reason=reason))
    return out


def _sentence(scorer, contrib: dict[str, float], ev: dict, i: int, items: dict[str, np.ndarray],
              profile_text: str | None, query: str | None) -> str:
    """One sentence from the two largest contributions, each with its evidence."""
    ranked = [s for s in sorted(contrib, key=contrib.get, reverse=True) if contrib[s] > 0][:2]
    bits: list[str] = []
    for s in ranked:
        bit = _phrase(scorer, s, ev, i, items, profile_text, query)
        if bit:
            bits.append(bit)
    if not bits:
        return "Recommended as a good general pick."
    text = "; ".join(bits)
    return text[0].upper() + text[1:] + "."


def _phrase(scorer, signal: str, ev: dict, i: int, items: dict[str, np.ndarray], profile_text: str | None,
            query: str | None) -> str:
    e = ev.get(signal) or []
    if signal == "cooc" and e:
        src = e[0]
        j = int(scorer.data_.item_index.get_loc(src["item_id"]))
        share = scorer.signals_["cooc"].co_share(j, int(i))
        if share > 0:
            return f"{share:.0%} of shoppers who bought {src['title']} also bought this"
        return f"often bought with {src['title']}"
    if signal == "graph" and e:
        return f"shoppers who bought {e[0]['title']} went on to it"
    if signal == "ease" and e:
        return f"goes with {e[0]['title']} in other shoppers' baskets"
    if signal == "als" and e:
        return f"fits this shopper's taste (like {e[0]['title']})"
    if signal == "content":
        if query:
            return f"matches the search '{query[:60]}'"
        if e:
            return f"similar to {e[0]['title']}"
        if profile_text:
            return f"matches the profile '{profile_text[:60]}'"
        return ""
    if signal == "transition" and e:
        f = e[0]
        return f"people who buy {f['from']} often go on to {f['to']} (lift {f['lift']:.1f})"
    if signal == "popularity":
        return f"popular right now in {items['cat_top'][i]}"
    return f"{SIGNAL_LABELS.get(signal, signal)}"
