"""`head` mode: a small trainable network on FROZEN base embeddings (the CPU default).

The base encoder's item vectors are computed once (and cached in the store by text hash); training
then touches only the head, so an epoch over 100k pairs takes seconds on a CPU.

Two towers, each a residual MLP that starts as the identity (its last layer is zero at first):
    tower(x) = unit(x + W2 · gelu(W1 · x + b1) + b2)
The `history` tower maps the items a shopper had, the `candidate` tower the items to rank, so A → B can
differ from B → A; `shared=True` (the default) uses one tower for both, because the content signal
serves one vector per item: on Instacart's validation period two towers scored content-only
Recall@20 .047 scored as history → candidate but .016 with the candidate tower on both sides, one
shared tower .067 (with count-weighted pairs and log-Q). The loss is an in-batch softmax
(MultipleNegativesRankingLoss-style) over the batch's B items plus `extra_negatives` catalogue items
drawn uniformly (items nobody bought teach the head what a shopper does not buy), at temperature
`temperature`; `logq=True` subtracts the log sampling frequency of in-batch candidates (popularity
correction). Duplicated B items of a batch are masked, so a row is never its own negative.

Weights are saved as safetensors (plain tensors, nothing executable).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import CrossRecError
from ..progress import Progress

HEAD_WEIGHTS = "head.safetensors"
HEAD_CONFIG = "head.json"
# Bump when head.json or the weights change shape: an older folder then asks to be retuned in one line.
# Format 1 (the first) wrote no "format" key.
HEAD_FORMAT = 1


@dataclass
class HeadSettings:
    hidden: int = 256
    shared: bool = True
    temperature: float = 0.05
    logq: bool = True
    extra_negatives: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    epochs: int = 10
    batch_size: int = 256
    dropout: float = 0.1
    seed: int = 42

    def to_dict(self) -> dict:
        return asdict(self)


def _torch():
    import torch

    return torch


def build_head(dim: int, hidden: int, shared: bool, dropout: float = 0.0):
    """The two-tower head as a torch module (towers `history` and `candidate`; shared: one tower)."""
    torch = _torch()
    nn = torch.nn

    class Tower(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.Linear(dim, hidden)
            self.down = nn.Linear(hidden, dim)
            self.drop = nn.Dropout(dropout)
            nn.init.zeros_(self.down.weight)
            nn.init.zeros_(self.down.bias)

        def forward(self, x):
            y = x + self.down(self.drop(torch.nn.functional.gelu(self.up(x))))
            return torch.nn.functional.normalize(y, dim=-1)

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.history = Tower()
            self.candidate = self.history if shared else Tower()

    return Head()


@dataclass
class TrainState:
    """Where a training run is: steps and examples done, loss curve, whether it stopped early."""

    losses: list = field(default_factory=list)  # [epoch, mean loss] per logged interval
    stopped: str = ""  # '' (finished), 'time' (--max-minutes), 'interrupted'
    step: int = 0
    epoch: float = 0.0
    examples: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)




def train_head(base: np.ndarray, pairs, hs: HeadSettings, *, max_seconds: float | None = None,
               progress: Progress | None = None, device: str = "cpu", head=None, state: TrainState | None = None,
               checkpoint: Callable[[object, TrainState], None] | None = None, checkpoint_every: float = 60.0):
    """Train the head on (a, b, weight) pairs over the base item vectors `base` (n_items × d, unit rows).

    Batches are drawn with probability ∝ pair weight. Stops after `hs.epochs` passes or `max_seconds`
    (at a step boundary; `state.stopped` = 'time'). `head`/`state` continue an earlier run (--resume).
    `checkpoint(head, state)` is called every `checkpoint_every` seconds and at the end.
    Returns (head, state)."""
    torch = _torch()
    threads = torch.get_num_threads()
    if device == "cpu":
        # The head's matrices are small: on a 2-core machine shared with other work one thread ran 7×
        # faster than two (10,300 against 1,440 examples/s, hidden 128, batch 256).
        torch.set_num_threads(1)
    try:
        return _train(torch, base, pairs, hs, max_seconds, progress, device, head, state, checkpoint,
                      checkpoint_every)
    finally:
        torch.set_num_threads(threads)


def _train(torch, base, pairs, hs, max_seconds, progress, device, head, state, checkpoint, checkpoint_every):
    torch.manual_seed(hs.seed)
    rng = np.random.default_rng(hs.seed + (state.step if state else 0))
    if len(pairs) == 0:
        raise CrossRecError("no training pairs: the training period has no basket with two items")
    E = torch.from_numpy(np.ascontiguousarray(base, dtype=np.float32)).to(device)
    n_items, dim = E.shape
    head = head if head is not None else build_head(dim, hs.hidden, hs.shared, hs.dropout)
    head.to(device).train()
    opt = torch.optim.AdamW(head.parameters(), lr=hs.lr, weight_decay=hs.weight_decay)
    a = np.asarray(pairs["a"], np.int64)
    b = np.asarray(pairs["b"], np.int64)
    w = np.asarray(pairs["weight"], np.float64)
    p = w / w.sum()
    bsz = int(min(hs.batch_size, len(a)))
    steps_per_epoch = max(1, math.ceil(len(a) / bsz))
    total_steps = max(1, int(round(hs.epochs * steps_per_epoch)))
    log_q = None
    if hs.logq:  # the chance that an item is a batch's positive
        q = np.bincount(b, weights=p, minlength=n_items)
        log_q = torch.from_numpy(np.log(np.maximum(q, 1e-12)).astype(np.float32)).to(device)
    state = state or TrainState()
    # a short warm-up, then a constant rate: a run cut short by --max-minutes was trained at full rate
    warm = max(1, min(50, total_steps // 10))
    done = state.step
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1 + done) / warm))
    has_event = np.zeros(n_items, bool)
    has_event[b] = True
    t_start = time.perf_counter() - state.seconds
    last_ck = time.perf_counter()
    run_loss, run_n = 0.0, 0
    log_every = max(1, steps_per_epoch // 4)
    while state.step < total_steps:
        if max_seconds is not None and time.perf_counter() - t_start >= max_seconds:
            state.stopped = "time"
            break
        idx = rng.choice(len(a), size=bsz, p=p)
        ai, bi = torch.from_numpy(a[idx]).to(device), torch.from_numpy(b[idx]).to(device)
        q = head.history(E[ai])
        cand_ids = bi
        if hs.extra_negatives:
            neg = torch.from_numpy(rng.integers(0, n_items, hs.extra_negatives)).to(device)
            cand_ids = torch.cat([bi, neg])
        c = head.candidate(E[cand_ids])
        logits = q @ c.T / hs.temperature
        if log_q is not None:
            corr = torch.zeros(len(cand_ids), device=device)
            corr[:bsz] = log_q[bi]
            logits = logits - corr
        # a candidate equal to the row's own positive (duplicates, or a drawn negative) is not a negative
        same = cand_ids[None, :] == bi[:, None]
        same[torch.arange(bsz), torch.arange(bsz)] = False
        logits = logits.masked_fill(same, float("-inf"))
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(bsz, device=device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        state.step += 1
        state.examples += bsz
        state.epoch = state.step / steps_per_epoch
        run_loss += float(loss.detach())
        run_n += 1
        state.seconds = time.perf_counter() - t_start
        if state.step % log_every == 0 or state.step == total_steps:
            state.losses.append([round(state.epoch, 3), round(run_loss / run_n, 5)])
            run_loss, run_n = 0.0, 0
        if progress:
            rate = state.examples / max(state.seconds, 1e-9)
            progress(state.step / total_steps,
                     f"epoch {state.epoch:.2f} loss {float(loss.detach()):.3f} {rate:,.0f} ex/s")
        if checkpoint and time.perf_counter() - last_ck >= checkpoint_every:
            checkpoint(head, state)
            last_ck = time.perf_counter()
    if run_n:
        state.losses.append([round(state.epoch, 3), round(run_loss / run_n, 5)])
    head.eval()
    if checkpoint:
        checkpoint(head, state)
    return head, state


def apply_head(head, base: np.ndarray, side: str = "candidate", batch: int = 8192) -> np.ndarray:
    """Map base vectors through one tower ('history' or 'candidate'): float32 unit rows; zero rows stay zero."""
    torch = _torch()
    base = np.asarray(base, np.float32)
    out = np.zeros_like(base)
    present = np.abs(base).sum(axis=1) > 0
    tower = getattr(head, side)
    head.eval()
    dev = next(head.parameters()).device
    with torch.no_grad():
        rows = np.flatnonzero(present)
        for s in range(0, len(rows), batch):
            r = rows[s:s + batch]
            out[r] = tower(torch.from_numpy(base[r]).to(dev)).cpu().numpy()
    return out


def save_head(head, folder: Path, hs: HeadSettings, dim: int) -> None:
    """Weights as safetensors plus the shape settings as JSON (nothing executable)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    if hs.shared:
        tensors = {k: v for k, v in tensors.items() if not k.startswith("candidate.")}
    save_file(tensors, str(folder / HEAD_WEIGHTS))
    (folder / HEAD_CONFIG).write_text(json.dumps({"format": HEAD_FORMAT, "dim": dim, "hidden": hs.hidden,
                                                       "shared": hs.shared}))


def load_head(folder: Path, device: str = "cpu"):
    from safetensors.torch import load_file

    cfg = json.loads((Path(folder) / HEAD_CONFIG).read_text())
    if cfg.get("format", 1) != HEAD_FORMAT:
        raise CrossRecError(f"the tuned encoder in {folder} was saved by another version of CrossRec; "
                            "tune it again with `crossrec finetune`")
    head = build_head(int(cfg["dim"]), int(cfg["hidden"]), bool(cfg["shared"]))
    tensors = load_file(str(Path(folder) / HEAD_WEIGHTS), device=device)
    head.load_state_dict(tensors, strict=not cfg["shared"])
    head.to(device).eval()
    return head
