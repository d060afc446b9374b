"""Entry point: ``python -m training`` and the ``digitpass-train`` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from training import digit_train, pass_train
from training.cli import build_parser
from training.errors import TrainingError


def main(args: argparse.Namespace) -> list[Path]:
    """Train and publish what ``args.command`` names; return the published version folders.

    Raises ``TrainingError`` (with its exit code) when a run cannot go on.
    """
    published: list[Path] = []
    if args.command in ("pass", "all"):
        pass_args = args
        if args.command == "all":
            # --epochs/--lr/--batch-size under `all` are digit's; pass keeps its defaults.
            pass_args = argparse.Namespace(**{**vars(args), "epochs": None, "lr": None})
        published.append(pass_train.main(pass_args))
    if args.command in ("digit", "all"):
        published.append(digit_train.main(args))
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
