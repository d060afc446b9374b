"""The model kinds, by task: the one place that lists them.

A version's task comes from its metadata (``service.models.metadata.task_of``). Adding a
kind means one module here and one line in ``KINDS``.
"""

from __future__ import annotations

from service.models.kinds.base import KindOptions, ModelKind, Prediction, RequestInput, Route
from service.models.kinds.binary import BinaryClassifier
from service.models.kinds.image import ImageClassifier
from service.models.kinds.regressor import ScalarRegressor

KINDS: dict[str, type[ModelKind]] = {
    kind.task: kind for kind in (BinaryClassifier, ImageClassifier, ScalarRegressor)
}

__all__ = ["KINDS", "KindOptions", "ModelKind", "Prediction", "RequestInput", "Route"]
