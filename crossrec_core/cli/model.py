"""`crossrec finetune|encoders|train|eval`: fitting and measuring models."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import EncoderSettings, EvaluationSettings, Settings, TuningSettings
from ..errors import CrossRecError
from ..paths import expand
from .base import check_k_arg, command, open_store, print_json, progress_bar, settings_for

@command
def cmd_finetune(args: argparse.Namespace) -> int:
    """Tune the item encoder on co-purchases of the training period; adopt it only when better."""
    from ..finetune.run import FinetuneOptions, finetune

    opts = FinetuneOptions(mode=args.mode, base=args.base, device=args.device, max_minutes=args.max_minutes,
                           epochs=args.epochs, batch_size=args.batch_size, name=args.name, resume=args.resume,
                           force=args.force)
    settings = Settings(db_path=Path(args.db))
    with open_store(args, write=True) as store, progress_bar(not args.quiet) as progress:
        res = finetune(store, settings, opts, progress=progress)
    card = res.card
    tr = card["training"]
    base, tuned = card["validation"]["base"], card["validation"]["tuned"]
    print(f"tuned encoder '{res.name}' ({res.mode}, {res.device}/{card['precision']}): {card['pairs']['pairs']:,} pairs, "
          f"{tr['step']:,} steps, {tr['epoch']:.2f} epochs, {tr['examples_per_s']:,.0f} examples/s"
          + (" (stopped at --max-minutes; --resume continues)" if tr["stopped"] == "time" else ""))
    for label, key in (("content Recall@20", "all"), ("cold items Recall@20", "cold_items"),
                       ("pair Recall@10", "pair_recall")):
        b, t = base.get(key), tuned.get(key)
        if b is not None and t is not None:
            print(f"  {label:<21} base {b:.4f}  tuned {t:.4f}  (validation period)")
    print(("adopted: " if res.adopted else "kept the current encoder: ") + res.reason)
    print(f"saved in {res.folder}")
    return 0


@command
def cmd_encoders(args: argparse.Namespace) -> int:
    """List the stored encoders, or choose the one `encode`, `train` and serving use."""
    from ..finetune import registry

    settings = Settings(db_path=Path(args.db))
    if args.action == "use":
        if not args.target:
            raise CrossRecError("say which encoder: crossrec encoders use NAME (or 'base')")
        folder = registry.use_encoder(settings, args.target)
        model_id = registry.read_card(folder).get("model_id") if folder else None
        stored = True
        if model_id:
            with open_store(args) as store:
                stored = store.embedding_count(model_id) > 0
        step = "" if stored else "`crossrec encode` to store its item vectors, then "
        print(f"encoder '{args.target}' chosen; run {step}`crossrec train` to refit with it "
              + ("(the base text signal alone)" if folder is None else "(its own text signal beside the base one)"))
        return 0
    rows = registry.list_encoders(settings)
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        figs = "" if r["val_content_recall"] is None else (
            f"  val content R@20 {r['val_content_recall']:.4f}  pair R@10 {r['val_pair_recall'] or 0:.4f}")
        print(f"{'*' if r['chosen'] else ' '} {r['name']:<24} {r['mode']:<5} {r['created'][:19]:<19}{figs}")
    return 0



@command
def cmd_train(args: argparse.Namespace) -> int:
    """Learn weights on a validation carve-out, evaluate, fit for serving, record a run."""
    from ..signals.registry import parse_weights
    from ..train import train

    weights = parse_weights(args.weights) if args.weights else None
    settings = settings_for(args)
    if args.als_device is not None:
        settings = settings.replace({"signals.als.device": args.als_device})
    if args.tune_seconds is not None:
        settings = settings.replace({"tuning.seconds": args.tune_seconds})
    with open_store(args, write=True) as store, progress_bar(not args.quiet) as progress:
        if args.engine == "ray":  # encoding and co-occurrence counts on a Ray cluster; ALS and the rest stay here
            from ..engine.ray_jobs import ray_training

            with ray_training(store, settings, address=args.address, work_dir=args.work_dir, progress=progress):
                run = train(store, settings, weights=weights, name=args.name, learn=not args.no_learn,
                            project=True, promote=args.promote, progress=progress)
        else:
            run = train(store, settings, weights=weights, name=args.name, learn=not args.no_learn,
                        project=True, promote=args.promote, progress=progress)
        live = store.run()
    m = (run["metrics"].get("slices", {}).get("all") or {}).get("crossrec") or {}

    def num(key: str) -> str:
        value = m.get(key)
        return "–" if value is None else f"{float(value):.4f}"

    w = ", ".join(f"{k}={v:.2f}" for k, v in run["weights"].items())
    status = ("is live" if live and live["name"] == run["name"] else
              f"is recorded; the live run is still '{live['name']}' (`crossrec runs promote {run['name']}`)")
    print(f"run {run['name']} {status} ({run['duration_s']:.0f} s); weights: {w}")
    print(f"held-out @{run['metrics']['k']}: recall {num('recall')}, ndcg {num('ndcg')}, "
          f"cross recall {num('cross_recall')} ({m.get('users') or 0} users)")
    ranker = run["metrics"].get("ranker") or {}
    model = run["metrics"].get("model", "fusion")
    print(f"model: {'learned ranker' if model == 'ranker' else 'linear fusion of the signals'}"
          + (f" ({ranker['reason']})" if ranker.get("reason") else ""))
    tuned = run["metrics"].get("signal_tuning") or {}
    if tuned.get("ran"):
        changed = ", ".join(f"{p} {v:g}" for p, v in tuned["changed"].items()) or "every signal kept its value"
        skipped = f"; {len(tuned['skipped_for_time'])} trials skipped for time" if tuned["skipped_for_time"] else ""
        print(f"signals tuned on the validation period in {tuned['seconds']:.0f} s: {changed}{skipped}")
    _print_intervals(run["metrics"])
    if run["metrics"].get("steps"):
        from ..resources import steps_table

        print(f"\ntime and peak memory per step (ALS on {run['metrics'].get('als_device') or 'cpu'}):")
        print(steps_table(run["metrics"]["steps"], expand={"fit for serving"}))  # every part: metrics["steps"]
    return 0


def _print_intervals(result: dict) -> None:
    """crossrec minus the best baseline, with its 95 % paired-bootstrap interval over users."""
    for metric, iv in (result.get("intervals") or {}).items():
        if not iv:
            continue
        verdict = ("above" if iv["low"] > 0 else "below" if iv["high"] < 0 else "within noise of")
        ratio = f" ({iv['ratio']:.3f}x)" if iv.get("ratio") else ""
        print(f"{metric}: crossrec - {iv['best']} = {iv['diff']:+.4f} [95% {iv['low']:+.4f}, {iv['high']:+.4f}]"
              f"{ratio}: {verdict} the best baseline")


@command
def cmd_eval(args: argparse.Namespace) -> int:
    """The metrics table, ours against the baselines, for each slice."""
    from ..evaluate import metrics_table
    from ..train import eval_run

    check_k_arg(args)
    settings = settings_for(args).replace({"evaluation.k": args.k})
    with open_store(args, write=True) as store, progress_bar(not args.quiet and not args.json) as progress:
        result = eval_run(store, settings, record=not args.no_record, progress=progress)
    if args.json:
        print_json(result)
        return 0
    table = metrics_table(result)
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        for slice_name, part in table.groupby("slice", sort=False):
            print(f"\n== {slice_name} (K={result['k']})")
            print(part.drop(columns=["slice"]).set_index("model").to_string())
    print()
    _print_intervals(result)
    return 0



def add_parsers(sub, common) -> None:
    from ..encoder import DEVICES
    from ..finetune.run import MODES as FINETUNE_MODES
    from ..signals.registry import weights_help

    p = sub.add_parser("train", parents=[common], help="learn weights, evaluate, fit for serving, record a run")
    p.add_argument("--weights", help=weights_help())
    p.add_argument("--name", help="run name (default: run-<time>)")
    p.add_argument("--no-learn", action="store_true", help="use default weights instead of learning them")
    p.add_argument("--promote", action="store_true",
                   help="make the new run live (otherwise the live run stays; the first run is always live)")
    p.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="ray: encode item texts and count co-occurrences on a Ray cluster (pip install "
                        "'crossrec[ray]'); ALS and the rest run here")
    p.add_argument("--als-device", default=None, choices=["auto", "cpu", "cuda"],
                   help="where ALS fits (auto, the default: the GPU when implicit has CUDA); the setting "
                        "signals.als.device")
    p.add_argument("--tune-seconds", default=None, type=float,
                   help="time box of tuning the signals' hyper-parameters on the validation period before the "
                        "weights are learned (default %g; 0: off); the setting tuning.seconds" % TuningSettings.seconds)
    p.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local one)")
    p.add_argument("--work-dir", default=None, type=expand, help="folder every Ray node sees, for the jobs' Parquet files")

    p = sub.add_parser("eval", parents=[common], help="metrics table: ours against the baselines")
    p.add_argument("--k", default=EvaluationSettings.k, help="list length, 1 to %d" % EvaluationSettings.max_k)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--no-record", action="store_true", help="do not record the evaluation as a run")
    p = sub.add_parser("finetune", parents=[common], help="tune the item encoder on co-purchases (training period)")
    p.add_argument("--base", default=EncoderSettings.model, help="base model folder or name (default: packaged MiniLM)")
    p.add_argument("--mode", default=FINETUNE_MODES[0], choices=FINETUNE_MODES,
                   help="head: a network on frozen vectors (CPU default); lora/full: the transformer (CUDA: full)")
    p.add_argument("--max-minutes", type=float, help="stop at a checkpoint after this long (--resume continues)")
    p.add_argument("--epochs", type=float, help="passes over the pairs (default: head 10, lora/full 1)")
    p.add_argument("--batch-size", type=int, help="pairs per batch (default: head 256, lora/full 64)")
    p.add_argument("--device", default=EncoderSettings.device, choices=DEVICES)
    p.add_argument("--name", help="encoder name (default: ft-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint of --name")
    p.add_argument("--force", action="store_true", help="adopt even when not better; replace an encoder of that name")

    p = sub.add_parser("encoders", parents=[common], help="list tuned encoders, or choose one (or 'base')")
    p.add_argument("action", choices=["list", "use"])
    p.add_argument("target", nargs="?", help="for use: an encoder name, or 'base'")
    p.add_argument("--json", action="store_true", help="print one JSON document (list)")
