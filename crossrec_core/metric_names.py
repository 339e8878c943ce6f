"""Plain names and a one-line help for every metric, slice and model: the one place pages, the CLI and
CSV headers take them from ("Recall@20: share of a shopper's later purchases found in the top 20")."""
from __future__ import annotations

# metric -> (label, help); {k} is the list length
METRICS: dict[str, tuple[str, str]] = {
    "recall": ("Recall@{k}", "share of a shopper's later purchases found in the top {k}"),
    "ndcg": ("NDCG@{k}", "like recall, but a purchase found near the top of the list counts more"),
    "hit_rate": ("Hit rate@{k}", "share of shoppers with at least one later purchase in the top {k}"),
    "mrr": ("MRR", "1 / the rank of the first later purchase in the list, averaged over shoppers"),
    "auc": ("AUC", "chance that a later purchase is scored above a random item the shopper did not buy"),
    "coverage": ("Catalog coverage", "share of the catalog that appears in at least one shopper's list"),
    "diversity": ("Variety", "how unlike each other the items of one list are (1 − their mean text likeness)"),
    "novelty": ("Novelty", "how rarely bought the listed items are (bits; higher = less obvious picks)"),
    "cross_recall": ("New-category recall@{k}",
                     "share of later purchases in categories new to the shopper found in the top {k}"),
    "cross_hit_rate": ("New-category hit rate@{k}",
                       "share of shoppers with a later purchase in a new category found in the top {k}"),
    "users": ("Shoppers", "how many shoppers of the held-out period the figures are measured on"),
    "users_sampled_from": ("Shoppers sampled from", "on a big shop the figures are measured on a random sample "
                           "of this many held-out shoppers (the same sample for every model)"),
}
SLICES: dict[str, tuple[str, str]] = {
    "all": ("All shoppers", "every shopper who bought something in the held-out period"),
    "cold_users": ("New shoppers", "shoppers with no history before the held-out period"),
    "cold_items": ("New items", "later purchases of items nobody had bought before the held-out period"),
}
MODELS: dict[str, str] = {
    "crossrec": "CrossRec", "popularity": "Best-sellers", "itemknn": "Bought together (item kNN)",
    "als": "Matrix factorisation (ALS)", "ease": "EASE", "rp3beta": "Graph walk (RP3beta)",
    "content": "Text likeness only",
}
NOISE = "within noise"
NOISE_HELP = ("the 95 % interval of the difference (paired bootstrap over shoppers) includes 0: "
              "this data cannot tell the two apart")


def label(metric: str, k: int = 20) -> str:
    """"Recall@20"; an unknown name is returned as given."""
    return METRICS.get(metric, (metric, ""))[0].format(k=k)


def help_text(metric: str, k: int = 20) -> str:
    """"share of a shopper's later purchases found in the top 20"."""
    return METRICS.get(metric, ("", ""))[1].format(k=k)


def described(metric: str, k: int = 20) -> str:
    """"Recall@20: share of a shopper's later purchases found in the top 20"."""
    h = help_text(metric, k)
    return f"{label(metric, k)}: {h}" if h else label(metric, k)


def slice_label(name: str) -> str:
    return SLICES.get(name, (name, ""))[0]


def model_label(name: str) -> str:
    return MODELS.get(name, name)
