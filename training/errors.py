"""Errors that end a training run, each with the process exit code it maps to.

``training.__main__.run`` turns any of them into one line on stderr and its exit code,
so library code raises and never calls ``sys.exit`` itself.
"""

from __future__ import annotations


class TrainingError(Exception):
    """Base class: a run that cannot go on. Exit code 1 unless a subclass says otherwise."""

    exit_code: int = 1


class DataError(TrainingError):
    """Input data is missing or invalid (bad CSV, MNIST files not found or corrupt)."""

    exit_code = 2


class UsageError(TrainingError):
    """Options that cannot work here, such as ``--device cuda`` without CUDA."""

    exit_code = 2


class QualityGateError(TrainingError):
    """The trained model is below the required quality; nothing was published."""

    exit_code = 3


class ParityGateError(TrainingError):
    """Eager, TorchScript and ONNX Runtime outputs disagree; nothing was published."""

    exit_code = 4


class ExportError(TrainingError):
    """An export produced a file that breaks the model repository contract."""

    exit_code = 1


class PublishError(TrainingError):
    """The model repository could not be written."""

    exit_code = 5
