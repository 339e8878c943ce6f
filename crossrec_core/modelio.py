"""Fitted models on disk as named arrays and JSON, never as executable objects.

A fitted object writes itself into a `State` (`to_state(state)`) and reads itself back from one
(`from_state(state, ...)`). A State holds three things under dotted names:

- arrays: plain numeric NumPy arrays (a sparse matrix is split into data/indices/indptr/shape, a
  string array into UTF-8 bytes and offsets), saved together as `model.npz` and loaded with
  object arrays refused;
- meta: JSON values (settings, weights, names, a booster's model string), saved in `model.json`;
- frames: pandas frames, saved as `<name>.parquet`.

`state.put(name, value)` picks the right one from the value's type and `state.get(name)` gives it
back; `state.sub("scorer")` is the same State under the prefix `scorer.`. So a new fitted object
plugs in with a `to_state`/`from_state` pair of a few `put`/`get` lines (or `put_attrs`/`get_attrs`).
The same array object put twice (e.g. item embeddings shared by two objects) is stored once.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import CrossRecError

MODEL_JSON = "model.json"
MODEL_NPZ = "model.npz"


class State:
    """Named arrays + JSON + frames of one fitted object (and of the objects it holds, under prefixes)."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None, meta: dict[str, Any] | None = None,
                 frames: dict[str, pd.DataFrame] | None = None, kinds: dict[str, Any] | None = None,
                 prefix: str = ""):
        self.arrays = {} if arrays is None else arrays
        self.meta = {} if meta is None else meta
        self.frames = {} if frames is None else frames
        self.kinds = {} if kinds is None else kinds  # name -> how it was stored
        self.prefix = prefix
        self._seen: dict[int, tuple[Any, str]] = {}

    def sub(self, name: str) -> "State":
        """The same State with every name under `<prefix><name>.`."""
        child = State(self.arrays, self.meta, self.frames, self.kinds, f"{self.prefix}{name}.")
        child._seen = self._seen
        return child

    def __contains__(self, name: str) -> bool:
        return self.prefix + name in self.kinds

    # ---- writing ----------------------------------------------------------------------------

    def put(self, name: str, value: Any) -> None:
        key = self.prefix + name
        if key in self.kinds:
            raise ValueError(f"'{key}' is already in this model state")
        if isinstance(value, (np.ndarray, pd.Index)) or sp.issparse(value):
            seen = self._seen.get(id(value))
            if seen is not None and seen[0] is value:  # the same object again: store a reference
                self.kinds[key] = ["ref", seen[1]]
                return
            self._seen[id(value)] = (value, key)
        if sp.issparse(value):
            m = sp.csr_matrix(value)
            for part in ("data", "indices", "indptr"):
                self.arrays[f"{key}.{part}"] = getattr(m, part)
            self.arrays[f"{key}.shape"] = np.asarray(m.shape, dtype=np.int64)
            self.kinds[key] = "csr"
        elif isinstance(value, pd.DataFrame):
            self.frames[key] = value
            self.kinds[key] = "frame"
        elif isinstance(value, pd.Timestamp):
            self.meta[key] = value.isoformat()
            self.kinds[key] = "timestamp"
        elif isinstance(value, (np.ndarray, pd.Index)) and (value.dtype == object or value.dtype.kind in "US"):
            self._put_strings(key, np.asarray(value, dtype=object))
            self.kinds[key] = "index" if isinstance(value, pd.Index) else "strings"
        elif isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf":
                raise TypeError(f"'{key}': arrays of dtype {value.dtype} are not stored")
            self.arrays[key] = value
            self.kinds[key] = "array"
        else:
            self.meta[key] = _plain(value)
            json.dumps(self.meta[key], allow_nan=True)  # fail here, not when the file is written
            self.kinds[key] = "json"

    def _put_strings(self, key: str, values: np.ndarray) -> None:
        missing = np.array([v is None for v in values], dtype=bool)
        encoded = [b"" if v is None else str(v).encode("utf-8") for v in values]
        self.arrays[f"{key}.utf8"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        self.arrays[f"{key}.offsets"] = np.cumsum([0, *map(len, encoded)], dtype=np.int64)
        self.arrays[f"{key}.missing"] = missing

    def put_attrs(self, obj: Any, names: Iterable[str]) -> None:
        for name in names:
            self.put(name, getattr(obj, name))

    # ---- reading ----------------------------------------------------------------------------

    def get(self, name: str, default: Any = KeyError) -> Any:
        key = self.prefix + name
        kind = self.kinds.get(key)
        if kind is None:
            if default is KeyError:
                raise KeyError(key)
            return default
        if isinstance(kind, list) and kind[0] == "ref":
            return State(self.arrays, self.meta, self.frames, self.kinds).get(kind[1])
        if kind == "csr":
            shape = tuple(int(x) for x in self.arrays[f"{key}.shape"])
            return sp.csr_matrix((self.arrays[f"{key}.data"], self.arrays[f"{key}.indices"],
                                  self.arrays[f"{key}.indptr"]), shape=shape)
        if kind == "frame":
            return self.frames[key]
        if kind == "timestamp":
            return pd.Timestamp(self.meta[key])
        if kind in ("strings", "index"):
            values = self._get_strings(key)
            return pd.Index(values, dtype=object) if kind == "index" else values
        if kind == "array":
            return self.arrays[key]
        if kind == "json":
            return self.meta[key]
        raise CrossRecError(f"unknown kind {kind!r} of '{key}' in the model file")

    def _get_strings(self, key: str) -> np.ndarray:
        raw = self.arrays[f"{key}.utf8"].tobytes()
        offsets = self.arrays[f"{key}.offsets"]
        missing = self.arrays[f"{key}.missing"]
        out = np.empty(len(missing), dtype=object)
        for n in range(len(missing)):
            out[n] = None if missing[n] else raw[offsets[n]:offsets[n + 1]].decode("utf-8")
        return out

    def get_attrs(self, obj: Any, names: Iterable[str]) -> None:
        for name in names:
            setattr(obj, name, self.get(name))

    # ---- files ------------------------------------------------------------------------------

    def save(self, folder: str | Path, header: dict[str, Any]) -> Path:
        """Write model.npz, model.json (the header + meta + kinds) and one Parquet file per frame."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / MODEL_NPZ, "wb") as f:
            np.savez(f, **self.arrays)
        for key, frame in self.frames.items():
            frame.to_parquet(folder / f"{key}.parquet", index=False)
        doc = {**header, "kinds": self.kinds, "meta": self.meta}
        (folder / MODEL_JSON).write_text(json.dumps(doc, allow_nan=True), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> tuple[dict[str, Any], "State"]:
        """(header, state) of a saved model; any unreadable part is a CrossRecError naming the folder."""
        folder = Path(folder)
        try:
            doc = json.loads((folder / MODEL_JSON).read_text(encoding="utf-8"))
            kinds, meta = doc.pop("kinds"), doc.pop("meta")
            with np.load(folder / MODEL_NPZ, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            frames = {key: pd.read_parquet(folder / f"{key}.parquet")
                      for key, kind in kinds.items() if kind == "frame"}
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            # ValueError includes numpy's refusal of object arrays and JSON decoding errors
            raise CrossRecError(f"the fitted model in {folder} cannot be read ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}); retrain with `crossrec train`"
                                ) from None
        return doc, cls(arrays, meta, frames, kinds)


def _plain(value: Any) -> Any:
    """NumPy scalars and tuples as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
