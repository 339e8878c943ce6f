"""Every setting of CrossRec in one dataclass: paths, model, device, weights, split, limits."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

EVENT_TYPES: tuple[str, ...] = ("view", "click", "cart", "purchase", "review")
MODES: tuple[str, ...] = ("all", "cross", "target")


def __getattr__(name: str) -> Any:
    """SIGNALS (the signal names) and CONTRIBUTIONS (what a listed item's score splits into: one part per
    signal, "context" and "rules") come from the signal registry, read when asked."""
    if name in ("SIGNALS", "CONTRIBUTIONS"):
        from .signals import registry

        return registry.names() if name == "SIGNALS" else registry.contributions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _default_weights() -> dict[str, float]:
    from .signals import registry

    return registry.default_weights()


def default_db_path() -> Path:
    """The demo database unless CROSSREC_DB says otherwise."""
    env = os.environ.get("CROSSREC_DB")
    if env:
        return Path(env).expanduser()  # as DuckDB and the shell read it: `~/shop.duckdb` is in the home folder
    home = Path(os.environ.get("CROSSREC_HOME", Path.home() / ".crossrec")).expanduser()
    return home / "demo.duckdb"


ARTEFACTS_PREFIX = "{artefacts}/"


@dataclass
class Settings:
    """One place for every knob. Runs store `to_dict()` so a run can be reproduced."""

    db_path: Path = field(default_factory=default_db_path)

    # encoder
    model: str = "all-MiniLM-L6-v2"  # a local folder, a hub name (offline cache) or the packaged default
    # the chosen tuned encoder's folder (`crossrec encoders use`, an adopted fine-tune): the item vectors of the
    # content_tuned signal, beside the base text signal of `model`; None: no tuned encoder, no such signal
    tuned_encoder: str | None = None
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto | fp32 | fp16 | bf16
    batch_size: int = 64
    max_text_chars: int = 1000  # item text is cut here before tokenising (the model truncates tokens too)
    # auto | torch | onnx-int8. auto: int8 ONNX Runtime on a CPU without native bf16 for an encode of at least
    # int8_min_texts texts (building and checking it costs more than it saves on fewer, so small shops, queries
    # and profiles stay on torch), cached and checked once in <db>.artefacts/onnx/; it serves only while it
    # reproduces fp32 on a sample of the shop's texts:
    encoder_backend: str = "auto"
    int8_min_texts: int = 20_000
    int8_min_cosine: float = 0.99  # mean cosine to fp32
    int8_min_top10: float = 0.95  # share of each sample text's 10 nearest neighbours that stay the same

    # ingest limits: a value past one is rejected with its file, line and column
    max_title_chars: int = 2000
    max_description_chars: int = 50_000
    max_id_chars: int = 512  # item_id, user_id
    max_category_chars: int = 2048  # the whole category path
    max_category_levels: int = 10
    max_profile_chars: int = 10_000
    # plausible event times: earlier or later timestamps (a typo'd year, 0001, 9999) are rejected at ingest
    earliest_event: str = "1990-01-01"
    latest_event: str | None = None  # None: now + 1 day
    # files larger than this (MB) stream through DuckDB staging tables with their checks in SQL (bounded memory);
    # smaller files and uploads held in memory are read into pandas (same messages, plus a list of bad rows)
    stream_ingest_mb: float = 64.0
    ingest_memory_mb: int = 2048  # DuckDB's memory_limit while streaming; beyond it DuckDB spills beside the db
    ingest_threads: int = 0  # DuckDB threads while streaming (0: DuckDB's default, one per core)
    # ---- input bounds (issue 22): each refused in one line before the work it would cost ----
    # a Parquet file of this many rows or more streams (its footer says how many: a small zstd file can hold
    # millions of rows); fewer rows are read in memory (about 650 bytes a row at the peak)
    stream_ingest_rows: int = 1_000_000
    max_ingest_rows: int = 100_000_000  # rows of one file (an upload or an `ingest`), either path
    max_columns: int = 1_000  # columns of one file, refused from its header (CSV) or footer (Parquet)
    # a boost multiplies a score by at most this, a damp by at least its reciprocal (and so does the product
    # of every boost on one item): 1e39 would overflow float32 and drop the item from every list
    max_multiplier: float = 1_000.0

    # behaviour weighting
    event_weights: dict[str, float] = field(
        default_factory=lambda: {"view": 1.0, "click": 1.0, "cart": 3.0, "purchase": 5.0, "review": 4.0}
    )
    recency_half_life_days: float = 60.0
    popularity_half_life_days: float = 14.0

    # signals. als_regularization and graph_beta were chosen on the validation period (carved from the
    # training period) of the demo shop and Instacart: `python benchmarks/tune.py`.
    cooc_neighbours: int = 200
    cooc_shrink: float = 10.0
    als_factors: int = 64
    als_iterations: int = 15
    als_regularization: float = 30.0
    als_alpha: float = 1.0
    # where ALS fits: auto (implicit's GPU model when implicit has CUDA, else the CPU) | cpu | cuda (an error
    # without CUDA); scoring always runs on the CPU from the fitted factors, and each run records the device
    als_device: str = "auto"
    graph_alpha: float = 0.5
    graph_beta: float = 0.1
    graph_neighbours: int = 200
    transition_level: int = 2  # category depth used for A -> B flows (1 = top level)
    evidence_min_similarity: float = 0.5  # text likeness (cosine) below this is never cited as a reason
    profile_text_weight: float = 1.0  # weight of a user's typed profile text against one history item

    # fusion
    weights: dict[str, float] = field(default_factory=_default_weights)  # each signal's default_weight
    # The learned second stage (crossrec_core.ranker): "auto" trains it and serves it when it beats the
    # linear fusion and every single signal on validation; "fusion" never trains it.
    ranker: str = "auto"  # auto | fusion
    ranker_candidates: int = 100  # top-N of each signal per shopper, unioned into the candidate set
    # How a served list finds its items: "retrieve" scores only each signal's retrieved candidates
    # (crossrec_core.retrieval, served); "exhaustive" scores the whole catalogue for every shopper (the
    # one-stage path, kept to measure against)
    serving: str = "retrieve"
    # the fused lists score the catalogue this many items at a time (memory per batch: batch × block, not
    # batch × catalogue); the first pass's raw blocks are kept for the second up to this many MB
    score_block: int = 16_384
    score_cache_mb: int = 256
    # ... or more items at a time when the batch is small: batch × block stays under this many cells, so a
    # single shopper's list is one block (one vector operation per signal, not a loop over 13 blocks)
    score_cells: int = 4_194_304
    # A context with no history (typed profile, search query, cold user) can only be read through
    # content and popularity: it is ranked with these weights instead.
    cold_weights: dict[str, float] = field(default_factory=lambda: {"content": 0.85, "popularity": 0.15})
    variant_cap: int = 2  # at most this many items of one product family per list (0: no cap)
    variant_similarity: float = 0.92  # text cosine at which two items count as variants of one product
    # MMR: 0 keeps the ranked order; above 0 trades rank for text diversity (benchmarks/quality.py --diversity)
    diversity: float = 0.0
    exclude_seen: str = "bought"  # bought | interacted | none: which history items never come back

    # evaluation
    k: int = 20
    test_fraction: float = 0.2
    val_fraction: float = 0.15  # of the training period, carved off for weight learning
    positive_types: tuple[str, ...] = ("cart", "purchase")
    ease_lambda: float = 500.0
    ease_max_items: int = 6000
    # Held-out figures on a big shop are measured on a seeded random sample of at most this many shoppers
    # per slice (every model on the same ones, so paired intervals stay paired); 0: every shopper.
    eval_max_users: int = 20_000
    itemknn_neighbours: int = 200
    itemknn_shrink: float = 100.0
    auc_negatives: int = 100
    seed: int = 42

    # projection
    umap_max_points: int = 50_000
    # In Chromium without a GPU (software WebGL) 10k points draw in ~0.6 s, 20k in ~0.9 s, 50k in ~1.6 s
    # (benchmarks/app.py): the Map page draws a stratified sample of this many by default and every
    # point behind a toggle.
    map_draw_points: int = 10_000

    # ---- issue 22 (part A): limits on what the commands and the pages ask for ----
    # the most items one list may ask for (recommend/export/eval --k, the pages): 1 <= k <= max_k
    max_k: int = 1000

    # the settings that take one of a few words: a typo is a one-line error when the settings are made, not a
    # silent fallback far from where it was written
    CHOICES = {"device": ("auto", "cpu", "cuda"), "precision": ("auto", "fp32", "fp16", "bf16"),
               "encoder_backend": ("auto", "torch", "onnx-int8"), "als_device": ("auto", "cpu", "cuda"),
               "ranker": ("auto", "fusion"), "serving": ("retrieve", "exhaustive"),
               "exclude_seen": ("bought", "interacted", "none")}

    def __post_init__(self) -> None:
        for name, allowed in self.CHOICES.items():
            value = getattr(self, name)
            if str(value).strip().lower() not in allowed:
                from .errors import CrossRecError

                raise CrossRecError(f"setting {name} is '{value}', not one of {', '.join(allowed)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values; a model folder inside the database's artefacts (a tuned encoder) is written
        relative to them, so a run or model file stays valid when the database moves."""
        d = dataclasses.asdict(self)
        d["db_path"] = str(self.db_path)
        d["positive_types"] = list(self.positive_types)
        d["model"] = self.portable_model()
        d["tuned_encoder"] = self._portable(self.tuned_encoder) if self.tuned_encoder else None
        return d

    def _portable(self, folder: str) -> str:
        """A folder as recorded: `{artefacts}/...` for one inside this database's artefacts."""
        try:
            rel = Path(folder).resolve().relative_to(self.artefact_dir.resolve())
        except (ValueError, OSError):
            return folder
        return ARTEFACTS_PREFIX + rel.as_posix()

    def portable_model(self) -> str:
        """`model` as recorded: `{artefacts}/...` for a folder inside this database's artefacts."""
        return self._portable(self.model)

    def resolve_model(self) -> "Settings":
        """These settings with a recorded `{artefacts}/...` model (and tuned encoder) turned back into this
        database's folders."""
        out = self
        for name in ("model", "tuned_encoder"):
            value = getattr(out, name)
            if value and value.startswith(ARTEFACTS_PREFIX):
                out = out.replace(**{name: str(self.artefact_dir / value[len(ARTEFACTS_PREFIX):])})
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Settings":
        """The inverse of `to_dict` (keys this version does not know are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "db_path" in kw:
            kw["db_path"] = Path(kw["db_path"])
        if "positive_types" in kw:
            kw["positive_types"] = tuple(kw["positive_types"])
        return cls(**kw)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    def event_window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The earliest and latest plausible event time (UTC)."""
        import pandas as pd

        lo = pd.Timestamp(self.earliest_event, tz="UTC")
        hi = (pd.Timestamp(self.latest_event, tz="UTC") if self.latest_event
              else pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1))
        return lo, hi

    def encoder(self, **changes: Any):
        """The text encoder these settings name (model, device, precision, batch size, backend and its int8
        cache beside the database); `changes` override any of them (e.g. model= for another folder)."""
        from .encoder import Encoder

        return Encoder.from_settings(self, **changes)

    @property
    def artefact_dir(self) -> Path:
        """Fitted models of each run live beside the database file."""
        return Path(str(self.db_path) + ".artefacts")


def parse_weights(text: str, base: dict[str, float] | None = None) -> dict[str, float]:
    """Parse `cooc=0.3,content=0.2` into a full weight dict (unnamed signals keep `base`)."""
    from .errors import CrossRecError
    from .signals.registry import names

    SIGNALS = names()
    weights = dict(base if base is not None else Settings().weights)
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise CrossRecError(f"weight '{part}' is not of the form name=value")
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in SIGNALS:
            raise CrossRecError(f"unknown signal '{name}' in --weights (signals: {', '.join(SIGNALS)})")
        try:
            w = float(value)
        except ValueError:
            raise CrossRecError(f"weight of '{name}' is '{value.strip()}', not a number") from None
        if w < 0 or w != w:
            raise CrossRecError(f"weight of '{name}' must be a number >= 0, got {value.strip()}")
        weights[name] = w
    return weights
