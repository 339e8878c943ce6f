"""Encoder throughput: plain fp32 SentenceTransformer.encode vs CrossRec's encode_items (bf16 where the CPU
has it), and the cost of a re-run after 1 % of the item texts changed. Prints a table; asserts nothing.

    .venv/bin/python benchmarks/encoder.py [--n 5000] [--repeats 3] [--synthetic]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from crossrec_core.encoder import Encoder, cpu_supports_bf16, encode_items, item_text, resolve_model  # noqa: E402
from crossrec_core.store import Store  # noqa: E402

INSTACART = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "instacart_sample" / "items.parquet"


def synthetic_items(n: int) -> pd.DataFrame:
    """Deterministic short product titles: brand × attribute × noun, with a category path."""
    brands = ["Acme", "Nordhaus", "Sigma", "Lodge", "Joie", "Salomon", "Lavazza", "Sony", "Giro", "Bosch",
              "Patagonia", "Oxo", "Ikea", "Philips", "Canon", "Lego", "Nike", "Braun", "Yeti", "Tefal"]
    attrs = ["waterproof", "organic", "stainless steel", "wireless", "kids'", "lightweight", "compact", "2-pack",
             "extra large", "vintage", "foldable", "rechargeable", "gluten-free", "cast iron", "ergonomic",
             "insulated", "bamboo", "noise-cancelling", "non-slip", "solar"]
    nouns = [("running shoes", "Sports > Running"), ("hiking boots", "Sports > Outdoor"),
             ("stroller", "Baby > Strollers"), ("camera lens", "Photography > Lenses"),
             ("coffee beans", "Grocery > Coffee"), ("skillet", "Home > Kitchen"), ("yoga mat", "Sports > Fitness"),
             ("headphones", "Electronics > Audio"), ("bike helmet", "Sports > Cycling"), ("drill", "Tools > Power"),
             ("rain jacket", "Clothing > Outerwear"), ("water bottle", "Home > Drinkware"),
             ("desk lamp", "Home > Lighting"), ("building kit", "Toys > Construction"),
             ("toothbrush", "Health > Oral Care"), ("backpack", "Bags > Daypacks"), ("blender", "Home > Appliances"),
             ("pasta", "Grocery > Pantry"), ("tent", "Sports > Camping"), ("keyboard", "Electronics > Computers")]
    rows = []
    for i in range(n):
        b, a, (noun, cat) = brands[i % 20], attrs[(i // 20) % 20], nouns[(i // 400) % 20]
        size = f" {1 + i // 8000} l" if i >= 8000 else ""
        rows.append((f"s{i:06d}", f"{b} {a} {noun}{size}", cat, "", b, float(10 + i % 90)))
    return pd.DataFrame(rows, columns=["item_id", "title", "category", "description", "brand", "price"])


def load_items(n: int, synthetic: bool) -> tuple[pd.DataFrame, str]:
    if not synthetic and INSTACART.exists():
        df = pd.read_parquet(INSTACART)
        df = df.sample(n=min(n, len(df)), random_state=0).sort_values("item_id").reset_index(drop=True)
        return df[["item_id", "title", "category", "description", "brand", "price"]], "instacart titles"
    return synthetic_items(n), "synthetic titles"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="number of items (default 5000)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats per measurement; medians are shown")
    ap.add_argument("--synthetic", action="store_true", help="synthetic titles even if the Instacart sample exists")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    from sentence_transformers import SentenceTransformer

    items, source = load_items(args.n, args.synthetic)
    n = len(items)
    texts = item_text(items, 1000).tolist()
    n_distinct = len(set(texts))
    bs = args.batch_size
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    fp32 = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu")
    fp32.encode(texts[:bs], batch_size=bs)  # warm-up
    enc = Encoder(device="cpu", batch_size=bs)
    load_s, _ = timed(enc.load)
    enc.encode(texts[:bs])  # warm-up
    bf16_plain = None
    if enc.precision_ == "bf16":
        bf16_plain = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu").to(torch.bfloat16)
        bf16_plain.encode(texts[:bs], batch_size=bs)

    t_fp32, t_bf16_plain, t_ours, t_first, t_again, t_rerun = [], [], [], [], [], []
    rerun_encoded = []
    ref = ours = None
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            s, ref = timed(lambda: fp32.encode(texts, batch_size=bs, convert_to_numpy=True,
                                               normalize_embeddings=True, show_progress_bar=False))
            t_fp32.append(s)
            if bf16_plain is not None:
                t_bf16_plain.append(timed(lambda: bf16_plain.encode(texts, batch_size=bs, convert_to_numpy=True,
                                                                    show_progress_bar=False))[0])
            s, ours = timed(lambda: enc.encode(texts))
            t_ours.append(s)
            with Store(Path(tmp) / f"bench{r}.duckdb") as store:
                store.ingest_frames(items=items)
                s, res = timed(lambda: encode_items(store, enc))
                assert res.encoded == n_distinct
                t_first.append(s)
                t_again.append(timed(lambda: encode_items(store, enc))[0])
                changed = items.copy()
                rows = np.arange(r, n, 100)  # 1 % of the items, a different 1 % each repeat
                changed.loc[rows, "title"] = changed.loc[rows, "title"] + f" (new {r})"
                store.ingest_frames(items=changed)
                s, res = timed(lambda: encode_items(store, enc))
                t_rerun.append(s)
                rerun_encoded.append(res.encoded)

    med = statistics.median
    base = n / med(t_fp32)
    cos = np.sum(ref * ours, axis=1)
    print(f"encoder benchmark: {n:,} {source} (e.g. {texts[0]!r}), batch {bs}, torch threads "
          f"{torch.get_num_threads()}, median of {args.repeats}")
    print(f"CPU native bf16: {cpu_supports_bf16()}; ours: {enc.precision_} ({enc.precision_reason_}); "
          f"load + check {load_s:.2f} s; load average {load0:.1f} → {os.getloadavg()[0]:.1f}")
    print(f"{'variant':44s} {'seconds':>8s} {'sent/s':>8s} {'vs fp32':>8s}")
    rows = [("SentenceTransformer.encode fp32", med(t_fp32))]
    if t_bf16_plain:
        rows.append(("SentenceTransformer.encode bf16 (no checks)", med(t_bf16_plain)))
    rows += [(f"Encoder.encode ({enc.precision_})", med(t_ours)),
             ("encode_items first pass (+ texts, store)", med(t_first))]
    for name, s in rows:
        print(f"{name:44s} {s:8.2f} {n / s:8.0f} {n / s / base:7.2f}×")
    first = med(t_first)
    print(f"{'encode_items re-run, nothing changed':44s} {med(t_again):8.2f} {'':8s} "
          f"{100 * med(t_again) / first:6.1f} % of first pass")
    print(f"{'encode_items re-run, 1 % changed':44s} {med(t_rerun):8.2f} {'':8s} "
          f"{100 * med(t_rerun) / first:6.1f} % of first pass (encoded {rerun_encoded[0]})")
    print(f"agreement ours vs fp32: min cosine {cos.min():.5f}, mean {cos.mean():.6f}")

    if torch.cuda.is_available():
        gpu32 = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cuda")
        gpu16 = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cuda").half()
        for m in (gpu32, gpu16):
            m.encode(texts[:bs], batch_size=bs)
        g32 = med([timed(lambda: gpu32.encode(texts, batch_size=bs, show_progress_bar=False))[0]
                   for _ in range(args.repeats)])
        g16 = med([timed(lambda: gpu16.encode(texts, batch_size=bs, show_progress_bar=False))[0]
                   for _ in range(args.repeats)])
        print(f"CUDA {torch.cuda.get_device_name(0)}: fp32 {n / g32:,.0f} sent/s, fp16 {n / g16:,.0f} sent/s "
              f"({g32 / g16:.2f}×)")


if __name__ == "__main__":
    main()
