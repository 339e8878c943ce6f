"""The shop's words for the evaluation's terms, the one place pages take them from: a merchandiser reads
"Found later buys", and the help keeps the technical name ("Recall@20: …"). The core's names
(crossrec_core.metric_names) stay the CLI's and the CSVs'."""
from __future__ import annotations

from crossrec_core.metric_names import help_text, label

# metric -> (shop words, what it means for a shop); {k} is the list length
SHOP: dict[str, tuple[str, str]] = {
    "recall": ("Found later buys", "of the products shoppers went on to buy, how many the list of {k} had"),
    "ndcg": ("Found near the top", "like Found later buys, but a later buy near the top of the list counts more"),
    "cross_recall": ("Found buys in new categories",
                     "of the later buys in categories new to the shopper, how many the list of {k} had"),
    "hit_rate": ("Shoppers with a find", "share of shoppers with at least one later buy in the list of {k}"),
}
# a table header short enough for a narrow column; its help starts with the full shop words
HEADERS = {"ndcg": "Near the top", "cross_recall": "In new categories"}
NO_DIFFERENCE = "no clear difference"
NO_DIFFERENCE_HELP = ("the 95 % interval of the difference includes 0 (the technical term: within noise): "
                      "this data cannot tell the two apart")
NO_CHANGE = "no change"
MODELS = {"ranker": "learned from past shoppers", "fusion": "fixed weighted mix"}
MODEL_HELP = ("how the signals are combined into one list: learned from past shoppers (the learned ranker, "
              "trained on an earlier slice of the history) or a fixed weighted mix of the signals, used when the "
              "ranker did not beat it on that slice")
LEARN = "Learn the weights from an earlier slice of the history"
LEARN_HELP = ("the validation carve-out: the last weeks before the held-out period are set aside to learn the "
              "weights on. On: the sliders below are not used. Off: the sliders set them.")


def word(metric: str, k: int = 20) -> str:
    """"Found later buys"; a metric without shop words keeps its core label."""
    return SHOP[metric][0] if metric in SHOP else label(metric, k)


def explains(metric: str, k: int = 20) -> str:
    """"of the products shoppers went on to buy, how many the list of 20 had" (no technical name: for a table
    cell in sight; `meaning` adds it, for a help text)."""
    return SHOP[metric][1].format(k=k) if metric in SHOP else help_text(metric, k)


def meaning(metric: str, k: int = 20) -> str:
    """"Recall@20: of the products shoppers went on to buy, how many the list of 20 had"."""
    text = explains(metric, k)
    return f"{label(metric, k)}: {text}" if text else label(metric, k)


def header(metric: str, k: int = 20) -> str:
    """A column header: "Near the top" for "Found near the top" (the help says it whole: `header_help`)."""
    return HEADERS.get(metric) or word(metric, k)


def header_help(metric: str, k: int = 20) -> str:
    """"Found near the top. NDCG@20: …": the shop words whole, then the technical name and what it means."""
    return f"{word(metric, k)}. {meaning(metric, k)}" if metric in HEADERS else meaning(metric, k)


def verdict(low: float, high: float, diff: float, up: str = "up", down: str = "down") -> str:
    """"no change" when the two are identical, "no clear difference" when the interval crosses 0."""
    if diff == 0 and low == 0 and high == 0:
        return NO_CHANGE
    return up if low > 0 else down if high < 0 else NO_DIFFERENCE

