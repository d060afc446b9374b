"""``digit``: train an MLP on MNIST, keep the best validation state, gate and publish."""

from __future__ import annotations

import argparse
import copy
import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from training.digit.augment import AffineJitter, WildAugment
from training.digit.calibrate import (
    expected_calibration_error,
    fit_temperature,
    fold_temperature,
    reliability_bins,
)
from training.digit.data.mnist import MnistSplits, load_mnist, normalize
from training.digit.ensemble import (
    MemberJob,
    assemble,
    member_seeds,
    merged_history,
    parallel_jobs,
    train_members,
)
from training.digit.model import build_model, describe_archs, member_archs
from training.digit.precision import autocast, precision_name, resolve_precision
from training.errors import UsageError
from training.gates import require_at_least
from training.runlog import progress

DEFAULTS = {"epochs": 130, "lr": 3e-3, "batch_size": 256, "members": 3}
WEIGHT_DECAY = 1e-4
LABEL_SMOOTHING = 0.0
EMA_DECAY = 0.999
EVAL_BATCH = 2048
# --augmentation NAME -> the batched augmentation it applies
AUGMENTATIONS: dict[str, Callable[[], AffineJitter | WildAugment]] = {
    "affine": AffineJitter,
    "wild": WildAugment,
    # the digits the service's preprocessing makes are centred by mass and 20 px tall:
    # shift and scale them only a little
    "centred": functools.partial(WildAugment, max_shift=1.0, min_scale=0.92, max_scale=1.08),
    # the same kinds of deformation, gentler and on fewer images
    "mild": functools.partial(
        WildAugment,
        max_rotation=10.0,
        min_scale=0.9,
        max_scale=1.1,
        max_shear=0.1,
        elastic_px=0.6,
        stroke_p=0.2,
        blur_p=0.1,
        lowres_p=0.1,
    ),
    # mild, and centred: shift 1 px, scale 0.92-1.08
    "mild-centred": functools.partial(
        WildAugment,
        max_shift=1.0,
        max_rotation=10.0,
        min_scale=0.92,
        max_scale=1.08,
        max_shear=0.1,
        elastic_px=0.6,
        stroke_p=0.2,
        blur_p=0.1,
        lowres_p=0.1,
    ),
}
DEFAULT_AUGMENTATION = "wild"
Augmentation = AffineJitter | WildAugment

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
    member_best_epochs: list[int] = field(default_factory=list)
    member_test_accuracy: list[float] = field(default_factory=list)


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
    jitter: Augmentation | None,
    desc: str = "",
    label_smoothing: float = LABEL_SMOOTHING,
    ema: Ema | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> float:
    """One pass over the shuffled training split; returns the mean training loss.

    ``ema``, when given, is updated after every optimizer step. ``autocast_dtype``
    (``torch.bfloat16``) runs the forward pass's matrix products in that type under
    ``torch.autocast``; the weights, the optimizer and the loss stay float32.
    """
    model.train()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
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
        with autocast(device, autocast_dtype):
            logits = model(inputs)
        loss = loss_fn(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(model)
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / max(seen, 1)


class Ema:
    """An exponential moving average of a model's weights and BatchNorm statistics.

    The decay ramps up as ``min(decay, (1 + step) / (10 + step))`` so that the first
    steps are not dominated by the random initialization.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.decay = decay
        self.steps = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        mine, theirs = [], []
        for (_, average), (_, live) in zip(
            self.model.state_dict().items(), model.state_dict().items(), strict=True
        ):
            if average.dtype.is_floating_point:
                mine.append(average)
                theirs.append(live)
            else:
                average.copy_(live)  # BatchNorm's num_batches_tracked
        torch._foreach_lerp_(mine, theirs, 1.0 - decay)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[float, float, torch.Tensor]:
    """Mean cross-entropy (no smoothing), accuracy and predictions on normalized inputs.

    ``autocast_dtype`` as in ``train_one_epoch``: the per-epoch curves and model
    selection of a bf16 run; the published figures are always float32.
    """
    model.eval()
    device = next(model.parameters()).device
    loss_sum, predictions = 0.0, []
    for start in range(0, len(targets), EVAL_BATCH):
        with autocast(device, autocast_dtype):
            logits = model(inputs[start : start + EVAL_BATCH].to(device)).float()
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
    augmentation: str = DEFAULT_AUGMENTATION,
    label_smoothing: float = LABEL_SMOOTHING,
    ema_decay: float = 0.0,
    writer: SummaryWriter | None = None,
    autocast_dtype: torch.dtype | None = None,
    log_prefix: str = "",
) -> FitResult:
    """AdamW with a one-cycle schedule; returns the state with the lowest validation loss.

    With ``ema_decay`` > 0 the weights evaluated, selected and returned are the moving
    average's (``Ema``); ``model`` is then left at its last training state and
    ``FitResult.model`` is the averaged copy.
    """
    generator = torch.Generator().manual_seed(seed)
    # fused: one kernel for all parameters, about 5x faster than the default on the CPU
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY, fused=True)
    steps = epochs * max(1, -(-len(splits.train_y) // batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    jitter = AUGMENTATIONS[augmentation]() if augment else None
    ema = Ema(model, ema_decay) if ema_decay > 0 else None
    evaluated = ema.model if ema is not None else model
    result = FitResult(model=evaluated)
    history = result.history
    best_loss, best_state = float("inf"), None
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
            desc=f"{log_prefix}epoch {epoch}/{epochs}",
            label_smoothing=label_smoothing,
            ema=ema,
            autocast_dtype=autocast_dtype,
        )
        val_loss, val_acc, _ = evaluate(
            evaluated, splits.val_x, splits.val_y, autocast_dtype=autocast_dtype
        )
        test_loss, test_acc, _ = evaluate(
            evaluated, splits.test_x, splits.test_y, autocast_dtype=autocast_dtype
        )
        seconds = time.perf_counter() - epoch_start
        for key, value in (
            ("train_loss", train_loss),
            ("val_loss", val_loss),
            ("test_loss", test_loss),
            ("val_accuracy", val_acc),
            ("test_accuracy", test_acc),
            ("epoch_seconds", seconds),
        ):
            history.setdefault(key, []).append(value)
            if writer is not None:
                writer.add_scalar(key, value, epoch)
        print(
            f"digit: {log_prefix}epoch {epoch:2d}/{epochs}  train loss {train_loss:.4f}  "
            f"val acc {val_acc:.4f}  test acc {test_acc:.4f}  {seconds:.1f} s",
            flush=True,
        )
        if val_loss < best_loss:  # the loss: 5000 images' accuracy moves in steps of 0.02%
            best_loss, result.best_epoch = val_loss, epoch
            best_state = copy.deepcopy(evaluated.state_dict())
        result.epochs_run = epoch
    result.train_seconds = time.perf_counter() - started
    if best_state is not None:
        evaluated.load_state_dict(best_state)
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


@torch.no_grad()
def logits_of(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The model's logits for normalized ``inputs`` [n, 784], in eval mode, on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    chunks = [
        model(inputs[start : start + EVAL_BATCH].to(device)).cpu()
        for start in range(0, len(inputs), EVAL_BATCH)
    ]
    return torch.cat(chunks)


def calibrate(model: nn.Module, splits: MnistSplits) -> tuple[nn.Module, dict[str, Any]]:
    """Fit a temperature on the validation split, fold it into the last layer, and measure
    calibration on the test set before and after; returns the folded model and metrics."""
    val_logits = logits_of(model, splits.val_x)
    temperature = fit_temperature(val_logits, splits.val_y.cpu())
    folded = fold_temperature(model, temperature)
    test_y = splits.test_y.cpu()
    report: dict[str, Any] = {"temperature": temperature}
    for suffix, logits in (
        ("_uncalibrated", logits_of(model, splits.test_x)),
        ("", logits_of(folded, splits.test_x)),
    ):
        probabilities = logits.softmax(1)
        confidence, predicted = probabilities.max(1)
        correct = predicted == test_y
        report[f"ece_test{suffix}"] = expected_calibration_error(probabilities, test_y)
        report[f"nll_test{suffix}"] = float(nn.functional.cross_entropy(logits, test_y))
        report[f"median_confidence_correct{suffix}"] = float(confidence[correct].median())
        report[f"reliability{suffix}"] = reliability_bins(probabilities, test_y)
    return folded, report


def _train_and_publish(args: argparse.Namespace) -> Path:
    from training.digit.release import publish_digit

    device = resolve_device(args.device)
    epochs = args.epochs or DEFAULTS["epochs"]
    lr = args.lr if args.lr is not None else DEFAULTS["lr"]
    batch_size = args.batch_size or DEFAULTS["batch_size"]
    autocast_dtype = resolve_precision(args.precision, device)
    # Downloads MNIST if it has to, once, before any member process reads it.
    splits = load_mnist(
        args.data_dir, val_size=args.val_size, seed=args.seed, train_limit=args.train_limit
    ).to(device)
    archs = member_archs(args.arch, args.members)
    parameters = [sum(p.numel() for p in build_model(arch).parameters()) for arch in archs]
    parallel = parallel_jobs(device, args.members, args.threads or torch.get_num_threads())
    print(
        f"digit: {args.members} member(s), archs {', '.join(archs)}, "
        f"{', '.join(f'{count:,}' for count in parameters)} parameters, "
        f"{splits.sizes()}, device {device}, precision {precision_name(autocast_dtype)}, "
        f"{parallel} member(s) at a time, CPU threads each: "
        f"{args.threads or torch.get_num_threads()}",
        flush=True,
    )
    fit_options = {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "augment": args.augment,
        "augmentation": args.augmentation,
        "label_smoothing": args.label_smoothing,
        "ema_decay": args.ema,
        "autocast_dtype": autocast_dtype,
        "tagged": args.members > 1,
    }
    jobs = [
        MemberJob(
            index=index,
            seed=seed,
            data_dir=args.data_dir,
            val_size=args.val_size,
            split_seed=args.seed,
            train_limit=args.train_limit,
            threads=args.threads,
            device=str(device),
            runs_dir=args.runs_dir,
            fit_options={**fit_options, "arch": archs[index]},
        )
        for index, seed in enumerate(member_seeds(args.seed, args.members))
    ]
    started = time.perf_counter()
    members = train_members(jobs, parallel)
    result = FitResult(
        model=assemble(members).to(device),
        history=merged_history(members),
        best_epoch=members[0].best_epoch,
        epochs_run=max(member.epochs_run for member in members),
        train_seconds=time.perf_counter() - started,
        member_best_epochs=[member.best_epoch for member in members],
        member_test_accuracy=[
            member.history["test_accuracy"][member.best_epoch - 1] for member in members
        ],
    )
    result.model, calibration = calibrate(result.model, splits)
    test_loss, test_acc, predicted = evaluate(result.model, splits.test_x, splits.test_y)
    print(
        f"digit: best epoch {result.best_epoch}, test accuracy {test_acc:.4f}, "
        f"{result.train_seconds:.1f} s training "
        f"({result.train_seconds / max(result.epochs_run, 1):.1f} s/epoch)",
        flush=True,
    )
    print(
        f"digit: temperature {calibration['temperature']:.3f} (fitted on validation), "
        f"test ECE {calibration['ece_test_uncalibrated']:.4f} -> {calibration['ece_test']:.4f}, "
        f"median confidence of correct test digits "
        f"{calibration['median_confidence_correct_uncalibrated']:.4f} -> "
        f"{calibration['median_confidence_correct']:.4f}",
        flush=True,
    )
    check_quality(test_acc, args.min_accuracy)
    augmentation = AUGMENTATIONS[args.augmentation]() if args.augment else None
    ensemble = ""
    if args.members > 1:
        each = "each " if len(set(archs)) == 1 else ""
        ensemble = f"mean logits of {args.members} MLPs, {each}"
    summary = (
        f"{ensemble}{describe_archs(archs)}; {args.augmentation if args.augment else 'no'} "
        f"augmentation; AdamW, one-cycle lr {lr:g}, {epochs} epochs of batch {batch_size}; "
        f"EMA {args.ema:g}; label smoothing {args.label_smoothing:g}; "
        f"{precision_name(autocast_dtype)} autocast; "
        "temperature fitted on validation and folded into the last layer"
    )
    recipe = {
        "recipe": summary,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "optimizer": "AdamW",
        "weight_decay": WEIGHT_DECAY,
        "schedule": "OneCycleLR",
        "label_smoothing": args.label_smoothing,
        "ema_decay": args.ema,
        "augmentation": (
            {"name": args.augmentation, **asdict(augmentation)} if augmentation else None
        ),
        "model_selection": "lowest validation loss"
        + (" of the EMA weights" if args.ema > 0 else ""),
        "calibration": "temperature fitted on the validation split (NLL, golden-section search), "
        "folded into the last layer",
        "members": args.members,
        "member_seeds": member_seeds(args.seed, args.members),
        "members_in_parallel": parallel,
        "precision": precision_name(autocast_dtype),
        "cpu_threads": args.threads or torch.get_num_threads(),
    }
    return publish_digit(args, recipe, device, splits, result, test_loss, predicted, calibration)
