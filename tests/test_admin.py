"""Admin routes are secure by default; the token is handled strictly (issue 10)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.app import create_app
from service.settings import Settings
from tests.server import REPO_ROOT


def error_of(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["detail"]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org"])
def test_without_a_token_reload_is_off_unless_loopback(make_settings, host):
    client = TestClient(create_app(make_settings(host=host)))  # refused before any model
    detail = error_of(client.post("/admin/reload"), 403)
    assert "DIGITPASS_ADMIN_TOKEN" in detail and "Bearer" in detail


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_without_a_token_reload_is_open_on_loopback(make_settings, host):
    with TestClient(create_app(make_settings(host=host))) as client:
        assert client.post("/admin/reload").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        b"Bearer nope",
        b"Basic czNjcmV0",
        b"Bearer",
        b"Bearer \xff\xfe\x80",
        "Bearer s3crét".encode(),
        b"s3cret",
        b"Bearer s3cret\x00",
    ],
)
def test_a_wrong_or_malformed_authorization_gets_401_with_a_challenge(make_settings, authorization):
    client = TestClient(create_app(make_settings(host="0.0.0.0", admin_token="s3cret")))
    headers = {} if authorization is None else {"authorization": authorization}
    reply = client.post("/admin/reload", headers=headers)
    assert "token" in error_of(reply, 401)
    assert reply.headers["www-authenticate"].startswith("Bearer")


def test_the_right_token_reloads_on_any_host(make_settings):
    with TestClient(create_app(make_settings(host="0.0.0.0", admin_token="s3cret"))) as client:
        for scheme in ("Bearer", "bearer"):
            reply = client.post("/admin/reload", headers={"authorization": f"{scheme} s3cret"})
            assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("token", ["", "   ", "tökén", "a\tb"])
def test_an_empty_or_unprintable_token_is_a_configuration_error(make_settings, token):
    with pytest.raises(ValidationError, match="admin_token"):
        make_settings(admin_token=token)


def test_the_server_refuses_to_start_with_an_empty_token():
    result = subprocess.run(
        [sys.executable, "-m", "service", "--port", "0"],
        cwd=REPO_ROOT,
        env={"DIGITPASS_ADMIN_TOKEN": "", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "DIGITPASS_ADMIN_TOKEN" in result.stderr and "empty" in result.stderr


def test_loopback_is_decided_by_the_listening_address():
    assert Settings(host="127.0.0.1").listens_on_loopback_only()
    assert not Settings(host="0.0.0.0").listens_on_loopback_only()
    assert not Settings(host="").listens_on_loopback_only()
