"""The recipes' test accuracy against their training time, for docs/training.md.

``python -m training.digit.tradeoff docs/training-runs.csv docs/training-accuracy-vs-time.png``
plots every recorded run (the CSV is the table of docs/training.md, one row a run):
wall-clock training seconds on this project's 2-core CPU against MNIST test accuracy,
the chosen recipe's seeds marked, the 99.5% target and the 15-minute ``make train``
budget drawn in.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

TARGET = 99.5
BUDGET_S = 15 * 60


@dataclass(frozen=True)
class Run:
    """One row of the runs table."""

    recipe: str
    members: int
    epochs: int
    train_seconds: float
    val_accuracy: float | None
    test_accuracy: float
    chosen: bool


def read_runs(path: Path) -> list[Run]:
    """The runs of ``path``: columns recipe, members, epochs, train_seconds,
    val_accuracy (percent, may be empty), test_accuracy (percent), chosen (yes/no)."""
    with path.open(newline="") as handle:
        return [
            Run(
                recipe=row["recipe"],
                members=int(row["members"]),
                epochs=int(row["epochs"]),
                train_seconds=float(row["train_seconds"]),
                val_accuracy=float(row["val_accuracy"]) if row["val_accuracy"] else None,
                test_accuracy=float(row["test_accuracy"]),
                chosen=row["chosen"].strip() == "yes",
            )
            for row in csv.DictReader(handle)
        ]


def runs_table(runs: Sequence[Run]) -> str:
    """The runs as the Markdown table of docs/training.md (the chosen one in bold)."""
    lines = [
        "| # | recipe | MLPs | epochs | train time | val acc | test acc |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for number, run in enumerate(runs, start=1):
        val = f"{run.val_accuracy:.2f}%" if run.val_accuracy is not None else ""
        cells = [
            str(number),
            run.recipe,
            str(run.members),
            str(run.epochs),
            f"{run.train_seconds:.1f} s",
            val,
            f"{run.test_accuracy:.2f}%",
        ]
        if run.chosen:
            cells = [f"**{cell}**" if cell else cell for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_tradeoff(runs: Sequence[Run], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=100)
    markers = {1: "o", 2: "s", 3: "^"}
    for number, run in enumerate(runs, start=1):
        ax.scatter(
            run.train_seconds,
            run.test_accuracy,
            marker=markers.get(run.members, "D"),
            s=70 if run.chosen else 36,
            color="tab:red" if run.chosen else "tab:blue",
            edgecolor="black",
            zorder=3,
        )
        ax.annotate(str(number), (run.train_seconds, run.test_accuracy), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")  # fmt: skip
    ax.axhline(TARGET, color="tab:red", linestyle=":", label=f"target {TARGET}%")
    ax.axvline(BUDGET_S, color="gray", linestyle=":", label="15-min make train budget")
    ax.scatter([], [], marker="o", color="tab:blue", edgecolor="black", label="one MLP")
    ax.scatter([], [], marker="s", color="tab:blue", edgecolor="black", label="2 MLPs, mean logits")
    ax.scatter([], [], marker="^", color="tab:blue", edgecolor="black", label="3 MLPs, mean logits")
    ax.scatter([], [], marker="s", s=70, color="tab:red", edgecolor="black", label="chosen")
    ax.set(
        xlabel="training wall-clock, s (2-core CPU)",
        ylabel="MNIST test accuracy, %",
        title="digit: test accuracy against training time (numbers: rows of the table)",
    )
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.digit.tradeoff")
    parser.add_argument("runs", type=Path, help="the runs table (CSV)")
    parser.add_argument("output", type=Path, help="the PNG to write")
    parser.add_argument("--table", action="store_true", help="also print the Markdown table")
    return parser


def main(args: argparse.Namespace) -> None:
    runs = read_runs(args.runs)
    plot_tradeoff(runs, args.output)
    if args.table:
        print(runs_table(runs))


if __name__ == "__main__":
    main(build_parser().parse_args())
