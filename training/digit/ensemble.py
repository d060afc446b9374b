"""An ensemble of MLPs exported as one graph, and training its members side by side.

``MeanLogits`` averages its members' logits: one ONNX or TorchScript file, one call
per batch, and the service sees an ordinary ``[n, 784] -> [n, 10]`` logits model.
A temperature folds into every member's last layer, since the mean of ``z_i / T`` is
``mean(z_i) / T``.

On the CPU, ``train_members`` trains the members in parallel processes (each with its
own torch threads), so two members on two cores cost about the wall-clock time of
one; on a GPU it trains them one after the other in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn


class MeanLogits(nn.Module):
    """The mean of its members' logits."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []
        for member in self.members:
            outputs.append(member(inputs))
        return torch.stack(outputs).mean(0)


def members_of(model: nn.Module) -> list[nn.Module]:
    """The models whose last layers produce ``model``'s logits: its members, or itself."""
    if isinstance(model, MeanLogits):
        return list(model.members)
    return [model]


@dataclass(frozen=True)
class MemberJob:
    """What one member process needs: everything picklable, nothing shared."""

    index: int
    seed: int
    data_dir: Path
    val_size: int
    split_seed: int
    train_limit: int | None
    threads: int
    device: str
    runs_dir: Path
    fit_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class MemberResult:
    """A trained member's selected state and its training history."""

    index: int
    arch: str
    state: dict[str, torch.Tensor]
    history: dict[str, list[float]]
    best_epoch: int
    epochs_run: int
    train_seconds: float


def member_seeds(seed: int, count: int) -> list[int]:
    """Member ``i``'s seed: ``seed`` for the first, so one member is the single model."""
    return [seed + 1000 * index for index in range(count)]


def train_member(job: MemberJob) -> MemberResult:
    """Train one member as ``job`` says (in whichever process runs it)."""
    from training.digit.data.mnist import load_mnist
    from training.digit.model import build_model
    from training.digit.train import fit
    from training.runlog import open_writer

    if job.threads:
        torch.set_num_threads(job.threads)
    device = torch.device(job.device)
    splits = load_mnist(
        job.data_dir,
        val_size=job.val_size,
        seed=job.split_seed,
        train_limit=job.train_limit,
        download=False,  # the parent process has downloaded it, if it had to
    ).to(device)
    options = dict(job.fit_options)
    arch = options.pop("arch")
    torch.manual_seed(job.seed)
    model = build_model(arch).to(device)
    tag = f"member {job.index + 1}: " if options.pop("tagged", False) else ""
    with open_writer(job.runs_dir, f"digit-{arch}-seed{job.seed}") as writer:
        result = fit(model, splits, seed=job.seed, log_prefix=tag, writer=writer, **options)
    state = {key: value.detach().cpu().clone() for key, value in result.model.state_dict().items()}
    return MemberResult(
        index=job.index,
        arch=arch,
        state=state,
        history=result.history,
        best_epoch=result.best_epoch,
        epochs_run=result.epochs_run,
        train_seconds=result.train_seconds,
    )


def parallel_jobs(device: torch.device, members: int, threads: int) -> int:
    """How many members train at once: one at a time on a GPU; on the CPU up to two
    per ``threads`` usable cores (three members on two cores run together, sharing
    them, rather than two and then one with a core idle), at least one."""
    if device.type != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(members, 2 * (cores or 1) // max(threads, 1)))


def train_members(
    jobs: list[MemberJob], parallel: int, run: Callable[[MemberJob], MemberResult] = train_member
) -> list[MemberResult]:
    """Run ``jobs``, ``parallel`` at a time in fresh (spawned) processes, or in this
    process when ``parallel`` is 1; results in job order."""
    if parallel <= 1:
        return [run(job) for job in jobs]
    context = multiprocessing.get_context("spawn")  # no forked torch thread pools
    with ProcessPoolExecutor(max_workers=parallel, mp_context=context) as pool:
        return list(pool.map(run, jobs))


def merged_history(results: list[MemberResult]) -> dict[str, list[float]]:
    """One member's history as it is; several members' side by side, each key
    prefixed ``member <i> `` (the curves of the published plots)."""
    if len(results) == 1:
        return results[0].history
    return {
        f"member {result.index + 1} {key}": values
        for result in results
        for key, values in result.history.items()
    }


def assemble(results: list[MemberResult]) -> nn.Module:
    """The published model: the single member itself, or their ``MeanLogits``."""
    from training.digit.model import build_model

    models = []
    for result in results:
        model = build_model(result.arch)
        model.load_state_dict(result.state)
        models.append(model.eval())
    return models[0] if len(models) == 1 else MeanLogits(models)
