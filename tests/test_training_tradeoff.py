"""docs/training.md's table of recipes is docs/training-runs.csv, and its chosen row is
the committed digit model's own record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.models.repository import list_versions
from training.digit.tradeoff import plot_tradeoff, read_runs, runs_table

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "docs" / "training-runs.csv"
DOC = ROOT / "docs" / "training.md"


def test_the_doc_shows_the_runs_table_as_recorded():
    assert runs_table(read_runs(RUNS)) in DOC.read_text()


def test_the_chosen_run_is_the_newest_committed_digit_version():
    chosen = [run for run in read_runs(RUNS) if run.chosen]
    assert len(chosen) == 1
    (run,) = chosen
    newest = list_versions(ROOT / "models" / "digit")[-1]
    meta = json.loads((ROOT / "models" / "digit" / str(newest) / "metadata.json").read_text())
    assert run.recipe.startswith(f"v{newest}:")
    assert run.test_accuracy == pytest.approx(100 * meta["metrics"]["test_accuracy"], abs=0.005)
    assert run.val_accuracy == pytest.approx(100 * meta["metrics"]["val_accuracy"], abs=0.005)
    assert run.train_seconds == meta["training"]["train_seconds"]
    assert run.epochs == meta["training"]["config"]["epochs"]
    assert run.members == meta["training"]["config"]["members"]


def test_the_plot_is_a_png(tmp_path):
    out = tmp_path / "tradeoff.png"
    plot_tradeoff(read_runs(RUNS), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
