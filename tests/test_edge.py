"""The HTTP edge against a real server: header cap, header and body timeouts, the connection
cap, the work cap with health bypassing it, the buffered-body cap (issue 10)."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from service.http.edge import REFUSED_PAUSE_S
from tests.server import ServerHandle, run_server

LIMITS = {
    "DIGITPASS_RELOAD_INTERVAL_S": "0",
    "DIGITPASS_HEADER_TIMEOUT_S": "1",
    "DIGITPASS_BODY_TIMEOUT_S": "3",  # past the longest refusal pause (2 s)
    "DIGITPASS_MIN_BODY_RATE": "1000",
    "DIGITPASS_MAX_CONNECTIONS": "40",
    "DIGITPASS_MAX_IN_FLIGHT": "3",
    "DIGITPASS_MAX_BUFFERED_BYTES": "300000",
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    with run_server(LIMITS) as handle:
        yield handle


def address(server: ServerHandle) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def connect(server: ServerHandle) -> socket.socket:
    sock = socket.create_connection(address(server), timeout=10)
    return sock


def read_response(sock: socket.socket) -> tuple[int | None, dict[str, str], bytes]:
    """Status, headers and body of one response; (None, {}, b"") when closed unanswered."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, {}, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_header_over_the_cap_gets_431_and_a_close(server):
    for big in (b"a" * 20_000, b"a" * 3_000_000):
        sock = connect(server)
        # Refused before all of it was sent, perhaps: what the cap is for.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + big + b"\r\n\r\n")
        status, headers, body = read_response(sock)
        assert status == 431
        assert "16384-byte limit" in json.loads(body)["detail"]
        assert headers["connection"] == "close"
        sock.close()


def test_many_small_headers_over_the_cap_and_a_long_url_get_431(server):
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(3000))
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert read_response(sock)[0] == 431
    sock = connect(server)
    sock.sendall(b"GET /healthz?" + b"q" * 17_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(sock)[0] == 431


def test_headers_just_under_the_cap_are_served(server):
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 15_000 + b"\r\n\r\n")
    assert read_response(sock)[0] == 200


def test_a_trickled_header_is_cut_at_the_cap(server):
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: ")
    status = None
    for _ in range(40):
        try:
            sock.sendall(b"a" * 1000)
        except (BrokenPipeError, ConnectionResetError):
            break
    status = read_response(sock)[0]
    assert status == 431


@pytest.mark.slow
def test_slow_headers_are_dropped_by_the_header_timeout(server):
    silent = connect(server)
    trickler = connect(server)
    trickler.sendall(b"GET /healthz HTTP/1.1\r\n")
    started = time.monotonic()
    for _ in range(5):
        try:
            trickler.sendall(b"X: y\r\n")  # a header line now and then, never the end
        except (BrokenPipeError, ConnectionResetError):
            break
        if time.monotonic() - started > 1.5:
            break
        time.sleep(0.3)  # the attacker's pace, not synchronisation
    status, _, body = read_response(trickler)
    assert status == 408 and "headers" in json.loads(body)["detail"]
    assert closed_by_server(silent)  # sent nothing: closed without an answer
    assert time.monotonic() - started < 5


@pytest.mark.slow
def test_a_slow_body_is_dropped(server):
    sock = connect(server)
    sock.sendall(
        b"POST /predict/digit HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        b"Content-Length: 100000\r\n\r\n"
    )
    started = time.monotonic()
    status = None
    while time.monotonic() - started < 6:
        try:
            sock.sendall(b"x" * 10)  # 10 bytes at a time: far under 1000 B/s
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(0.2)  # the attacker's pace
        sock.settimeout(0.01)
        try:
            if sock.recv(1, socket.MSG_PEEK):
                break
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
    sock.settimeout(5)
    status = read_response(sock)[0]
    assert status in (408, None)
    assert time.monotonic() - started < 5


def _hold_in_flight(server: ServerHandle, size: int = 50_000) -> socket.socket:
    """A request that stays in progress: its body never arrives in full."""
    sock = connect(server)
    sock.sendall(
        b"POST /predict/digit HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        b"Content-Length: %d\r\n\r\n" % size + b"x" * 1000
    )
    return sock


def _in_flight_reached(server: ServerHandle) -> bool:
    return httpx.get(server.url + "/predict/pass?hours=1").status_code == 503


@contextlib.contextmanager
def work_cap_filled(server: ServerHandle) -> Iterator[None]:
    """Three requests held in progress (the server's cap), released afterwards."""
    held = [_hold_in_flight(server) for _ in range(3)]
    try:
        deadline = time.monotonic() + 5
        while not _in_flight_reached(server):
            assert time.monotonic() < deadline, "the work cap never filled"
        yield
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while _in_flight_reached(server):
        assert time.monotonic() < deadline, "the work cap never emptied"


def test_past_the_work_cap_a_request_gets_json_503_at_once_and_health_still_answers(server):
    with work_cap_filled(server):
        started = time.monotonic()
        refused = httpx.get(server.url + "/predict/pass?hours=1")
        assert time.monotonic() - started < 1
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert "requests in progress" in refused.json()["detail"]
        # The Open Inference Protocol's routes say it in their own error object.
        refused = httpx.post(server.url + "/v2/models/pass/infer", content=b"{}")
        assert refused.status_code == 503
        assert "requests in progress" in refused.json()["error"]
        for path in ("/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"):
            assert httpx.get(server.url + path).status_code == 200, path


def test_a_client_retrying_at_once_after_a_work_cap_503_is_not_read_for_1_to_2_s(server):
    """The refused connection is paused for its Retry-After or up to twice as long, drawn
    at random (an attacker that ignores it costs under one refusal a second; connections
    refused together are not read again together); other connections, health included,
    are served."""
    with work_cap_filled(server):
        sock = connect(server)
        get = b"GET /predict/pass?hours=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(get)
        assert read_response(sock)[0] == 503
        # At once, ignoring Retry-After; the last one on this connection (so that the
        # server closes it rather than pausing it again).
        sock.sendall(get.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        sent = time.monotonic()
        assert httpx.get(server.url + "/healthz").status_code == 200  # meanwhile
        assert time.monotonic() - sent < 0.9  # health did not wait for the pause
        status, headers, _ = read_response(sock)
        assert status == 503 and headers["retry-after"] == "1"
        waited = time.monotonic() - sent
        assert 0.9 <= waited < REFUSED_PAUSE_S[1] + 1  # after the pause, not before
        sock.close()


def test_connections_refused_together_are_not_read_again_together(server):
    """Twelve clients refused in the same instant, each retrying at once: their retries
    are answered spread over the pause's range, not in one herd a second later."""
    get = b"GET /predict/pass?hours=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    last = get.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    with work_cap_filled(server):
        socks = [connect(server) for _ in range(12)]
        for sock in socks:
            sock.sendall(get)
        for sock in socks:
            assert read_response(sock)[0] == 503
            sock.sendall(last)
        sent = time.monotonic()
        answered = []
        waiting = list(socks)
        while waiting:  # each answer's time as it arrives, whichever comes first
            ready, _, _ = select.select(waiting, [], [], 5)
            assert ready, "a refused retry was never answered"
            for sock in ready:
                answered.append(time.monotonic() - sent)
                assert read_response(sock)[0] == 503
                sock.close()
                waiting.remove(sock)
    assert min(answered) >= 0.9
    assert max(answered) < REFUSED_PAUSE_S[1] + 1
    assert max(answered) - min(answered) > 0.2


def test_past_the_buffered_bytes_cap_an_upload_gets_503_unread(server):
    held = [_hold_in_flight(server, 140_000) for _ in range(2)]  # 280 kB of 300 kB held
    try:
        deadline = time.monotonic() + 5
        while True:
            reply = httpx.post(
                server.url + "/predict/digit",
                content=b"x" * 30_000,
                headers={"content-type": "image/png"},
            )
            if reply.status_code == 503:
                break
            assert time.monotonic() < deadline, f"never refused: {reply.status_code}"
        assert "request bodies" in reply.json()["detail"]
        assert reply.headers["connection"] == "close"
    finally:
        for sock in held:
            sock.close()


def test_past_the_connection_cap_a_connection_gets_503_and_is_closed(server):
    extra = []
    try:
        for _ in range(45):
            extra.append(connect(server))
        # Those past the cap were answered 503 and closed at once (up to 5: connections
        # of earlier tests may still be closing); the others waited for a request until
        # the header timeout closed them without an answer.
        answered = [read_response(sock)[0] for sock in extra]
        assert 1 <= answered.count(503) <= 5
        assert answered.count(503) + answered.count(None) == 45
    finally:
        for sock in extra:
            sock.close()
    deadline = time.monotonic() + 5
    while True:  # the slots come back as the connections close
        try:
            if httpx.get(server.url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline


def log_line(line: str) -> dict | None:
    """One JSON log line; None for anything else (or a line still being written)."""
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def test_refusals_are_summarised_not_logged_one_by_one(server):
    for _ in range(20):
        sock = connect(server)
        sock.sendall(b"BAD REQUEST LINE\r\n\r\n")
        assert read_response(sock)[0] == 400
        sock.close()
    deadline = time.monotonic() + 5
    while True:
        lines = [parsed for line in server.log().splitlines() if (parsed := log_line(line))]
        summaries = [line for line in lines if line["event"] == "requests_refused"]
        if any(line["counts"].get("malformed_http", 0) for line in summaries):
            break
        assert time.monotonic() < deadline, "no requests_refused line"
    assert not any(line["event"] == "Invalid HTTP request received." for line in lines)
    assert sum(line["counts"].get("malformed_http", 0) for line in summaries) >= 20
    assert len(summaries) < 20
    metrics = httpx.get(server.url + "/metrics").text
    counted = next(
        line
        for line in metrics.splitlines()
        if line.startswith('digitpass_requests_refused_total{reason="malformed_http"}')
    )
    assert float(counted.split()[-1]) >= 20


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """``count`` pipelined responses, in order: (status, body) each."""
    stream = sock.makefile("rb")
    answers = []
    for _ in range(count):
        status_line = stream.readline()
        if not status_line:
            break
        length = 0
        while (line := stream.readline()) not in (b"\r\n", b""):
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value)
        answers.append((int(status_line.split()[1]), stream.read(length)))
    return answers


def test_a_pipelined_request_with_headers_over_the_cap_gets_431(server):
    sock = connect(server)
    small = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    sock.sendall(small + big + small)
    answers = read_responses(sock, 3)
    assert [status for status, _ in answers] == [200, 431]  # then closed


def test_pipelined_requests_are_answered_in_order(server):
    sock = connect(server)
    sock.sendall(
        b"".join(b"GET /predict/pass?hours=%d HTTP/1.1\r\nHost: x\r\n\r\n" % h for h in range(1, 6))
    )
    answers = [json.loads(body)["hours"] for _, body in read_responses(sock, 5)]
    assert answers == [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.slow
def test_on_sigterm_readyz_is_503_at_once_while_work_in_flight_drains_then_exit_0():
    import signal

    env = {**LIMITS, "DIGITPASS_MIN_BODY_RATE": "0", "DIGITPASS_BODY_TIMEOUT_S": "30"}
    with run_server(env) as handle:
        holders = [_hold_in_flight(handle, 2000) for _ in range(3)]  # 1000 of 2000 bytes sent
        deadline = time.monotonic() + 5
        while not _in_flight_reached(handle):  # all three are in progress
            assert time.monotonic() < deadline
        handle.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        while (ready := httpx.get(handle.url + "/readyz")).status_code == 200:
            assert time.monotonic() - started < 2, "readyz never went 503"
        assert ready.status_code == 503 and "shutting down" in ready.json()["detail"]
        v2_ready = httpx.get(handle.url + "/v2/health/ready")
        assert v2_ready.status_code == 503
        assert httpx.get(handle.url + "/healthz").status_code == 200  # alive, draining
        for held in holders:  # the requests in flight still get their answers
            held.sendall(b"x" * 1000)
            status, _, _ = read_response(held)
            assert status == 400  # not an image: answered, not cut off
        deadline = time.monotonic() + 10
        while True:  # drained: the socket closes
            try:
                socket.create_connection(address(handle), timeout=1).close()
            except (ConnectionRefusedError, TimeoutError):
                break
            assert time.monotonic() < deadline, "the socket never closed after the drain"
        assert handle.process.wait(30) == 0


@pytest.mark.parametrize(
    ("declared", "status"),
    # (a number too large for the parser is its 400)
    [(b"0" * 5000 + b"14", 200), (b"0" * 4000 + b"9" * 400, 400), (b"0000", 422), (b"0", 422)],
)
def test_a_content_length_of_thousands_of_digits_is_read_as_the_number_it_is(
    server, declared, status
):
    """The parser lets leading zeros through; ``int()`` of over 4300 digits would raise."""
    sock = connect(server)
    sock.sendall(
        b"POST /predict/pass HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + declared + b'\r\n\r\n{"hours": [4]}'
    )
    got, _, body = read_response(sock)
    assert got == status, body


def test_a_chunked_json_body_over_the_body_limit_is_413_on_both_protocols():
    """No Content-Length to refuse up front: the limit is counted as the chunks arrive."""
    with run_server({"DIGITPASS_MAX_UPLOAD_BYTES": "4096", "DIGITPASS_GRPC_PORT": "0"}) as handle:
        chunk = b'{"hours": [' + b"1," * 1500  # 3 KiB a chunk, 6 KiB in all
        for path, key in (("/predict/pass", "detail"), ("/v2/models/pass/infer", "error")):
            sock = socket.create_connection(address(handle), timeout=10)
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n".encode()
            )
            for _ in range(2):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
            status, _, body = read_response(sock)
            sock.close()
            assert status == 413, (path, body)
            assert "4096" in json.loads(body)[key], body


BROKEN_CHUNKS = [
    b"zz\r\n{}\r\n0\r\n\r\n",  # a size that is not hexadecimal
    b"-5\r\n{}\r\n0\r\n\r\n",  # a negative size
    b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n",  # a size past 64 bits
    b"2\r\n{}XX0\r\n\r\n",  # a chunk not followed by CRLF
]


@pytest.mark.parametrize("path", ["/predict/pass", "/predict/digit", "/v2/models/pass/infer"])
@pytest.mark.parametrize("chunks", BROKEN_CHUNKS)
def test_a_broken_chunked_body_gets_400_and_a_close_at_once(server, path, chunks):
    """The body's framing breaks while the route waits for the body: the wait ends with
    the 400 (it used to last until the client hung up, holding a request slot)."""
    sock = connect(server)
    sock.settimeout(2)  # far under the body timeout (3 s) and the slow-body window
    sock.sendall(
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunks
    )
    status, _, body = read_response(sock)
    assert status == 400 and json.loads(body) == {"detail": "invalid HTTP request"}
    assert closed_by_server(sock)


def test_broken_chunked_bodies_held_open_do_not_fill_the_work_cap(server):
    held = []
    try:
        for _ in range(6):  # twice the cap of requests in progress
            sock = connect(server)
            sock.sendall(
                b"POST /predict/pass HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + BROKEN_CHUNKS[0]
            )
            held.append(sock)  # the client never hangs up
        for sock in held:
            sock.settimeout(2)
            assert read_response(sock)[0] == 400
        assert httpx.get(server.url + "/predict/pass?hours=1").status_code == 200
    finally:
        for sock in held:
            sock.close()
