"""als: implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) with the `implicit` library.

Confidence: c_ui = 1 + alpha · log1p(x_ui) on the observed pairs (x = data.X, event weight ×
recency), preference 1 there; unobserved pairs have c = 1, p = 0 (implicit's own convention, which
weighs an observed pair by c and the implicit zeros by 1, so c ≥ 1 keeps every observed pair at
least as trusted as a missing one). implicit is given alpha = 1 and this matrix.

Item factors Y come from the fit. A user's factors are *not* read from the fit: for the batch in a
Context they are recomputed from ctx.X (the current history) by the exact ALS user step
x_u = (YᵀY + λI + Yᵀ(C_u − I)Y)⁻¹ YᵀC_u p_u, so a new event changes the next list without a
refit. The default solver builds each A_u with numpy (a small Gram of the user's history rows, YᵀY
precomputed) and solves the whole batch in one stacked np.linalg.solve; solver="implicit" uses
implicit's native `recalculate_user` instead (same numbers to 1e-5); numpy is the default because
it was faster at every batch size (`benchmarks/als.py` measures both). Items nobody touched in the fit get zero factors
(score 0: the signal knows nothing about them).

Evidence (as implicit's `explain`): score_ui = Σ_j c_uj · y_jᵀ A_u⁻¹ y_i over history items j;
the shares are each history item's positive term over the sum of the positive terms.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.linalg import lapack
import scipy.sparse as sp

from typing import TYPE_CHECKING

from ..data import Interactions
from .base import Context, EvidenceBatch, Signal, Words, cited, user_terms

CONFIDENCES = ("log", "raw")
SOLVERS = ("implicit", "numpy")

if TYPE_CHECKING:
    from ..config import Settings


ALS_DEVICES = ("auto", "cpu", "cuda")


def _has_cuda() -> bool:
    try:
        import implicit.gpu

        return bool(implicit.gpu.HAS_CUDA)
    except Exception:  # pragma: no cover - a broken CUDA install must not break the CPU path
        return False


def als_device(asked: str, has_cuda: bool | None = None) -> str:
    """The device ALS fits on for its `device` parameter `asked`: auto -> cuda when implicit has CUDA, else
    cpu; cuda without CUDA is an error (said in one line), not a silent CPU fit."""
    from ..errors import CrossRecError

    if asked not in ALS_DEVICES:
        raise CrossRecError(f"als device is '{asked}'; use one of {', '.join(ALS_DEVICES)}")
    cuda = _has_cuda() if has_cuda is None else has_cuda
    if asked == "cuda" and not cuda:
        raise CrossRecError("als device is 'cuda' but implicit has no CUDA here (implicit.gpu.HAS_CUDA is False: "
                            "no GPU, or implicit built without CUDA); use device 'auto' or 'cpu' "
                            "(setting signals.als.device, `crossrec train --als-device`)")
    return "cuda" if asked == "cuda" or (asked == "auto" and cuda) else "cpu"


class ALSSignal(Signal, name="als", label="taste match", color="#7c3aed", default_weight=0.15,
                state_fields=("item_factors_", "YtY_", "factors_", "fitted_")):
    """implicit ALS item factors; user factors solved from the current history at score time."""

    def __init__(self, *, factors: int = 64, iterations: int = 15, regularization: float = 30.0,
                 alpha: float = 1.0, device: str = "auto", confidence: str = "log", solver: str = "numpy",
                 num_threads: int = 0, random_state: int = 42):
        """`regularization` (λ) was chosen on the validation period of the demo shop and Instacart
        (`python benchmarks/tune.py`); `device`: auto (implicit's GPU model when implicit has CUDA, else
        the CPU) | cpu | cuda (an error without CUDA); scoring always runs on the CPU from the fitted
        factors, and each run records the device."""
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.alpha = alpha
        self.device = device
        self.confidence = confidence
        self.solver = solver
        self.num_threads = num_threads
        self.random_state = random_state

    # ---- confidence -------------------------------------------------------------------------

    def confidence_matrix(self, X: sp.csr_matrix) -> sp.csr_matrix:
        """c = 1 + alpha · g(x) on the non-zeros of X (g = log1p or identity); float32 CSR."""
        C = sp.csr_matrix(X, dtype=np.float32, copy=True)
        C.data[C.data < 0] = 0
        C.eliminate_zeros()
        vals = np.log1p(C.data) if self.confidence == "log" else C.data
        C.data = (1.0 + float(self.alpha) * vals).astype(np.float32)
        return C

    def fit_device(self) -> str:
        """cpu or cuda: where `device` (auto: the GPU when implicit has CUDA) has this signal fit."""
        return als_device(str(self.device).strip().lower())

    def make_model(self, device: str | None = None):
        """The `implicit` model with this signal's parameters, on `device` (default: `self.fit_device()`)."""
        import implicit.als

        gpu = (device or self.fit_device()) == "cuda"
        return implicit.als.AlternatingLeastSquares(
            factors=int(self.factors), regularization=float(self.regularization), alpha=1.0,
            iterations=int(self.iterations), random_state=int(self.random_state), num_threads=self.num_threads,
            use_gpu=gpu,
        )

    # ---- fit --------------------------------------------------------------------------------

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "ALSSignal":
        if self.confidence not in CONFIDENCES:
            raise ValueError(f"unknown confidence '{self.confidence}' (one of {', '.join(CONFIDENCES)})")
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver '{self.solver}' (one of {', '.join(SOLVERS)})")
        device = self.fit_device()  # before any work: cuda asked where there is none fails at once
        k = int(self.factors)
        C = self.confidence_matrix(data.X)
        model = None
        if C.nnz > 0:
            # Fit on the items somebody touched: the rest of the catalog has no data (its factors
            # would only decay towards 0 and are zeroed anyway), so leaving it out is exact for the
            # fitted items and makes the user step at score time consistent with the fit.
            touched = np.flatnonzero(np.bincount(C.indices, minlength=C.shape[1]) > 0)
            if len(touched) < C.shape[1]:
                remap = np.full(C.shape[1], -1, dtype=C.indices.dtype)
                remap[touched] = np.arange(len(touched), dtype=C.indices.dtype)
                Cc = sp.csr_matrix((C.data, remap[C.indices], C.indptr), shape=(C.shape[0], len(touched)))
            else:
                Cc = C
            model = self.make_model(device)
            model.fit(Cc, show_progress=False)
            if hasattr(model, "to_cpu"):  # GPU model: its factors come back as numpy, scored on the CPU
                model = model.to_cpu()
            Yc = np.asarray(model.item_factors, dtype=np.float32)
            k = Yc.shape[1]
            Ycd = Yc.astype(np.float64)
            YtY = Ycd.T @ Ycd
            Y = np.zeros((data.n_items, k), dtype=np.float32)
            Y[touched] = Yc
            model.item_factors = Y
            model._YtY = None  # implicit caches YᵀY and norms; the factor matrix changed
            model._item_norms = None
        else:
            Y = np.zeros((data.n_items, k), dtype=np.float32)
            YtY = np.zeros((k, k))
        self.device_ = device
        self.model_ = model
        self.fitted_ = model is not None
        self.item_factors_ = Y
        self.YtY_ = YtY
        self.factors_ = k
        return self

    # ---- users ------------------------------------------------------------------------------

    def user_factors(self, X: sp.csr_matrix) -> np.ndarray:
        """B × k factors of users whose current histories are the rows of X (zeros: no history)."""
        C = self.confidence_matrix(X)
        B = C.shape[0]
        if not self.fitted_ or B == 0:
            return np.zeros((B, self.factors_), dtype=np.float32)
        if self.solver == "implicit":
            return np.asarray(self._implicit_model().recalculate_user(np.arange(B), C), dtype=np.float32)
        return self._solve_numpy(C, key=X)

    @classmethod
    def from_state(cls, state, settings: Settings) -> "ALSSignal":
        obj = super().from_state(state, settings)
        obj.model_ = None  # implicit's model object is rebuilt from the factors when solver="implicit" asks
        return obj

    def _implicit_model(self):
        """implicit's CPU model holding the fitted item factors (rebuilt after a load)."""
        if self.model_ is None:
            model = self.make_model("cpu")
            if hasattr(model, "to_cpu"):
                model = model.to_cpu()
            model.item_factors = self.item_factors_
            self.model_ = model
        return self.model_

    def _system(self, idx: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A_u (k × k) and b_u (k) of one user's ALS step from history positions and confidences."""
        Y = self.item_factors_
        Yh = Y[idx].astype(np.float64)
        A = self.YtY_ + Yh.T @ (Yh * (c - 1.0)[:, None])
        A[np.diag_indices_from(A)] += float(self.regularization)
        b = Yh.T @ c
        return A, b

    def _solve_numpy(self, C: sp.csr_matrix, key: object = None) -> np.ndarray:
        B, k = C.shape[0], self.factors_
        A = np.empty((B, k, k), dtype=np.float64)
        b = np.zeros((B, k), dtype=np.float64)
        empty = np.diff(C.indptr) == 0
        for u in range(B):
            lo, hi = C.indptr[u], C.indptr[u + 1]
            if lo == hi:
                A[u] = np.eye(k)
                continue
            A[u], b[u] = self._system(C.indices[lo:hi], C.data[lo:hi].astype(np.float64))
        x = np.linalg.solve(A, b[..., None])[..., 0]
        if key is not None:  # the batch's explanations factorise these same A_u (evidence_batch); the last
            # two batches are kept, as the learned ranker scores a batch and then its rows with history
            self.__dict__["_systems"] = [(key, A), *self.__dict__.get("_systems", [])[:1]]
        x[empty] = 0.0
        return x.astype(np.float32)

    # ---- scoring ----------------------------------------------------------------------------

    def score(self, ctx: Context) -> np.ndarray:
        U = self.user_factors(ctx.X)
        return np.asarray(U @ self.item_factors_.T, dtype=np.float32)

    def block_scorer(self, ctx: Context):
        U = self.user_factors(ctx.X)
        return lambda a, b: np.asarray(U @ self.item_factors_[a:b].T, dtype=np.float32)

    def evidence_batch(self, ctx: Context, rows: np.ndarray, items: np.ndarray) -> EvidenceBatch:
        """Each history item j's term c_uj · y_jᵀ A_u⁻¹ y_i of each pair (u, i); A_u factorised once per user."""
        rows, items = np.asarray(rows), np.asarray(items, dtype=np.int64)
        if not self.fitted_ or not len(items):
            return EvidenceBatch.empty(len(items))
        C = self.confidence_matrix(ctx.X)
        Y = self.item_factors_

        systems = next((A for key, A in self.__dict__.get("_systems", []) if key is ctx.X), None)  # this batch's scoring

        def terms(row: int, at: np.ndarray):
            lo, hi = C.indptr[row], C.indptr[row + 1]
            if lo == hi:
                return None
            h, c = C.indices[lo:hi], C.data[lo:hi].astype(np.float64)
            A = systems[row] if systems is not None else self._system(h, c)[0]
            # scipy.linalg.cho_factor/cho_solve's own LAPACK calls, without their checks (a user's A is finite)
            U, info = lapack.dpotrf(A, lower=0, clean=0)
            if info == 0:
                W, info = lapack.dpotrs(U, Y[items[at]].T.astype(np.float64), lower=0)
            if info != 0:
                W = scipy.linalg.cho_solve(scipy.linalg.cho_factor(A), Y[items[at]].T.astype(np.float64))
            return h, c[:, None] * (Y[h].astype(np.float64) @ W)
        return user_terms(rows, items, terms)

    def phrases(self, ev: EvidenceBatch, items: np.ndarray, words: Words) -> list[str]:
        return cited(ev, words, "fits this shopper's taste (like {})", self.label)
