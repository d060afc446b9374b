"""``digit``: train an MLP on MNIST, keep the best validation state, gate and publish."""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from training.digit.augment import AffineJitter
from training.digit.data.mnist import MnistSplits, load_mnist, normalize
from training.digit.model import build_model
from training.errors import UsageError
from training.gates import require_at_least
from training.runlog import progress

DEFAULTS = {"epochs": 20, "lr": 3e-3, "batch_size": 256}
WEIGHT_DECAY = 1e-4
LABEL_SMOOTHING = 0.1
EVAL_BATCH = 2048

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


@dataclass
class FitResult:
    """Best-on-validation model and what happened on the way there."""

    model: nn.Module
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    epochs_run: int = 0
    train_seconds: float = 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: CUDA is not available on this machine")
    return torch.device(name)


def train_one_epoch(
    model: nn.Module,
    splits: MnistSplits,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    batch_size: int,
    generator: torch.Generator,
    jitter: AffineJitter | None,
    desc: str = "",
) -> float:
    """One pass over the shuffled training split; returns the mean training loss."""
    model.train()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    device = next(model.parameters()).device
    n = len(splits.train_y)
    order = torch.randperm(n, generator=generator).to(splits.train_x.device)
    # Drop a trailing batch of one: BatchNorm cannot train on it.
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    total, seen = 0.0, 0
    for idx in progress(batches, desc=desc, unit="batch"):  # a bar only on a terminal
        pixels = splits.train_x[idx]
        if jitter is not None:
            pixels = jitter(pixels, generator)
        inputs, targets = normalize(pixels).to(device), splits.train_y[idx].to(device)
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / max(seen, 1)


@torch.no_grad()
def evaluate(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor
) -> tuple[float, float, torch.Tensor]:
    """Mean cross-entropy (no smoothing), accuracy and predictions on normalized inputs."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum, predictions = 0.0, []
    for start in range(0, len(targets), EVAL_BATCH):
        logits = model(inputs[start : start + EVAL_BATCH].to(device))
        labels = targets[start : start + EVAL_BATCH].to(device)
        loss_sum += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
        predictions.append(logits.argmax(1).cpu())
    predicted = torch.cat(predictions)
    accuracy = float((predicted == targets.cpu()).float().mean())
    return loss_sum / len(targets), accuracy, predicted


def fit(
    model: nn.Module,
    splits: MnistSplits,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    augment: bool,
    writer: SummaryWriter | None = None,
) -> FitResult:
    """AdamW with a one-cycle schedule; returns the state with the best validation accuracy."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    steps = epochs * max(1, -(-len(splits.train_y) // batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    jitter = AffineJitter() if augment else None
    result = FitResult(model=model)
    history = result.history
    best_val, best_state = -1.0, None
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        train_loss = train_one_epoch(
            model,
            splits,
            optimizer,
            scheduler,
            batch_size=batch_size,
            generator=generator,
            jitter=jitter,
            desc=f"epoch {epoch}/{epochs}",
        )
        _, val_acc, _ = evaluate(model, splits.val_x, splits.val_y)
        test_loss, test_acc, _ = evaluate(model, splits.test_x, splits.test_y)
        seconds = time.perf_counter() - epoch_start
        for key, value in (
            ("train_loss", train_loss),
            ("test_loss", test_loss),
            ("val_accuracy", val_acc),
            ("test_accuracy", test_acc),
            ("epoch_seconds", seconds),
        ):
            history.setdefault(key, []).append(value)
            if writer is not None:
                writer.add_scalar(key, value, epoch)
        print(
            f"digit: epoch {epoch:2d}/{epochs}  train loss {train_loss:.4f}  "
            f"val acc {val_acc:.4f}  test acc {test_acc:.4f}  {seconds:.1f} s",
            flush=True,
        )
        if val_acc > best_val:
            best_val, result.best_epoch = val_acc, epoch
            best_state = copy.deepcopy(model.state_dict())
        result.epochs_run = epoch
    result.train_seconds = time.perf_counter() - started
    if best_state is not None:
        model.load_state_dict(best_state)
    return result


def check_quality(test_accuracy: float, min_accuracy: float) -> None:
    """The quality gate: raise ``QualityGateError`` below ``min_accuracy``."""
    require_at_least("digit test accuracy", test_accuracy, min_accuracy, "--min-accuracy")


def main(args: argparse.Namespace) -> Path:
    """Train the digit model as ``args`` say, gate it and publish; return the version folder."""
    previous_threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _train_and_publish(args)
    finally:
        torch.set_num_threads(previous_threads)  # leave the process as we found it


def _train_and_publish(args: argparse.Namespace) -> Path:
    from training.digit.release import publish_digit
    from training.runlog import open_writer

    device = resolve_device(args.device)
    epochs = args.epochs or DEFAULTS["epochs"]
    lr = args.lr if args.lr is not None else DEFAULTS["lr"]
    batch_size = args.batch_size or DEFAULTS["batch_size"]
    splits = load_mnist(
        args.data_dir, val_size=args.val_size, seed=args.seed, train_limit=args.train_limit
    ).to(device)
    torch.manual_seed(args.seed)
    model = build_model(args.arch).to(device)
    print(
        f"digit: arch {args.arch}, {sum(p.numel() for p in model.parameters()):,} parameters, "
        f"{splits.sizes()}, device {device}, CPU threads: {torch.get_num_threads()}",
        flush=True,
    )
    with open_writer(args.runs_dir, f"digit-{args.arch}-seed{args.seed}") as writer:
        result = fit(
            model,
            splits,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            seed=args.seed,
            augment=args.augment,
            writer=writer,
        )
    test_loss, test_acc, predicted = evaluate(model, splits.test_x, splits.test_y)
    print(
        f"digit: best epoch {result.best_epoch}, test accuracy {test_acc:.4f}, "
        f"{result.train_seconds:.1f} s training "
        f"({result.train_seconds / max(result.epochs_run, 1):.1f} s/epoch)",
        flush=True,
    )
    check_quality(test_acc, args.min_accuracy)
    recipe = {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "optimizer": "AdamW",
        "weight_decay": WEIGHT_DECAY,
        "schedule": "OneCycleLR",
        "label_smoothing": LABEL_SMOOTHING,
        "augmentation": asdict(AffineJitter()) if args.augment else None,
        "model_selection": "best validation accuracy",
        "cpu_threads": torch.get_num_threads(),
    }
    return publish_digit(args, recipe, device, splits, result, test_loss, predicted)
