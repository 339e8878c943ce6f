"""Choosing the encoder from the Runs page (issue 24, CLI parity with `crossrec encoders use`): a real tuned
encoder (`crossrec finetune`) beside a copy of the small trained shop, chosen after a confirmation naming both,
the message saying how to go back, and going back."""
from __future__ import annotations

import shutil
from pathlib import Path

from crossrec_core.cli import main
from crossrec_core.config import Settings
from crossrec_core.finetune import registry
from test_app import trained_shop  # noqa: F401  (the session's small trained shop)
from test_views_item import run_app


def choose(at, name: str):
    at.selectbox(key="enc_pick").select(name).run()
    assert at.button(key="enc_use").disabled  # asks first
    at.checkbox(key=f"enc_ok_{name}").check().run()
    return at.button(key="enc_use").click().run()


def test_runs_page_chooses_a_tuned_encoder_after_confirming_and_chooses_back(trained_shop, tmp_path, monkeypatch):
    path = tmp_path / "shop.duckdb"
    shutil.copy(trained_shop, path)
    shutil.copytree(f"{trained_shop}.artefacts", f"{path}.artefacts")
    assert main(["finetune", "--db", str(path), "--epochs", "3", "--name", "t1", "--quiet"]) == 0
    settings = Settings(db_path=path)
    before = registry.chosen_name(settings)
    other = "base" if before == "t1" else "t1"
    at = run_app(path, monkeypatch, "runs")
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="enc_pick").value == before and at.button(key="enc_use").disabled
    choose(at, other)
    assert not at.exception, [e.value for e in at.exception]
    assert registry.chosen_name(settings) == other
    said = [s.value for s in at.success]
    assert any(f"Encoder {other} is chosen instead of {before}" in s and f"choose {before} here" in s
               for s in said), said
    assert at.selectbox(key="enc_pick").value == other  # the box shows the choice just made
    choose(at, before)
    assert registry.chosen_name(settings) == before
