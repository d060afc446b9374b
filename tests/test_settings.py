"""The settings object: defaults, environment, validation."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_defaults(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("DIGITPASS_"):
            monkeypatch.delenv(name)
    settings = Settings()
    assert settings.model_repository == Path("models")
    assert settings.backend == "onnx" and settings.device == "auto"
    assert settings.max_batch_size == 64 and settings.max_batch_delay_ms == 0
    assert settings.max_queue == 1024 and settings.request_timeout_s == 10
    assert settings.max_upload_bytes == 5 * 1024 * 1024
    assert settings.max_image_pixels == 25_000_000
    assert settings.reload_interval_s == 2
    assert settings.admin_token is None


def test_environment_with_prefix(monkeypatch):
    monkeypatch.setenv("DIGITPASS_MODEL_REPOSITORY", "/srv/models")
    monkeypatch.setenv("DIGITPASS_BACKEND", "torchscript")
    monkeypatch.setenv("DIGITPASS_MAX_BATCH_DELAY_MS", "2.5")
    monkeypatch.setenv("DIGITPASS_LOG_LEVEL", "DEBUG")
    settings = Settings()
    assert settings.model_repository == Path("/srv/models")
    assert settings.backend == "torchscript"
    assert settings.max_batch_delay_s == pytest.approx(0.0025)
    assert settings.log_level == "debug"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BACKEND", "tensorflow"),
        ("DEVICE", "tpu"),
        ("MAX_BATCH_SIZE", "0"),
        ("MAX_BATCH_SIZE", "many"),
        ("MAX_BATCH_DELAY_MS", "-1"),
        ("MAX_QUEUE", "0"),
        ("REQUEST_TIMEOUT_S", "0"),
        ("MAX_UPLOAD_BYTES", "10"),
        ("RELOAD_INTERVAL_S", "-2"),
        ("LOG_LEVEL", "chatty"),
    ],
)
def test_invalid_values_are_refused_naming_the_setting(monkeypatch, name, value):
    monkeypatch.setenv(f"DIGITPASS_{name}", value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert name.lower() in str(refused.value)


def test_intra_op_threads_share_the_cores_between_workers(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(4)), raising=False)
    assert Settings(workers=1).resolved_intra_op_threads() == 3  # one core for the loop
    assert Settings(workers=2).resolved_intra_op_threads() == 1
    assert Settings(workers=8).resolved_intra_op_threads() == 1
    assert Settings(workers=2, intra_op_threads=3).resolved_intra_op_threads() == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert Settings(workers=1).resolved_intra_op_threads() == 8
    assert Settings(workers=4).resolved_intra_op_threads() == 8
    assert Settings(workers=16).resolved_intra_op_threads() == 3


def test_settings_are_not_read_at_import_time(monkeypatch):
    import importlib

    import service.app

    monkeypatch.setenv("DIGITPASS_BACKEND", "not-a-backend")
    importlib.reload(service.app)  # importing must not validate the environment
    with pytest.raises(ValidationError):
        service.app.create_app()


def test_readme_lists_every_setting_with_its_default():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line.split("|")[2].strip(" `")
        for line in readme.splitlines()
        if line.startswith("| `DIGITPASS_")
    }
    for name, field in Settings.model_fields.items():
        variable = f"DIGITPASS_{name.upper()}"
        assert variable in rows, f"README.md has no row for {variable}"
        default = field.default
        if isinstance(default, bool):
            assert rows[variable] == str(default).lower(), variable
        elif isinstance(default, int | float):
            documented = rows[variable].split()[0].strip("`")
            assert float(documented) == default, variable


def test_a_bad_admin_token_is_named_in_the_startup_error_but_never_shown(monkeypatch):
    from service.settings import describe_settings_error

    monkeypatch.setenv("DIGITPASS_ADMIN_TOKEN", "s3cr\u00e9t-do-not-log")
    monkeypatch.setenv("DIGITPASS_MAX_QUEUE", "0")
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = describe_settings_error(caught.value)
    assert "DIGITPASS_ADMIN_TOKEN: " in message and "printable ASCII" in message
    assert "do-not-log" not in message
    assert "DIGITPASS_MAX_QUEUE='0'" in message  # other values are still shown
