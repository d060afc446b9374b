"""Accuracy of a published digit model on the evaluation families, through the service's
preprocessing: ``python -m training.digit.evaluate_families --model models/digit/2``.

Each family's images (``training.digit.families``) go through
``service.imaging.pipeline.preprocess_image`` exactly as an upload would, then through
``model.onnx`` with ONNX Runtime. An image the pipeline rejects (no digit found) counts
as wrong. Prints a Markdown table; ``--json`` writes the figures, ``--preview`` a PNG of
a few canvases per family as the model sees them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.digit import families
from training.digit.calibrate import ECE_BINS

BAR = 0.97
MAX_PIXELS = 25_000_000


class FamilyModel:
    """A published digit version: its preprocessing spec and an ONNX Runtime session."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime as ort

        from service.imaging.pipeline import ImageSpec

        self.metadata = json.loads((folder / "metadata.json").read_text())
        self.spec = ImageSpec.from_metadata(self.metadata["input"]["preprocessing"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def inputs(self, files: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed inputs [n, 784] and whether each image yielded a digit at all."""
        from service.errors import ServiceError
        from service.imaging.pipeline import preprocess_image

        rows, found = [], []
        for data in files:
            try:
                rows.append(preprocess_image(data, self.spec, max_pixels=MAX_PIXELS)[0])
                found.append(True)
            except ServiceError:
                rows.append(np.zeros(self.spec.height * self.spec.width, np.float32))
                found.append(False)
        return np.stack(rows), np.asarray(found)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(None, {self.metadata["input"]["name"]: inputs})
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


def evaluate_family(
    model: FamilyModel,
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    count: int = families.DEFAULT_COUNT,
    seed: int = families.DEFAULT_SEED,
) -> dict[str, Any]:
    """Accuracy, mean confidence and ECE of ``model`` on family ``name``."""
    import torch

    from training.digit.calibrate import expected_calibration_error

    files, targets = families.sample(name, images, labels, count=count, seed=seed)
    inputs, found = model.inputs(files)
    probabilities = model.probabilities(inputs)
    predicted = probabilities.argmax(1)
    correct = (predicted == targets) & found
    return {
        "family": name,
        "description": families.FAMILIES[name].description,
        "bar": families.FAMILIES[name].bar,
        "count": len(targets),
        "accuracy": float(correct.mean()),
        "no_digit_found": int((~found).sum()),
        "mean_confidence": float(probabilities.max(1).mean()),
        "ece": expected_calibration_error(
            torch.from_numpy(probabilities), torch.from_numpy(targets), bins=ECE_BINS
        ),
    }


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| family | what it is | images | accuracy | bar 97% | no digit found "
        "(preprocessing) | accuracy on the rest | mean confidence | ECE |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        verdict = ("pass" if row["accuracy"] >= BAR else "**FAIL**") if row["bar"] else "no bar"
        accepted = row["count"] - row["no_digit_found"]
        rest = row["accuracy"] * row["count"] / max(accepted, 1)
        lines.append(
            f"| {row['family']} | {row['description']} | {row['count']} | "
            f"{100 * row['accuracy']:.1f}% | {verdict} | {row['no_digit_found']} | "
            f"{100 * rest:.1f}% | {row['mean_confidence']:.3f} | {row['ece']:.3f} |"
        )
    return "\n".join(lines)


def write_preview(model: FamilyModel, images: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """A grid: one row per family, the first 12 canvases as the model receives them."""
    from training import plots

    rows = []
    for name in families.FAMILIES:
        files, _ = families.sample(name, images, labels, count=12)
        inputs, _ = model.inputs(files)
        prep = model.metadata["input"]["preprocessing"]
        rows.append((name, inputs.reshape(-1, 28, 28) * prep["std"] + prep["mean"]))
    plots.plot_canvas_grid(rows, path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.digit.evaluate_families", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model", type=Path, required=True, help="a version folder")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("MNIST_DIR", "data")),
        help="holds MNIST/raw/ (default: $MNIST_DIR or data)",
    )
    parser.add_argument("--count", type=int, default=families.DEFAULT_COUNT)
    parser.add_argument("--seed", type=int, default=families.DEFAULT_SEED)
    parser.add_argument("--only", nargs="*", default=None, help="family names (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--preview", type=Path, default=None, help="write canvases PNG here")
    return parser


def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    model = FamilyModel(args.model)
    images, labels = families.mnist_test(args.data_dir)
    rows = []
    for name in args.only or families.FAMILIES:
        started = time.perf_counter()
        row = evaluate_family(model, name, images, labels, count=args.count, seed=args.seed)
        row["seconds"] = round(time.perf_counter() - started, 1)
        print(
            f"{name}: accuracy {row['accuracy']:.4f} ({row['no_digit_found']} no digit), "
            f"{row['seconds']} s",
            file=sys.stderr,
            flush=True,
        )
        rows.append(row)
    print(markdown_table(rows))
    if args.json is not None:
        report = {"model": str(args.model), "count": args.count, "seed": args.seed, "rows": rows}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.preview is not None:
        write_preview(model, images, labels, args.preview)
    return rows


if __name__ == "__main__":
    main(build_parser().parse_args())
