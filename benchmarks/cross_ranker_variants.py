"""Cross-mode ranker variants, scored on the ranker's own validation window (the training period only):
the general ranker, the cross-mode ranker from scratch (what `fit_cross` trains), a residual booster over the
general ranker's scores (LightGBM init_score) at two learning rates, and general + w * scratch (z-scored).
CrossRecall@20 on the window's two halves ("stop" picks a count, "select" judges), with the paired interval
of each against the general ranker on "select".

    python benchmarks/cross_ranker_variants.py DATABASE   (about 15 minutes on completejourney, 2 cores)

`fit_ranker` runs as training runs it; its `fit_cross` call is wrapped to keep the two windows' candidates.
"""
import os, sys, time
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from _shared import settings_for  # noqa: F401  (crossrec_core first: it pins BLAS threads)
import numpy as np
import lightgbm as lgb
from crossrec_core import ranker_fit
from crossrec_core.config import Settings
from crossrec_core.store import Store
from crossrec_core.train import _embeddings
from crossrec_core.split import time_split
from crossrec_core.metrics import recall_at_k
from crossrec_core.evaluate import paired_interval
from crossrec_core.ranker import feature_names, training_frames
from crossrec_core.discovery import FEATURES
from crossrec_core.served import best

db = sys.argv[1]
CAP = {}
orig = ranker_fit.fit_cross
def cap(*a, **kw):
    CAP["args"] = a
    CAP["settings"] = a[7]
    return orig(*a, **kw)
ranker_fit.fit_cross = cap
settings = Settings(db_path=db)
with Store(db, read_only=True) as store:
    items = store.items().sort_values("item_id").reset_index(drop=True)
    events = store.events()
    emb, _ = _embeddings(store, settings, items)
    pt = store.profile_texts()
cut = time_split(events, settings)
t0 = time.time()
ranker, rep = ranker_fit.fit_ranker(items, events[events["ts"] < cut], settings, emb, profile_texts=pt, force=True)
print("fit_ranker", round(time.time() - t0), "s; cross report", rep.get("cross"), flush=True)
fold_a, fold_b, general, g_rounds, names, stop_half, select_half, _ = CAP["args"][:8]
ca, cb = fold_a.cross, fold_b.cross
k = 20
has = np.fromiter((len(p) > 0 for p in cb.positives), bool, len(cb.positives))
stop, select = stop_half[has[stop_half]], select_half[has[select_half]]
ng = len(general.feature_names_)

def lists(pred_fn):
    out = []
    for (c, _), ex in zip(cb.batches, cb.exclusions):
        p = pred_fn(c.X).astype(np.float32) if len(c.rows) else np.zeros(0, np.float32)
        out.append(best(c.rows, c.items, p, np.zeros(len(p), bool), ex.shape[0], k))
    return out

def rec(ls, rows):
    return ranker_fit._ndcg_users(ls, cb, rows, k, recall_at_k)

gen = lambda X: general.booster_.predict(X[:, :ng], num_iteration=g_rounds)
r_gen_stop, r_gen_sel = rec(lists(gen), stop), rec(lists(gen), select)
print(f"general: stop {r_gen_stop.mean():.4f} select {r_gen_sel.mean():.4f}", flush=True)

X, y, g = training_frames(ca.batches)
print("cross training rows", len(y), "groups", len(g), "positives", int(y.sum()), flush=True)
params = general._params(len(y))
# a) from scratch (today's)
scratch = lgb.train(params, lgb.Dataset(X, y, group=g, feature_name=feature_names(names, FEATURES)), num_boost_round=300)
# b) residual over the general ranker's scores
init = general.booster_.predict(X[:, :ng], num_iteration=g_rounds)
for lr_scale in (1.0, 0.3):
    p2 = dict(params); p2["learning_rate"] = params.get("learning_rate", 0.05) * lr_scale
    resid = lgb.train(p2, lgb.Dataset(X, y, group=g, init_score=init, feature_name=feature_names(names, FEATURES)),
                      num_boost_round=300)
    for r in (5, 10, 25, 50, 100, 200, 300):
        fn = lambda X, r=r: gen(X) + resid.predict(X, num_iteration=r)
        ls = lists(fn)
        a, b = rec(ls, stop), rec(ls, select)
        d, lo, hi = paired_interval(b, r_gen_sel, 42)
        print(f"residual lr×{lr_scale} {r:3d}: stop {a.mean():.4f} select {b.mean():.4f} vs general {d:+.4f} [{lo:+.4f},{hi:+.4f}]", flush=True)
for r in (25, 50, 100, 200):
    ls = lists(lambda X, r=r: scratch.predict(X, num_iteration=r))
    a, b = rec(ls, stop), rec(ls, select)
    d, lo, hi = paired_interval(b, r_gen_sel, 42)
    print(f"scratch {r:3d}: stop {a.mean():.4f} select {b.mean():.4f} vs general {d:+.4f} [{lo:+.4f},{hi:+.4f}]", flush=True)
    for w in (0.25, 0.5, 1.0):
        def mix(X, r=r, w=w):
            a1 = gen(X); b1 = scratch.predict(X, num_iteration=r)
            return (a1 - a1.mean()) / (a1.std() + 1e-9) + w * (b1 - b1.mean()) / (b1.std() + 1e-9)
        ls = lists(mix)
        a, b = rec(ls, stop), rec(ls, select)
        d, lo, hi = paired_interval(b, r_gen_sel, 42)
        print(f"   mix w {w}: stop {a.mean():.4f} select {b.mean():.4f} vs general {d:+.4f} [{lo:+.4f},{hi:+.4f}]", flush=True)
