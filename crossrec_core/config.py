"""Every setting of CrossRec, by concern: one small dataclass per section (encoder, ingest, behaviour,
retrieval, ranker, evaluation, tuning, dashboard), each validating its own choices and ranges when made, plus
each signal's keyword arguments (`signals`). Runs store `to_dict()` so a run can be reproduced; `from_dict`
also reads the flat form of earlier versions through `LEGACY`, the one table from each old name to its
new place. This module imports nothing of CrossRec's but `errors`, so every other module may import it."""
from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import CrossRecError

if TYPE_CHECKING:
    import pandas as pd

EVENT_TYPES: tuple[str, ...] = ("view", "click", "cart", "purchase", "review")
MODES: tuple[str, ...] = ("all", "cross", "target")


def default_db_path() -> Path:
    """The demo database unless CROSSREC_DB says otherwise."""
    env = os.environ.get("CROSSREC_DB")
    if env:
        return Path(env).expanduser()  # as DuckDB and the shell read it: `~/shop.duckdb` is in the home folder
    home = Path(os.environ.get("CROSSREC_HOME", Path.home() / ".crossrec")).expanduser()
    return home / "demo.duckdb"


ARTEFACTS_PREFIX = "{artefacts}/"


class Section:
    """A section of the settings (frozen: settings that share a section cannot change each other's; change
    one with `Settings.replace`). `CHOICES` names the fields that take one of a few words and `RANGES` the
    numeric fields' bounds (lo, hi; None: open): a typo or an impossible value is a one-line error when
    the settings are made (`section.field is ...`), not a silent fallback far from where it was written."""

    NAME: ClassVar[str] = ""
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {}
    RANGES: ClassVar[dict[str, tuple[float | None, float | None]]] = {}

    def __post_init__(self) -> None:
        for name, allowed in self.CHOICES.items():
            value = getattr(self, name)
            word = str(value).strip().lower()
            if word not in allowed:
                raise CrossRecError(f"setting {self.NAME}.{name} is '{value}', not one of {', '.join(allowed)}")
            object.__setattr__(self, name, word)
        for name, (lo, hi) in self.RANGES.items():
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
            if ok and ((lo is not None and value < lo) or (hi is not None and value > hi)):
                ok = False
            if not ok:
                where = (f"at least {lo:g}" if hi is None else f"at most {hi:g}" if lo is None
                         else f"between {lo:g} and {hi:g}")
                raise CrossRecError(f"setting {self.NAME}.{name} is {value!r}, not a number {where}")


@dataclass(frozen=True)
class EncoderSettings(Section):
    """The text encoder: which model, where it runs, how it batches and cuts texts, its int8 path."""

    NAME: ClassVar[str] = "encoder"
    CHOICES: ClassVar[dict] = {"device": ("auto", "cpu", "cuda"), "precision": ("auto", "fp32", "fp16", "bf16"),
                               "backend": ("auto", "torch", "onnx-int8")}
    RANGES: ClassVar[dict] = {"batch_size": (1, None), "max_text_chars": (1, None), "int8_min_texts": (0, None),
                              "int8_min_cosine": (0, 1), "int8_min_top10": (0, 1)}

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
    backend: str = "auto"
    int8_min_texts: int = 20_000
    int8_min_cosine: float = 0.99  # mean cosine to fp32
    int8_min_top10: float = 0.95  # share of each sample text's 10 nearest neighbours that stay the same


@dataclass(frozen=True)
class IngestSettings(Section):
    """Limits and resources of a load: a value past a limit is rejected with its file, line and column."""

    NAME: ClassVar[str] = "ingest"
    RANGES: ClassVar[dict] = {"max_title_chars": (1, None), "max_description_chars": (1, None),
                              "max_id_chars": (1, None), "max_category_chars": (1, None),
                              "max_category_levels": (1, None), "max_profile_chars": (1, None),
                              "stream_mb": (0, None), "memory_mb": (1, None), "threads": (0, None),
                              "stream_rows": (0, None), "max_rows": (1, None), "max_columns": (1, None)}

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
    stream_mb: float = 64.0
    memory_mb: int = 2048  # DuckDB's memory_limit while streaming; beyond it DuckDB spills beside the db
    threads: int = 0  # DuckDB threads while streaming (0: DuckDB's default, one per core)
    # ---- input bounds (issue 22): each refused in one line before the work it would cost ----
    # a Parquet file of this many rows or more streams (its footer says how many: a small zstd file can hold
    # millions of rows); fewer rows are read in memory (about 650 bytes a row at the peak)
    stream_rows: int = 1_000_000
    max_rows: int = 100_000_000  # rows of one file (an upload or an `ingest`), either path
    max_columns: int = 1_000  # columns of one file, refused from its header (CSV) or footer (Parquet)

    def event_window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The earliest and latest plausible event time (UTC)."""
        import pandas as pd

        lo = pd.Timestamp(self.earliest_event, tz="UTC")
        hi = (pd.Timestamp(self.latest_event, tz="UTC") if self.latest_event
              else pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1))
        return lo, hi


@dataclass(frozen=True)
class BehaviourSettings(Section):
    """How shoppers' events weigh in every signal's input (crossrec_core.data, profiles)."""

    NAME: ClassVar[str] = "behaviour"
    RANGES: ClassVar[dict] = {"recency_half_life_days": (0, None), "popularity_half_life_days": (0, None),
                              "transition_level": (1, None), "profile_text_weight": (0, None)}

    event_weights: dict[str, float] = field(
        default_factory=lambda: {"view": 1.0, "click": 1.0, "cart": 3.0, "purchase": 5.0, "review": 4.0}
    )
    recency_half_life_days: float = 60.0
    popularity_half_life_days: float = 14.0
    transition_level: int = 2  # category depth used for A -> B flows (1 = top level)
    profile_text_weight: float = 1.0  # weight of a user's typed profile text against one history item


@dataclass(frozen=True)
class RetrievalSettings(Section):
    """How a served list finds its items (crossrec_core.retrieval, served, blocked)."""

    NAME: ClassVar[str] = "retrieval"
    CHOICES: ClassVar[dict] = {"serving": ("retrieve", "exhaustive")}
    RANGES: ClassVar[dict] = {"candidates": (1, None), "score_block": (1, None), "score_cache_mb": (0, None),
                              "score_cells": (0, None)}

    # "retrieve" scores only each signal's retrieved candidates; "exhaustive" scores the whole catalogue for
    # every shopper (the one-stage path, kept to measure against)
    serving: str = "retrieve"
    candidates: int = 100  # top-N of each signal per shopper, unioned into the candidate set
    # the fused lists score the catalogue this many items at a time (memory per batch: batch × block, not
    # batch × catalogue); the first pass's raw blocks are kept for the second up to this many MB
    score_block: int = 16_384
    score_cache_mb: int = 256
    # ... or more items at a time when the batch is small: batch × block stays under this many cells, so a
    # single shopper's list is one block (one vector operation per signal, not a loop over 13 blocks)
    score_cells: int = 4_194_304


@dataclass(frozen=True)
class RankerSettings(Section):
    """The second stage and what shapes a list: fusion weights, the learned ranker, variants, diversity,
    which history items come back, the bound on rule multipliers."""

    NAME: ClassVar[str] = "ranker"
    CHOICES: ClassVar[dict] = {"kind": ("auto", "fusion"), "exclude_seen": ("bought", "interacted", "none"),
                               "cross_kind": ("auto", "off")}
    RANGES: ClassVar[dict] = {"variant_cap": (0, None), "variant_similarity": (0, 1), "diversity": (0, 1),
                              "max_multiplier": (1, None)}

    # "auto" trains the learned second stage (crossrec_core.ranker) and serves it when it beats the linear
    # fusion and every single signal on validation; "fusion" never trains it
    kind: str = "auto"
    # fusion weights by signal; a signal not named here has its class's default_weight
    # (signals.registry.weights_for)
    weights: dict[str, float] = field(default_factory=dict)
    # A context with no history (typed profile, search query, cold user) can only be read through
    # content and popularity: it is ranked with these weights instead.
    cold_weights: dict[str, float] = field(default_factory=lambda: {"content": 0.85, "popularity": 0.15})
    variant_cap: int = 2  # at most this many items of one product family per list (0: no cap)
    variant_similarity: float = 0.92  # text cosine at which two items count as variants of one product
    # MMR: 0 keeps the ranked order; above 0 trades rank for text diversity (benchmarks/quality.py --diversity)
    diversity: float = 0.0
    exclude_seen: str = "bought"  # bought | interacted | none: which history items never come back
    # a boost multiplies a score by at most this, a damp by at least its reciprocal (and so does the product
    # of every boost on one item): 1e39 would overflow float32 and drop the item from every list
    max_multiplier: float = 1_000.0
    # the cross-mode list's own ranker (crossrec_core.discovery, ranker_fit.fit_cross): "auto" trains a second
    # ranker on discoveries in new top-level categories, with exploration features, and serves it in cross
    # mode when it beat the general ranker's CrossRecall@K on validation beyond noise; "off": the general
    # ranker orders the cross-mode list too
    cross_kind: str = "auto"


@dataclass(frozen=True)
class EvaluationSettings(Section):
    """The time split, list lengths and held-out figures (crossrec_core.split, evaluate, baselines)."""

    NAME: ClassVar[str] = "evaluation"
    RANGES: ClassVar[dict] = {"k": (1, None), "max_k": (1, None), "test_fraction": (0, 1), "val_fraction": (0, 1),
                              "max_users": (0, None), "auc_negatives": (1, None)}

    k: int = 20
    # the most items one list may ask for (recommend/export/eval --k, the pages): 1 <= k <= max_k
    max_k: int = 1000
    test_fraction: float = 0.2
    val_fraction: float = 0.15  # of the training period, carved off for weight learning
    positive_types: tuple[str, ...] = ("cart", "purchase")
    # Held-out figures on a big shop are measured on a seeded random sample of at most this many shoppers
    # per slice (every model on the same ones, so paired intervals stay paired); 0: every shopper.
    max_users: int = 20_000
    auc_negatives: int = 100
    # keyword arguments of the baselines that are not signals (crossrec_core.baselines), by name, e.g.
    # {"itemknn": {"shrink": 100.0}}; the baselines that are signals take the signal's own (`signals`)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "positive_types", tuple(self.positive_types))
        unknown = sorted(set(self.positive_types) - set(EVENT_TYPES))
        if unknown:
            raise CrossRecError(f"setting evaluation.positive_types names '{unknown[0]}', not one of "
                                f"{', '.join(EVENT_TYPES)}")
        super().__post_init__()


def _default_grids() -> dict[str, dict[str, list[float]]]:
    """What `tuning` tries by default, per signal and parameter, beside the value the settings give. Signals
    are tuned cheapest first (crossrec_core.tuning.ORDER); within a signal, its parameters in this order, the
    one that mattered most on the validation periods measured first."""
    return {"als": {"regularization": [10.0, 60.0, 100.0], "factors": [32, 128]},
            "ease": {"lam": [250.0, 1000.0, 2000.0]},
            "graph": {"beta": [0.0, 0.25], "alpha": [0.75, 1.0]},
            "cooc": {"shrink": [0.0, 50.0]}}


@dataclass(frozen=True)
class TuningSettings(Section):
    """Each signal's hyper-parameters chosen on the validation carve-out when a training learns its weights
    (crossrec_core.tuning): every value of `grids` fitted and scored alone, within a time box."""

    NAME: ClassVar[str] = "tuning"
    RANGES: ClassVar[dict] = {"seconds": (0, None), "max_users": (1, None), "margin": (0, 1)}

    # the time box of the whole tuning, carve-out included (0: off; the signals keep the settings' values). A
    # trial is started only while its signal's share of what is left (what is left / signals still to tune)
    # holds another trial as long as its earlier ones took; what did not fit is reported as skipped.
    seconds: float = 90.0
    max_users: int = 1000  # validation shoppers each trial is scored on (a seeded sample, the same for every trial)
    # a value replaces the settings' one only when its validation NDCG@K is this much higher (relative): 0.02
    # is 2 %, about the noise between two close values on 1,000 shoppers
    margin: float = 0.02
    # signal -> parameter -> values to try, e.g. {"ease": {"lam": [250, 1000]}}; a signal or parameter not named
    # here is not tuned ({"ease": {}} leaves EASE as set)
    grids: dict[str, dict[str, list[float]]] = field(default_factory=_default_grids)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.grids, Mapping):
            raise CrossRecError(f"setting tuning.grids is {type(self.grids).__name__}, not a mapping from signal "
                                "name to its parameters' values")
        grids: dict[str, dict[str, list[float]]] = {}
        for signal, params in self.grids.items():
            if not isinstance(params, Mapping):
                raise CrossRecError(f"setting tuning.grids.{signal} is {type(params).__name__}, not a mapping from "
                                    "parameter name to the values to try")
            grids[str(signal)] = {}
            for param, values in params.items():
                values = list(values) if isinstance(values, (list, tuple)) else None
                if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
                                         and v >= 0 for v in values):
                    raise CrossRecError(f"setting tuning.grids.{signal}.{param} is {params[param]!r}, not a "
                                        "non-empty list of numbers of at least 0")
                grids[str(signal)][str(param)] = values
        object.__setattr__(self, "grids", grids)


@dataclass(frozen=True)
class DashboardSettings(Section):
    """The Map page's sizes."""

    NAME: ClassVar[str] = "dashboard"
    RANGES: ClassVar[dict] = {"umap_max_points": (1, None), "map_draw_points": (1, None)}

    umap_max_points: int = 50_000
    # In Chromium without a GPU (software WebGL) 10k points draw in ~0.6 s, 20k in ~0.9 s, 50k in ~1.6 s
    # (benchmarks/app.py): the Map page draws a stratified sample of this many by default and every
    # point behind a toggle.
    map_draw_points: int = 10_000


SECTIONS: dict[str, type[Section]] = {cls.NAME: cls for cls in (
    EncoderSettings, IngestSettings, BehaviourSettings, RetrievalSettings, RankerSettings, EvaluationSettings,
    TuningSettings, DashboardSettings)}

# Each flat name of the settings before they had sections (what runs stored until then) -> its place now,
# a dotted path as `Settings.replace` takes it. `from_dict` reads a stored run through this table.
LEGACY: dict[str, str] = {
    "model": "encoder.model", "device": "encoder.device", "precision": "encoder.precision",
    "batch_size": "encoder.batch_size", "max_text_chars": "encoder.max_text_chars",
    "encoder_backend": "encoder.backend", "tuned_encoder": "encoder.tuned_encoder",
    "int8_min_texts": "encoder.int8_min_texts",
    "int8_min_cosine": "encoder.int8_min_cosine", "int8_min_top10": "encoder.int8_min_top10",
    "max_title_chars": "ingest.max_title_chars", "max_description_chars": "ingest.max_description_chars",
    "max_id_chars": "ingest.max_id_chars", "max_category_chars": "ingest.max_category_chars",
    "max_category_levels": "ingest.max_category_levels", "max_profile_chars": "ingest.max_profile_chars",
    "earliest_event": "ingest.earliest_event", "latest_event": "ingest.latest_event",
    "stream_ingest_mb": "ingest.stream_mb", "ingest_memory_mb": "ingest.memory_mb", "ingest_threads": "ingest.threads",
    "stream_ingest_rows": "ingest.stream_rows", "max_ingest_rows": "ingest.max_rows",
    "max_columns": "ingest.max_columns",
    "event_weights": "behaviour.event_weights", "recency_half_life_days": "behaviour.recency_half_life_days",
    "popularity_half_life_days": "behaviour.popularity_half_life_days",
    "transition_level": "behaviour.transition_level", "profile_text_weight": "behaviour.profile_text_weight",
    "cooc_neighbours": "signals.cooc.neighbours", "cooc_shrink": "signals.cooc.shrink",
    "als_factors": "signals.als.factors", "als_iterations": "signals.als.iterations",
    "als_regularization": "signals.als.regularization", "als_alpha": "signals.als.alpha",
    "als_device": "signals.als.device", "graph_alpha": "signals.graph.alpha", "graph_beta": "signals.graph.beta",
    "graph_neighbours": "signals.graph.neighbours", "ease_lambda": "signals.ease.lam",
    "ease_max_items": "signals.ease.max_items", "evidence_min_similarity": "signals.content.min_similarity",
    "serving": "retrieval.serving", "ranker_candidates": "retrieval.candidates",
    "score_block": "retrieval.score_block", "score_cache_mb": "retrieval.score_cache_mb",
    "score_cells": "retrieval.score_cells",
    "ranker": "ranker.kind", "weights": "ranker.weights", "cold_weights": "ranker.cold_weights",
    "variant_cap": "ranker.variant_cap", "variant_similarity": "ranker.variant_similarity",
    "diversity": "ranker.diversity", "exclude_seen": "ranker.exclude_seen", "max_multiplier": "ranker.max_multiplier",
    "k": "evaluation.k", "max_k": "evaluation.max_k", "test_fraction": "evaluation.test_fraction",
    "val_fraction": "evaluation.val_fraction", "positive_types": "evaluation.positive_types",
    "eval_max_users": "evaluation.max_users", "auc_negatives": "evaluation.auc_negatives",
    "itemknn_neighbours": "evaluation.baselines.itemknn.neighbours",
    "itemknn_shrink": "evaluation.baselines.itemknn.shrink",
    "umap_max_points": "dashboard.umap_max_points", "map_draw_points": "dashboard.map_draw_points",
    "db_path": "db_path", "seed": "seed",
}


def _section(name: str, value: Any) -> Section:
    """A section from itself or from a mapping of its fields (the rest at their defaults)."""
    cls = SECTIONS[name]
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise CrossRecError(f"setting {name} is {type(value).__name__}, not a section of settings")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise CrossRecError(f"unknown setting {name}.{unknown[0]} (known: {', '.join(sorted(known))})")
    return cls(**value)


def _put(obj: Any, keys: list[str], value: Any, path: str) -> Any:
    """`obj` with the value at `keys` replaced: a section's field by name (an unknown one is an error), a
    mapping's entry by key (made when absent). Sections are rebuilt, so they validate the change."""
    head, rest = keys[0], keys[1:]
    if dataclasses.is_dataclass(obj):
        names = [f.name for f in dataclasses.fields(obj)]
        if head not in names:
            where = path[: len(path) - len(".".join(keys))].rstrip(".") or "settings"
            raise CrossRecError(f"unknown setting {path} ({where} has: {', '.join(names)})")
        new = value if not rest else _put(getattr(obj, head), rest, value, path)
        return dataclasses.replace(obj, **{head: new})
    if isinstance(obj, Mapping):
        out = dict(obj)
        out[head] = value if not rest else _put(obj.get(head, {}), rest, value, path)
        return out
    where = path[: len(path) - len(".".join(keys)) - 1]
    raise CrossRecError(f"setting {path}: {where} is a value, not a section")


@dataclass
class Settings:
    """Every setting, by concern. Read a section's field (`settings.ranker.kind`), change any with `replace`
    and dotted paths (`settings.replace({"retrieval.candidates": 50, "signals.als.factors": 8})`)."""

    db_path: Path = field(default_factory=default_db_path)
    seed: int = 42  # every seeded draw: splits' samples, ALS's start (a signal's random_state), demo shops
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    behaviour: BehaviourSettings = field(default_factory=BehaviourSettings)
    # each signal's keyword arguments by signal name, e.g. {"als": {"factors": 32}}; a parameter not named
    # here has the default its class declares (signals.base.Signal.build checks the names when it builds one).
    # als regularization and graph beta were chosen on the validation period of the demo shop and
    # Instacart (`python benchmarks/tune.py`); a training that learns its weights also tunes them on its own
    # validation period first (`tuning`) and records the values it chose.
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    ranker: RankerSettings = field(default_factory=RankerSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    tuning: TuningSettings = field(default_factory=TuningSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)

    def __post_init__(self) -> None:
        self.db_path = Path(self.db_path)
        for name in SECTIONS:
            setattr(self, name, _section(name, getattr(self, name)))
        if not isinstance(self.signals, Mapping) or not all(
                isinstance(k, str) and isinstance(v, Mapping) for k, v in self.signals.items()):
            raise CrossRecError("setting signals is not a mapping from signal name to its keyword arguments")
        self.signals = {name: dict(params) for name, params in self.signals.items()}

    def replace(self, changes: Mapping[str, Any] | None = None, /, **named: Any) -> "Settings":
        """These settings with some changed, each given by its dotted path: a section's field
        (`{"ranker.kind": "fusion"}`), a signal's keyword argument (`{"signals.als.factors": 8}`), an entry of a
        mapping (`{"ranker.weights.cooc": 0.5}`) or a top-level one (`db_path=...`, also as a keyword). An
        unknown path or a value a section refuses is a one-line error."""
        out: Any = self
        for path, value in {**(changes or {}), **named}.items():
            out = _put(out, path.split("."), value, path)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain values, by section; a model folder inside the database's artefacts (a tuned encoder) is
        written relative to them, so a run or model file stays valid when the database moves."""
        d = dataclasses.asdict(self)
        d["db_path"] = str(self.db_path)
        d["evaluation"]["positive_types"] = list(self.evaluation.positive_types)
        d["encoder"]["model"] = self.portable_model()
        tuned = self.encoder.tuned_encoder
        d["encoder"]["tuned_encoder"] = self._portable(tuned) if tuned else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Settings":
        """The inverse of `to_dict`; also reads the flat form runs stored before the settings had sections
        (each name through `LEGACY`). Keys this version does not know are ignored (a run from a newer
        version); values are validated as when the settings are made."""
        out = cls(db_path=Path(d["db_path"])) if "db_path" in d else cls()
        changes: dict[str, Any] = {}
        for key, value in d.items():
            if key in SECTIONS and isinstance(value, Mapping):
                known = {f.name for f in dataclasses.fields(SECTIONS[key])}
                changes.update({f"{key}.{k}": copy.deepcopy(v) for k, v in value.items() if k in known})
            elif key == "signals" and isinstance(value, Mapping):
                changes.update({f"signals.{name}": copy.deepcopy(dict(params)) for name, params in value.items()})
            elif key in LEGACY and key != "db_path":
                changes[LEGACY[key]] = copy.deepcopy(value)
        if "evaluation.positive_types" in changes:
            changes["evaluation.positive_types"] = tuple(changes["evaluation.positive_types"])
        return out.replace(changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def _portable(self, folder: str) -> str:
        """A folder as recorded: `{artefacts}/...` for one inside this database's artefacts."""
        try:
            rel = Path(folder).resolve().relative_to(self.artefact_dir.resolve())
        except (ValueError, OSError):
            return folder
        return ARTEFACTS_PREFIX + rel.as_posix()

    def portable_model(self) -> str:
        """`encoder.model` as recorded: `{artefacts}/...` for a folder inside this database's artefacts."""
        return self._portable(self.encoder.model)

    def resolve_model(self) -> "Settings":
        """These settings with a recorded `{artefacts}/...` model (and tuned encoder) turned back into this
        database's folders."""
        changes = {f"encoder.{name}": str(self.artefact_dir / value[len(ARTEFACTS_PREFIX):])
                   for name in ("model", "tuned_encoder")
                   if (value := getattr(self.encoder, name)) and value.startswith(ARTEFACTS_PREFIX)}
        return self.replace(changes) if changes else self

    @property
    def artefact_dir(self) -> Path:
        """Fitted models of each run live beside the database file."""
        return Path(str(self.db_path) + ".artefacts")
