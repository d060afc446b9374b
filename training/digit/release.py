"""Metadata and plots of a trained digit model, handed to the common release steps."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from training import metadata, plots
from training.digit.data.mnist import MEAN, STD, MnistSplits
from training.digit.model import NUM_CLASSES, describe_archs, member_archs
from training.export import ONNX_OPSET
from training.release import Release, release

if TYPE_CHECKING:
    from training.digit.train import FitResult

TASK = "image-classifier"
LABELS = [str(digit) for digit in range(NUM_CLASSES)]
INPUT_SPEC: dict[str, Any] = {
    "name": "image",
    "shape": [-1, 784],
    "dtype": "float32",
    "preprocessing": {
        "kind": "mnist",
        "height": 28,
        "width": 28,
        "mean": MEAN,
        "std": STD,
        "polarity": "light-on-dark",
        "fit_box": 20,
        "center": "center-of-mass",
    },
}
OUTPUT_SPEC = {"name": "logits", "shape": [-1, 10], "kind": "logits"}


def confusion_matrix(targets: torch.Tensor, predicted: torch.Tensor) -> np.ndarray:
    """``matrix[true, predicted]`` counts."""
    flat = targets.cpu() * NUM_CLASSES + predicted.cpu()
    counts = torch.bincount(flat, minlength=NUM_CLASSES * NUM_CLASSES)
    return counts.reshape(NUM_CLASSES, NUM_CLASSES).numpy()


def digit_metrics(
    splits: MnistSplits, result: FitResult, test_loss: float, predicted: torch.Tensor
) -> dict[str, Any]:
    """The published model's figures: those of the model itself (calibrated, and the
    ensemble where there is one), not of a training epoch's."""
    from training.digit.train import evaluate

    matrix = confusion_matrix(splits.test_y, predicted)
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    val_loss, val_accuracy, _ = evaluate(result.model, splits.val_x, splits.val_y)
    metrics: dict[str, Any] = {
        "test_accuracy": float(matrix.diagonal().sum() / matrix.sum()),
        "test_loss": test_loss,
        "val_accuracy": val_accuracy,
        "val_loss": val_loss,
        "per_class_accuracy": {LABELS[i]: float(acc) for i, acc in enumerate(per_class)},
        "best_epoch": result.best_epoch,
        "confusion_matrix": matrix.tolist(),
    }
    if len(result.member_best_epochs) > 1:
        metrics["member_best_epochs"] = result.member_best_epochs
        metrics["member_test_accuracy"] = result.member_test_accuracy
    return metrics


def curve_keys(history: dict[str, list[float]], *names: str) -> list[str]:
    """The history's curves for ``names``: ``val_loss``, or each member's
    ``member <i> val_loss``."""
    return [key for key in history if any(key == n or key.endswith(" " + n) for n in names)]


def publish_digit(
    args: argparse.Namespace,
    resolved: dict[str, Any],
    device: torch.device,
    splits: MnistSplits,
    result: FitResult,
    test_loss: float,
    predicted: torch.Tensor,
    calibration: dict[str, Any],
) -> Path:
    """Build the metadata and plots of a gated digit model and release it.

    ``calibration`` is ``training.digit.train.calibrate``'s report: its scalars go into
    ``metrics``, its reliability bins into ``reliability_diagram.png``.
    """
    metrics = digit_metrics(splits, result, test_loss, predicted)
    metrics.update(
        {key: value for key, value in calibration.items() if not key.startswith("reliability")}
    )
    history = result.history

    def write_plots(folder: Path) -> None:
        losses = curve_keys(history, "train_loss", "val_loss", "test_loss")
        plots.plot_curves(history, losses, "loss", folder / "loss_curve.png")
        accuracies = curve_keys(history, "val_accuracy", "test_accuracy")
        plots.plot_curves(history, accuracies, "accuracy", folder / "accuracy_curve.png")
        plots.plot_confusion_matrix(
            np.asarray(metrics["confusion_matrix"]), LABELS, folder / "confusion_matrix.png"
        )
        before = f"before (ECE {calibration['ece_test_uncalibrated']:.4f})"
        after = f"T = {calibration['temperature']:.3f} (ECE {calibration['ece_test']:.4f})"
        plots.plot_reliability(
            {before: calibration["reliability_uncalibrated"], after: calibration["reliability"]},
            folder / "reliability_diagram.png",
        )

    meta = metadata.base_metadata(
        name="digit",
        task=TASK,
        onnx_opset=ONNX_OPSET,
        training={
            "seed": args.seed,
            "config": {
                **metadata.config_of(args),
                **resolved,
                "architecture": describe_archs(member_archs(args.arch, args.members)),
            },
            "device": device.type,
            "epochs_run": result.epochs_run,
            "train_seconds": round(result.train_seconds, 1),
            "seconds_per_epoch": round(result.train_seconds / max(result.epochs_run, 1), 2),
        },
        dataset={"name": "MNIST", "path": metadata.portable_path(args.data_dir), **splits.sizes()},
        metrics=metrics,
        input_spec=INPUT_SPEC,
        output_spec=OUTPUT_SPEC,
        labels=LABELS,
    )
    item = Release(
        name="digit",
        model=result.model,
        input_name=INPUT_SPEC["name"],
        output_name=OUTPUT_SPEC["name"],
        output_kind=OUTPUT_SPEC["kind"],
        parity_inputs=splits.test_x[:256],
        metadata=meta,
        write_plots=write_plots,
    )
    return release(item, args.repository, keep=args.keep)
