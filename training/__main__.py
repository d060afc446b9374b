"""Entry point: ``python -m training`` and the ``digitpass-train`` console script."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

TRAIN_EXTRA_MISSING = (
    "digitpass-train: error: training needs the train extra (torch, torchvision, onnx): "
    "pip install -e '.[train]', or run make train, which installs it"
)
if importlib.util.find_spec("torch") is None:  # a serving-only install (make serve)
    print(TRAIN_EXTRA_MISSING, file=sys.stderr)
    sys.exit(2)

from training.cli import build_parser  # noqa: E402 (after the check: they import torch)
from training.digit import train as digit_train  # noqa: E402
from training.errors import TrainingError  # noqa: E402
from training.passing import train as pass_train  # noqa: E402
from training.points import train as points_train  # noqa: E402

# What ``all`` trains, in this order.
TRAINERS: dict[str, Callable[[argparse.Namespace], Path]] = {
    "pass": pass_train.main,
    "points": points_train.main,
    "digit": digit_train.main,
}
# Under ``all`` these options are digit's; the other models keep their defaults.
DIGIT_ONLY_UNDER_ALL = ("epochs", "lr")


def main(args: argparse.Namespace) -> list[Path]:
    """Train and publish what ``args.command`` names; return the published version folders.

    Raises ``TrainingError`` (with its exit code) when a run cannot go on.
    """
    published: list[Path] = []
    for name, train in TRAINERS.items():
        if args.command not in (name, "all"):
            continue
        model_args = args
        if args.command == "all" and name != "digit":
            model_args = argparse.Namespace(**{**vars(args), **dict.fromkeys(DIGIT_ONLY_UNDER_ALL)})
        published.append(train(model_args))
    return published


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run ``main`` and map failures to an exit code and one line on stderr."""
    args = build_parser().parse_args(argv)
    try:
        main(args)
    except TrainingError as error:
        print(f"digitpass-train: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("digitpass-train: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run())
