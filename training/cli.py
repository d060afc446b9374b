"""Command-line interface: ``python -m training pass|points|digit|all [options]``.

Only the parser lives here; ``training.__main__.main`` runs what it parses. Options
whose default depends on the model (``--epochs``, ``--lr``, ``--batch-size``) default to
``None`` and each trainer fills in its own default. Under ``all`` those three apply to
``digit`` only; ``pass`` and ``points`` keep their defaults.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from training.digit import train as digit_train
from training.digit.model import ARCHS, DEFAULT_ARCHS, parse_archs
from training.digit.precision import PRECISIONS
from training.passing import train as pass_train
from training.passing.data import DEFAULT_CSV as DEFAULT_PASS_CSV
from training.points import train as points_train
from training.points.data import DEFAULT_CSV as DEFAULT_POINTS_CSV

COMMANDS = ("pass", "points", "digit", "all")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _archs(text: str) -> tuple[str, ...]:
    try:
        return parse_archs(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("common")
    group.add_argument(
        "--repository",
        type=Path,
        default=Path("models"),
        help="model repository to publish into (default: models)",
    )
    group.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    group.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="auto picks CUDA when available (default: auto)",
    )
    group.add_argument(
        "--keep",
        type=_positive_int,
        default=None,
        metavar="N",
        help="after publishing, keep only the N newest versions (default: keep all)",
    )
    group.add_argument(
        "--runs-dir",
        type=Path,
        default=Path("runs"),
        help="TensorBoard event files go here (default: runs)",
    )
    digit = digit_train.DEFAULTS
    lbfgs, sgd = pass_train.DEFAULTS["lbfgs"], pass_train.DEFAULTS["sgd"]
    points = points_train.DEFAULTS
    group.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help=f"default: digit {digit['epochs']}; pass {lbfgs['epochs']} L-BFGS steps, "
        f"{sgd['epochs']} with --optimizer sgd; points {points['epochs']} L-BFGS steps",
    )
    group.add_argument(
        "--lr",
        type=float,
        default=None,
        help=f"learning rate; default: digit {digit['lr']} (peak of the one-cycle schedule); "
        f"pass {lbfgs['lr']} for L-BFGS, {sgd['lr']} for sgd; points {points['lr']}",
    )


def _pass_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pass")
    group.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_PASS_CSV,
        help="CSV with columns hours,passed (default: training/data/hours.csv)",
    )
    group.add_argument(
        "--optimizer",
        choices=["lbfgs", "sgd"],
        default="lbfgs",
        help="lbfgs: standardized input, L2-regularized, converges (default); "
        "sgd: the classic recipe, lr 0.01 x 1000 epochs on raw hours",
    )


def _points_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("points")
    group.add_argument(
        "--points-data",
        type=Path,
        default=DEFAULT_POINTS_CSV,
        help="CSV with columns hours,points (default: training/data/points.csv)",
    )


def _digit_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("digit")
    group.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("MNIST_DIR", "data")),
        help="holds MNIST/raw/<four IDX files> (default: $MNIST_DIR or data)",
    )
    group.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help=f"default: {digit_train.DEFAULTS['batch_size']}",
    )
    group.add_argument(
        "--arch",
        type=_archs,
        default=DEFAULT_ARCHS,
        metavar="NAME[,NAME...]",
        help="network of each member, cycling through the list (wider,wider-deskew: "
        "members 1, 3, ... wider, members 2, 4, ... wider-deskew): "
        + "; ".join(f"{name} {arch.description}" for name, arch in ARCHS.items())
        + f" (default: {','.join(DEFAULT_ARCHS)})",
    )
    group.add_argument(
        "--min-accuracy",
        type=_fraction,
        default=0.98,
        help="quality gate: test accuracy below this is not published (default: 0.98)",
    )
    group.add_argument(
        "--val-size",
        type=_positive_int,
        default=5000,
        help="training images held out for model selection (default: 5000)",
    )
    group.add_argument(
        "--train-limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="train on the first N images of the training split only (for quick tests)",
    )
    group.add_argument(
        "--no-augment",
        dest="augment",
        action="store_false",
        help="turn off augmentation",
    )
    group.add_argument(
        "--augmentation",
        choices=sorted(digit_train.AUGMENTATIONS),
        default=digit_train.DEFAULT_AUGMENTATION,
        help="affine: shifts, rotations and scales; wild: affine with shear, elastic "
        "distortion, stroke-width jitter, blur and low-resolution jitter "
        f"(default: {digit_train.DEFAULT_AUGMENTATION})",
    )
    group.add_argument(
        "--label-smoothing",
        type=_fraction,
        default=digit_train.LABEL_SMOOTHING,
        help=f"cross-entropy label smoothing (default: {digit_train.LABEL_SMOOTHING})",
    )
    group.add_argument(
        "--ema",
        type=_fraction,
        default=digit_train.EMA_DECAY,
        metavar="DECAY",
        help="decay of the exponential moving average of the weights that is evaluated and "
        f"published; 0 turns it off (default: {digit_train.EMA_DECAY})",
    )
    group.add_argument(
        "--threads",
        type=_non_negative_int,
        default=1,
        help="torch CPU threads; 0 leaves torch's default of one per core (default: 1: "
        "batches this small barely scale, extra threads thrash when the CPU is shared, "
        "and one thread gives the same bits on any machine)",
    )
    group.add_argument(
        "--members",
        type=_positive_int,
        default=digit_train.DEFAULTS["members"],
        help="MLPs trained (side by side, one per core on the CPU) and published as one "
        "graph that averages their logits; 1 publishes a single MLP "
        f"(default: {digit_train.DEFAULTS['members']})",
    )
    group.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="training matrix products: bf16 autocast or fp32; auto takes bf16 where the "
        "CPU (AVX512-BF16, AMX) or GPU has it natively (default: auto)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``digitpass-train`` parser with its ``pass``, ``points``, ``digit`` and ``all``
    subcommands."""
    parser = argparse.ArgumentParser(
        prog="digitpass-train",
        description="Train the digitpass models and publish them to the model repository.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}"
    )
    pass_parser = commands.add_parser("pass", help="logistic regression: hours studied -> P(pass)")
    points_parser = commands.add_parser(
        "points", help="linear regression: hours studied -> points (MSE)"
    )
    digit_parser = commands.add_parser("digit", help="MLP on MNIST: 28x28 image -> digit")
    all_parser = commands.add_parser(
        "all", help="pass, points and digit; --epochs, --lr and --batch-size apply to digit only"
    )
    for sub, options in (
        (pass_parser, [_pass_options]),
        (points_parser, [_points_options]),
        (digit_parser, [_digit_options]),
        (all_parser, [_pass_options, _points_options, _digit_options]),
    ):
        _common(sub)
        for add in options:
            add(sub)
    return parser
