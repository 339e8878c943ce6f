"""Tuned encoders stored beside the database, and which one the shop uses.

Layout (never relative to the working directory):
    <db>.artefacts/encoders/<name>/card.json        base model, data fingerprint, pairs, settings,
                                                    loss curve, validation figures
    <db>.artefacts/encoders/<name>/head.json|.safetensors   (head mode) or a sentence-transformers
                                                    folder with safetensors weights (lora, full)
    <db>.artefacts/encoders/active.json             {"name": ...}: the chosen encoder (absent: the base)

A fine-tune writes its folder under a temporary name, renames it into place, stores the item vectors,
and only then rewrites active.json (atomically), so a killed fine-tune leaves the serving encoder as it
was. `with_chosen_encoder(settings)` names the chosen encoder's folder as `encoder.tuned_encoder`; the CLI
and the dashboard build their settings through it, so `train` and serving fit the `content_tuned` signal
on its item vectors beside the base text signal (which keeps the base model: `encode`, queries, profiles).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

from ..config import Settings
from ..errors import CrossRecError

BASE_NAME = "base"
CARD = "card.json"
ACTIVE = "active.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def encoders_root(settings: Settings) -> Path:
    return settings.artefact_dir / "encoders"


def check_name(name: str) -> str:
    if name == BASE_NAME or not _NAME.match(name or "") or name.endswith(".partial"):
        raise CrossRecError(f"encoder name '{name}' is not allowed: letters, digits, '_', '-', '.', at most 64, "
                            f"not '{BASE_NAME}'")
    return name


def default_name() -> str:
    return "ft-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def read_card(folder: Path) -> dict:
    return read_json(folder / CARD)


def encoder_folder(settings: Settings, name: str) -> Path:
    folder = encoders_root(settings) / name
    if name == BASE_NAME or not (folder / CARD).is_file():
        raise CrossRecError(f"no tuned encoder named '{name}' beside {settings.db_path} "
                            f"(see `crossrec encoders list`)")
    return folder


def chosen_name(settings: Settings) -> str:
    """The name of the encoder the shop uses ('base' when none was adopted or its folder is gone)."""
    try:
        name = json.loads((encoders_root(settings) / ACTIVE).read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        return BASE_NAME
    if not name or not (encoders_root(settings) / str(name) / CARD).is_file():
        return BASE_NAME
    return str(name)


def use_encoder(settings: Settings, name: str) -> Path | None:
    """Make `name` (or 'base') the shop's encoder; returns its folder (None for the base)."""
    root = encoders_root(settings)
    if name == BASE_NAME:
        if (root / ACTIVE).exists():
            write_json_atomic(root / ACTIVE, {"name": BASE_NAME, "since": datetime.now(timezone.utc).isoformat()})
        return None
    folder = encoder_folder(settings, name)
    write_json_atomic(root / ACTIVE, {"name": name, "since": datetime.now(timezone.utc).isoformat()})
    return folder


def with_chosen_encoder(settings: Settings) -> Settings:
    """`settings` with `encoder.tuned_encoder` = the chosen tuned encoder's folder (None when the base is
    chosen); `encoder.model` stays the base model, whose text signal serves beside it."""
    name = chosen_name(settings)
    folder = None if name == BASE_NAME else str(encoders_root(settings) / name)
    return settings.replace({"encoder.tuned_encoder": folder})


def list_encoders(settings: Settings) -> list[dict]:
    """The base plus every stored tuned encoder, newest first, with its card's headline figures."""
    from ..encoder import DEFAULT_MODEL

    root = encoders_root(settings)
    chosen = chosen_name(settings)
    rows = [{"name": BASE_NAME, "mode": "-", "base": DEFAULT_MODEL, "created": "", "chosen": chosen == BASE_NAME,
             "adopted": None, "val_content_recall": None, "val_pair_recall": None}]
    tuned = []
    if root.is_dir():
        for folder in root.iterdir():
            if folder.is_dir() and (folder / CARD).is_file():
                card = read_card(folder)
                val = card.get("validation", {}).get("tuned", {})
                tuned.append({"name": folder.name, "mode": card.get("mode", "?"), "base": card.get("base", "?"),
                              "created": card.get("created", ""), "chosen": chosen == folder.name,
                              "adopted": card.get("adopted"), "val_content_recall": val.get("all"),
                              "val_pair_recall": val.get("pair_recall")})
    tuned.sort(key=lambda r: r["created"], reverse=True)
    return rows + tuned


def install_folder(tmp: Path, final: Path, force: bool = False) -> None:
    """Rename a finished temporary folder into place (replacing an older one only with force)."""
    if final.exists():
        if not force:
            raise CrossRecError(f"an encoder named '{final.name}' exists already: pass --force or another --name")
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:6]}")
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)
