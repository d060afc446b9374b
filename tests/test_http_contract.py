"""The HTTP contract holds: every recorded request gets the recorded status, body and headers.

The answers in ``tests/data/http_contract.json`` were recorded from the service before
the serving-architecture change (see ``tests/contract_cases.py``); the model routes now
run through one pipeline, and must answer byte for byte as they did. One deliberate
change since: digit replies carry ``uncertain`` (issue 14; the digit/1 answers here
are under the threshold measured on digit/2, so ``true``); and a JSON string where a
number of hours belongs is no longer read as one (strict validation: ``"pass POST
mixed"`` loses pydantic's ", unable to parse string as a number").
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.contract_cases import CONTRACT_FILE, PIXEL_LIMIT, UPLOAD_LIMIT, answer, cases

RECORDED = json.loads(CONTRACT_FILE.read_text())
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The models the contract was recorded with: pass/1 and digit/1."""
    root = tmp_path_factory.mktemp("contract") / "models"
    for name in ("pass", "digit"):
        shutil.copytree(MODELS_DIR / name / "1", root / name / "1")
    settings = Settings(
        model_repository=root,
        reload_interval_s=0,
        max_upload_bytes=UPLOAD_LIMIT,
        max_image_pixels=PIXEL_LIMIT,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_every_case_was_recorded():
    assert set(cases()) == set(RECORDED)


def comparable(recorded: dict) -> dict:
    """Bodies compare as JSON values: object keys may come in another order (models are
    discovered in name order now), every value, status and header must be equal."""
    return {**recorded, "body": json.loads(recorded["body"])}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_answer_is_the_recorded_one(client, name):
    method, url, kwargs = cases()[name]
    got = answer(client.request(method, url, **kwargs))
    assert comparable(got) == comparable(RECORDED[name])
