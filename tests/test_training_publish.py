"""Atomic publishing: version numbering, concurrent publishers, staging cleanup, pruning."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest

from service.models.metadata import validate_metadata
from service.models.repository import read_version, sha256_file
from training import publish
from training.errors import PublishError


def minimal_metadata(name: str, **extra: object) -> dict:
    """The least metadata the shared schema accepts (``commit`` adds the artifacts)."""
    return {
        "schema_version": 1,
        "name": name,
        "task": "scalar-regressor",
        "version": None,
        "input": {"name": "x", "shape": [-1, 1]},
        "output": {"name": "y", "shape": [-1, 1], "kind": "values"},
        **extra,
    }


def publish_one(repository: Path, name: str = "digit", payload: str = "x", keep=None) -> Path:
    with publish.staging(repository, name) as stage:
        (stage / "model.onnx").write_text(payload)
        (stage / "model.pt").write_text(payload * 2)
        return publish.commit(stage, minimal_metadata(name), keep=keep)


def read_metadata(folder: Path) -> dict:
    return json.loads((folder / "metadata.json").read_text())


def test_versions_count_up_from_one_and_metadata_matches(tmp_path):
    folders = [publish_one(tmp_path, payload=str(i)) for i in range(3)]
    assert [f.name for f in folders] == ["1", "2", "3"]
    for folder in folders:
        meta = read_metadata(folder)
        assert meta["version"] == int(folder.name)
        assert set(meta["artifacts"]) == {"model.onnx", "model.pt"}
        for file_name, entry in meta["artifacts"].items():
            assert entry["sha256"] == sha256_file(folder / file_name)
            assert entry["bytes"] == (folder / file_name).stat().st_size
    assert publish.list_versions(tmp_path / "digit") == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "digit").iterdir()) == ["1", "2", "3"]


def test_next_version_follows_the_highest_and_ignores_other_names(tmp_path):
    model_dir = tmp_path / "pass"
    for name in ("7", ".tmp-abc", "latest", "0", "010", "٣", "+9", " 9"):
        (model_dir / name).mkdir(parents=True)
    (model_dir / "9").write_text("a file, not a version")
    assert publish.list_versions(model_dir) == [7]
    assert publish_one(tmp_path, "pass").name == "8"


def test_concurrent_publishes_never_share_a_number(tmp_path):
    workers = 8
    barrier = threading.Barrier(workers)
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            with publish.staging(tmp_path, "digit") as stage:
                (stage / "model.onnx").write_text(f"model {i}")
                barrier.wait()  # everyone is staged: now they race for the numbers
                results.append(publish.commit(stage, minimal_metadata("digit", worker=i)))
        except BaseException as error:  # surfaced by the assert below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(int(folder.name) for folder in results) == list(range(1, workers + 1))
    seen_workers = set()
    for folder in results:
        meta = read_metadata(folder)
        assert meta["version"] == int(folder.name)
        assert (folder / "model.onnx").read_text() == f"model {meta['worker']}"
        seen_workers.add(meta["worker"])
    assert seen_workers == set(range(workers))
    assert sorted(p.name for p in (tmp_path / "digit").iterdir()) == [
        str(v) for v in sorted(range(1, workers + 1), key=str)
    ]


def _publish_in_process(repository: str, worker: int, barrier, results) -> None:
    with publish.staging(Path(repository), "pass") as stage:
        (stage / "model.onnx").write_text(f"process {worker}")
        barrier.wait(timeout=60)
        meta = minimal_metadata("pass", worker=worker)
        results.put((worker, publish.commit(stage, meta).name))


def test_two_processes_publishing_at_once_get_different_numbers(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [
        context.Process(target=_publish_in_process, args=(str(tmp_path), i, barrier, results))
        for i in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0]
    published = dict(results.get(timeout=5) for _ in processes)
    assert sorted(published.values()) == ["1", "2"]
    for worker, name in published.items():
        folder = tmp_path / "pass" / name
        assert (folder / "model.onnx").read_text() == f"process {worker}"
        assert read_metadata(folder) | {"artifacts": None} == minimal_metadata(
            "pass", worker=worker
        ) | {"version": int(name), "artifacts": None}


def test_a_publisher_that_loses_the_race_takes_the_next_number(tmp_path, monkeypatch):
    winner = publish_one(tmp_path, payload="winner")
    stale = iter([1])  # our publisher computed "1" before the winner renamed into it
    real_next = publish._next_version
    monkeypatch.setattr(publish, "_next_version", lambda d: next(stale, None) or real_next(d))
    loser = publish_one(tmp_path, payload="loser")
    assert (winner.name, loser.name) == ("1", "2")
    assert (winner / "model.onnx").read_text() == "winner"
    assert read_metadata(loser)["version"] == 2


def test_rename_collision_retries(tmp_path, monkeypatch):
    """Even when the target appears between the check and the rename."""
    real_rename = publish.os.rename
    calls = []

    def racing_rename(src, dst):
        if not calls:  # someone else publishes this very number right now
            Path(dst).mkdir()
            (Path(dst) / "metadata.json").write_text("{}")
        calls.append(Path(dst).name)
        real_rename(src, dst)

    monkeypatch.setattr(publish.os, "rename", racing_rename)
    folder = publish_one(tmp_path)
    assert calls == ["1", "2"]
    assert folder.name == "2" and read_metadata(folder)["version"] == 2


def test_failed_build_publishes_nothing_and_cleans_up(tmp_path):
    with pytest.raises(RuntimeError), publish.staging(tmp_path, "digit") as stage:
        (stage / "model.onnx").write_text("half")
        raise RuntimeError("export crashed")
    assert list((tmp_path / "digit").iterdir()) == []


def test_metadata_is_written_last(tmp_path, monkeypatch):
    order = []
    real_write = publish.write_json_atomic

    def spy(path, data):
        order.append(sorted(p.name for p in path.parent.iterdir()))
        real_write(path, data)

    monkeypatch.setattr(publish, "write_json_atomic", spy)
    publish_one(tmp_path)
    assert order == [["model.onnx", "model.pt"]]


def test_keep_prunes_the_oldest_versions(tmp_path):
    for i in range(4):
        publish_one(tmp_path, payload=str(i))
    newest = publish_one(tmp_path, payload="new", keep=2)
    assert newest.name == "5"
    assert sorted(p.name for p in (tmp_path / "digit").iterdir()) == ["4", "5"]
    assert publish.prune(tmp_path / "digit", 5) == []
    with pytest.raises(ValueError):
        publish.prune(tmp_path / "digit", 0)


def test_published_metadata_validates_and_reads_back_through_the_service_contract(tmp_path):
    folder = publish_one(tmp_path, "points")
    meta = read_metadata(folder)
    assert validate_metadata(meta).version == 1
    version = read_version(tmp_path, "points", 1, "onnx")
    assert version.path == folder and version.spec.task == "scalar-regressor"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"output": {"name": "y", "shape": [-1, 1], "kind": "odds"}}, "output.kind"),
        ({"input": {"name": "x", "shape": [1]}}, "input.shape"),
        ({"task": "clustering"}, "task"),
        ({"schema_version": 99}, "schema_version"),
        ({"input": None}, "input"),
    ],
)
def test_invalid_metadata_is_not_published_and_the_error_names_the_field(tmp_path, change, field):
    with (
        pytest.raises(PublishError, match=rf"metadata\.json: {field}\b") as caught,
        publish.staging(tmp_path, "points") as stage,
    ):
        (stage / "model.onnx").write_text("x")
        publish.commit(stage, minimal_metadata("points") | change)
    assert caught.value.exit_code == PublishError.exit_code
    assert "\n" not in str(caught.value)
    assert list((tmp_path / "points").iterdir()) == [], "nothing published, nothing left"


def test_a_bad_model_name_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(PublishError, match="lowercase"), publish.staging(tmp_path, "Digit"):
        pass
    assert list(tmp_path.iterdir()) == []
