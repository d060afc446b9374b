"""Each model kind on its own: routes, decoding, preparation and replies, without HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from service.errors import InvalidImage, InvalidInput
from service.models.kinds import KINDS, KindOptions, Prediction
from service.models.kinds.image import ImageClassifier
from service.models.metadata import TASKS, task_of
from service.models.repository import list_versions, read_version

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass
class FakeInput:
    """A RequestInput: what a route's ``decode`` may ask of a request."""

    query: dict[str, str] = field(default_factory=dict)
    json: object = None
    files: dict[str, list[bytes]] = field(default_factory=dict)

    def query_value(self, name: str) -> str | None:
        return self.query.get(name)

    def json_body(self) -> object:
        return self.json

    def upload(self, field_name: str) -> bytes:
        return self.files[field_name][0]

    def uploads(self, field_name: str, limit: int) -> list[bytes]:
        return self.files[field_name][:limit]


def kind_of(name: str):
    version = read_version(MODELS_DIR, name, list_versions(MODELS_DIR / name)[-1], "onnx")
    return KINDS[task_of(version.spec)](version, KindOptions(max_image_pixels=1_000_000))


def test_every_task_has_exactly_one_kind():
    assert set(KINDS) == set(TASKS)


def test_routes_are_named_after_the_model():
    assert [(r.method, r.path) for r in kind_of("pass").routes()] == [
        ("GET", "/predict/pass"),
        ("POST", "/predict/pass"),
    ]
    assert [(r.method, r.path) for r in kind_of("digit").routes()] == [
        ("POST", "/predict/digit"),
        ("POST", "/predict/digits"),
    ]
    assert [r.path for r in kind_of("points").routes()] == ["/predict/points"] * 2


def test_scalar_query_is_validated_as_fastapi_would():
    get, _ = kind_of("pass").routes()
    assert get.decode(FakeInput(query={"hours": "4.5"})).rows == [4.5]
    for raw, message in [
        (None, "query.hours: Field required"),
        ("-1", "query.hours: Input should be greater than or equal to 0"),
        ("nan", "query.hours: Input should be a finite number"),
        ("x", "query.hours: Input should be a valid number, unable to parse string as a number"),
    ]:
        query = {} if raw is None else {"hours": raw}
        with pytest.raises(InvalidInput) as refused:
            get.decode(FakeInput(query=query))
        assert refused.value.detail == message


def test_scalar_batch_keeps_order_and_names_the_bad_row():
    _, post = kind_of("points").routes()
    assert post.decode(FakeInput(json={"hours": [3, 1, 2]})).rows == [3.0, 1.0, 2.0]
    with pytest.raises(InvalidInput, match=r"body\.hours\.1: Input should be a valid number"):
        post.decode(FakeInput(json={"hours": [1, "x"]}))
    with pytest.raises(InvalidInput, match="valid dictionary"):
        post.decode(FakeInput(json=[1, 2]))


def test_scalar_rows_are_stacked_once_per_batch_into_one_column_of_float32():
    kind = kind_of("pass")
    items = [kind.prepare([1.0, 2.5]), kind.prepare([7.0])]
    stacked = kind.stack(items)
    assert stacked.dtype == np.float32 and stacked.tolist() == [[1.0], [2.5], [7.0]]


def test_replies_of_each_kind():
    passing, points = kind_of("pass"), kind_of("points")
    get, post = passing.routes()
    answers = np.array([[0.25], [0.75]], dtype=np.float32)
    prediction = Prediction(answers, "pass", 3, ("fail", "pass"), passing)
    decoded = post.decode(FakeInput(json={"hours": [1, 5]}))
    assert passing.reply(post, decoded, prediction) == {
        "predictions": [
            {"hours": 1.0, "probability": 0.25, "passed": False},
            {"hours": 5.0, "probability": 0.75, "passed": True},
        ],
        "model": {"name": "pass", "version": 3},
    }
    one = get.decode(FakeInput(query={"hours": "4"}))
    values = Prediction(np.array([[8.0]], dtype=np.float32), "points", 1, (), points)
    assert points.reply(points.routes()[0], one, values) == {
        "hours": 4.0,
        "points": 8.0,
        "model": {"name": "points", "version": 1},
    }


def test_image_kind_prepares_with_its_own_metadata_and_names_the_bad_image(mnist_pngs):
    digit = kind_of("digit")
    assert isinstance(digit, ImageClassifier) and digit.heavy_inputs
    images = [mnist_pngs[0][0], mnist_pngs[1][0]]
    prepared = digit.prepare(images)
    assert prepared.shape == (2, 784) and prepared.dtype == np.float32
    assert digit.stack([prepared, prepared[:1]]).shape == (3, 784)
    with pytest.raises(InvalidImage, match=r"^input 1: "):
        digit.prepare([images[0], b"not an image"])
    answers = np.eye(10, dtype=np.float32)[[7]]
    reply = digit.reply(
        digit.routes()[0],
        digit.routes()[0].decode(FakeInput(files={"image": images})),
        Prediction(answers, "digit", 1, digit.version.spec.labels, digit, prepared[:1]),
    )
    assert reply["digit"] == 7 and reply["confidence"] == 1.0 and len(reply["probabilities"]) == 10
    assert reply["uncertain"] is False
    unsure = np.full((1, 10), 0.05, np.float32)
    unsure[0, 3] = 0.55  # a reading under the threshold is still given, flagged
    reply = digit.reply(
        digit.routes()[0],
        digit.routes()[0].decode(FakeInput(files={"image": images})),
        Prediction(unsure, "digit", 1, digit.version.spec.labels, digit, prepared[:1]),
    )
    assert reply["digit"] == 3 and reply["uncertain"] is True
    # a confident reading of a solid shape (a filled disc, not strokes) is flagged too
    rows, cols = np.mgrid[:28, :28]
    disc = ((rows - 13.5) ** 2 + (cols - 13.5) ** 2 <= 9.0**2).astype(np.float32)
    spec = digit.version.spec.input.preprocessing
    disc_row = ((disc - spec["mean"]) / spec["std"]).reshape(1, 784).astype(np.float32)
    reply = digit.reply(
        digit.routes()[0],
        digit.routes()[0].decode(FakeInput(files={"image": images})),
        Prediction(
            np.eye(10, dtype=np.float32)[[0]],
            "digit",
            1,
            digit.version.spec.labels,
            digit,
            disc_row,
        ),
    )
    assert reply["digit"] == 0 and reply["confidence"] == 1.0 and reply["uncertain"] is True
