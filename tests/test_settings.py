"""Settings by concern: sections validate their own fields, `replace` takes dotted paths, a stored run's flat
settings (written before the sections) still load through `config.LEGACY`, and config closes no import cycle."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd
import pytest

from crossrec_core.config import LEGACY, SECTIONS, Settings
from crossrec_core.errors import CrossRecError

BEFORE = json.loads((Path(__file__).parent / "data" / "run_before_sections.json").read_text())


def _at(settings: Settings, path: str):
    """The value at a dotted path (a section's field, a mapping's entry)."""
    node = settings
    for key in path.split("."):
        node = node[key] if isinstance(node, dict) else getattr(node, key)
    return node


@pytest.mark.parametrize("changes,message", [
    ({"ranker.kind": "lgbm"}, "setting ranker.kind is 'lgbm', not one of auto, fusion"),
    ({"encoder.backend": "onnx"}, "setting encoder.backend is 'onnx', not one of auto, torch, onnx-int8"),
    ({"evaluation.k": 0}, "setting evaluation.k is 0, not a number at least 1"),
    ({"evaluation.test_fraction": 1.5}, "setting evaluation.test_fraction is 1.5, not a number between 0 and 1"),
    ({"retrieval.candidates": "many"}, "setting retrieval.candidates is 'many', not a number at least 1"),
    ({"evaluation.positive_types": ("cart", "buy")}, "setting evaluation.positive_types names 'buy', not one of"),
    ({"ranker.candidates": 50}, "unknown setting ranker.candidates (ranker has: kind, weights,"),
    ({"ranker.kind.x": 1}, "setting ranker.kind.x: ranker.kind is a value, not a section"),
])
def test_a_bad_setting_is_a_one_line_error_naming_its_place(changes, message):
    with pytest.raises(CrossRecError) as err:
        Settings().replace(changes)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_replace_changes_only_the_paths_given_and_never_the_original():
    base = Settings()
    out = base.replace({"retrieval.candidates": 50, "signals.als.factors": 8, "ranker.weights.cooc": 0.5},
                       db_path="/tmp/x.duckdb")
    assert (out.retrieval.candidates, out.signals, out.ranker.weights) == (50, {"als": {"factors": 8}}, {"cooc": 0.5})
    assert out.db_path == Path("/tmp/x.duckdb") and out.retrieval.score_block == base.retrieval.score_block
    assert base.retrieval.candidates == 100 and base.signals == {} and base.ranker.weights == {}
    with pytest.raises(AttributeError):  # sections are frozen: settings sharing one cannot change each other
        out.ranker.kind = "fusion"
    assert out.replace({"signals.als.iterations": 3}).signals == {"als": {"factors": 8, "iterations": 3}}
    assert Settings().replace({"encoder.device": " CPU "}).encoder.device == "cpu"  # choices are normalised


def test_nested_to_dict_and_from_dict_round_trip_through_json(tmp_path):
    s = Settings(db_path=tmp_path / "shop.duckdb").replace({
        "signals.graph.beta": 0.25, "ranker.kind": "fusion", "evaluation.positive_types": ("purchase",),
        "evaluation.baselines.itemknn.shrink": 5.0, "ingest.latest_event": "2030-01-01"})
    d = json.loads(s.to_json())
    assert set(d) == {"db_path", "seed", "signals", *SECTIONS}
    assert d["ranker"]["kind"] == "fusion" and d["signals"] == {"graph": {"beta": 0.25}}
    assert Settings.from_dict(d) == s
    d["ranker"]["from_a_newer_version"] = 1  # keys this version does not know are ignored
    assert Settings.from_dict(d) == s
    d["ranker"]["kind"] = "lgbm"  # but a value is validated on load
    with pytest.raises(CrossRecError, match="^setting ranker.kind is 'lgbm'"):
        Settings.from_dict(d)


def test_every_flat_name_a_run_stored_before_the_sections_has_its_place_in_legacy(tmp_path):
    flat = {**BEFORE["settings"], "db_path": str(tmp_path / "shop.duckdb")}  # as the runs table holds them
    assert set(flat) <= set(LEGACY), sorted(set(flat) - set(LEGACY))
    read = Settings.from_dict(flat)
    for old, value in flat.items():
        got = _at(read, LEGACY[old])
        want = Path(value) if old == "db_path" else tuple(value) if old == "positive_types" else value
        assert got == want, old
    # and the new places hold the same settings the flat form meant
    assert read.ranker.kind == "auto" and read.retrieval.candidates == 100 and read.encoder.model == "all-MiniLM-L6-v2"
    assert read.signals["als"]["regularization"] == 30.0 and read.signals["ease"]["lam"] == 500.0
    flat["ranker"] = "nope"
    with pytest.raises(CrossRecError, match="^setting ranker.kind is 'nope'"):
        Settings.from_dict(flat)


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory):
    """A small shop with one trained run: (db path, the run's model folder)."""
    from crossrec_core.demo import generate
    from crossrec_core.runs import run_folder
    from crossrec_core.store import Store
    from crossrec_core.train import train

    path = tmp_path_factory.mktemp("settings") / "shop.duckdb"
    shop = generate(5, n_items=120, n_users=80, days=60)  # the shop the stored flat run was trained on
    with Store(path) as store:
        store.ingest_frames(items=shop.items, events=shop.events, users=shop.users)
        train(store, Settings(db_path=path), name="now", learn=False, baselines=False)
        folder = run_folder(store, store.run("now"))
    return path, folder


def _lists(path: Path) -> dict:
    from crossrec_core.runs import load_run
    from crossrec_core.store import Store

    with Store(path, read_only=True) as store:
        rec = load_run(store, "now")
        users = store.user_summary().sort_values("events", ascending=False)["user_id"].head(20).tolist()
        lists = {u: (tuple(df["item_id"]), tuple(df["score"].round(6))) for u, df in
                 rec.recommend_batch(users, k=10, explain=False)}
        return lists, rec


def test_a_stored_run_with_the_flat_settings_and_options_of_before_loads_and_serves_the_same_lists(stored_run):
    """The run's model.json rewritten to what a run trained before the sections holds (the settings flat, each
    signal's options without the hyper-parameters the settings then carried): it loads, its signals get the
    parameters through LEGACY, and it serves exactly the lists of the run as written now."""
    path, folder = stored_run
    now_lists, now = _lists(path)
    model = folder / "model.json"
    written = json.loads(model.read_text())
    meta = written["meta"]
    assert set(meta["settings"]) == {"seed", "signals", *SECTIONS}  # written nested now
    old = json.loads(json.dumps(written))
    old["meta"]["settings"] = dict(BEFORE["settings"])
    for name, options in BEFORE["options"].items():
        old["meta"][f"scorer.signal.{name}.options"] = options
    model.write_text(json.dumps(old))
    try:
        before_lists, before = _lists(path)
        old["meta"]["settings"]["ease_lambda"] = 7.0  # the settings of before feed the signals that recorded None
        model.write_text(json.dumps(old))
        _, changed = _lists(path)
    finally:
        model.write_text(json.dumps(written))
    assert before_lists == now_lists and len(now_lists) == 20
    sig, was = before.scorer_.signals_, now.scorer_.signals_
    assert {n: s.get_params() for n, s in sig.items()} == {n: s.get_params() for n, s in was.items()}
    assert sig["als"].regularization == 30.0 and sig["ease"].lam == 500.0 and sig["cooc"].neighbours == 200
    assert changed.scorer_.signals_["ease"].lam == 7.0
    assert before.settings.retrieval == now.settings.retrieval and before.settings.ranker.kind == "auto"


def _import_graph(root: Path) -> dict[str, set[str]]:
    """crossrec_core's modules -> the crossrec_core modules each imports (anywhere in it, functions too)."""
    pkg = root / "crossrec_core"
    mods = {}
    for p in pkg.rglob("*.py"):
        parts = list(p.relative_to(root).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        here = m.split(".") if p.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(here[: len(here) - node.level + 1] + [node.module or ""]).strip(".") \
                    if node.level else node.module
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                while t not in mods and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t in mods and t != m:
                    graph[m].add(t)
    return graph


def test_config_imports_no_crossrec_module_but_errors_so_no_import_cycle_runs_through_it():
    graph = _import_graph(Path(__file__).resolve().parents[1])
    assert graph["crossrec_core.config"] == {"crossrec_core.errors"}
    assert graph["crossrec_core.errors"] == set()
    cycles = _cycles(graph)
    assert not [c for c in cycles if "crossrec_core.config" in c]
    # the cycle config closed ran through the encoder and every signal module (15 modules); none is left
    assert not [c for c in cycles if any(m.startswith("crossrec_core.signals") for m in c)], cycles


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_a_new_setting_path_is_one_table_row_and_the_table_points_only_at_real_places():
    s = Settings()
    for old, path in LEGACY.items():
        head, *rest = path.split(".")
        if head in SECTIONS and rest[0] != "baselines":
            assert hasattr(getattr(s, head), rest[0]), (old, path)
        else:
            assert head in ("signals", "db_path", "seed", "evaluation"), (old, path)
    assert pd.Series(list(LEGACY.values())).is_unique
