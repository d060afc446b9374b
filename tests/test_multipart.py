"""The in-memory multipart reader, against bodies real clients build."""

import httpx
import pytest

from service.http.multipart import MalformedMultipart, header_params, parse_multipart


def client_body(files=None, data=None):
    """The exact bytes and Content-Type httpx sends for a form."""
    request = httpx.Request("POST", "http://x/", files=files, data=data)
    return request.read(), request.headers["content-type"]


def test_reads_files_and_fields_in_order_as_httpx_sends_them():
    png = bytes(range(256)) * 3 + b"\r\n--not-the-boundary\r\n"
    body, content_type = client_body(
        files=[("images", ("a.png", png, "image/png")), ("images", ("b.png", b"B", "image/png"))],
        data={"note": "hello"},
    )
    parts = parse_multipart(body, content_type, max_parts=10)
    by_name = [(p.name, p.filename, p.data) for p in parts]
    assert ("note", None, b"hello") in by_name
    files = [(n, f, d) for n, f, d in by_name if f is not None]
    assert files == [("images", "a.png", png), ("images", "b.png", b"B")]


def test_hand_written_body_with_preamble_epilogue_and_quoting():
    body = (
        b"preamble to ignore\r\n"
        b"--XyZ  \r\n"
        b'Content-Disposition: form-data; name="im\\"age"; filename="a;b.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
        b"\x89PNG\r\n\r\ndata\r\n"
        b"--XyZ\r\n"
        b"content-disposition: form-data; name=plain\r\n\r\n"
        b"text\r\n"
        b"--XyZ--\r\nepilogue"
    )
    parts = parse_multipart(body, 'multipart/form-data; boundary="XyZ"', max_parts=5)
    assert [(p.name, p.filename, p.data) for p in parts] == [
        ('im"age', "a;b.png", b"\x89PNG\r\n\r\ndata"),
        ("plain", None, b"text"),
    ]


def test_empty_file_part_is_kept():
    body, content_type = client_body(files={"image": ("e.png", b"", "image/png")})
    (part,) = parse_multipart(body, content_type, max_parts=2)
    assert part.name == "image" and part.data == b""


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"--b\r\n\r\n", "multipart/form-data", "boundary"),
        (b"--b\r\n\r\n", "multipart/form-data; boundary=" + "x" * 71, "boundary"),
        (b"no boundary anywhere", "multipart/form-data; boundary=b", "opening boundary"),
        (
            b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nabc",
            "multipart/form-data; boundary=b",
            "truncated",
        ),
        (
            b"--b\r\nContent-Disposition: form-data; name=a",
            "multipart/form-data; boundary=b",
            "end of headers",
        ),
        (b"--bX\r\n", "multipart/form-data; boundary=b", "line break"),
        (b"--b\r\nbroken header\r\n\r\nx\r\n--b--", "multipart/form-data; boundary=b", "header"),
        (
            b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--",
            "multipart/form-data; boundary=b",
            "Content-Disposition",
        ),
        (
            b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--",
            "multipart/form-data; boundary=b",
            "without a name",
        ),
    ],
)
def test_malformed_bodies_are_refused(body, content_type, message):
    with pytest.raises(MalformedMultipart, match=message):
        parse_multipart(body, content_type, max_parts=5)


def test_part_count_is_bounded():
    body, content_type = client_body(
        files=[("images", (f"{i}", b"x", "image/png")) for i in range(4)]
    )
    assert len(parse_multipart(body, content_type, max_parts=4)) == 4
    with pytest.raises(MalformedMultipart, match="too many parts"):
        parse_multipart(body, content_type, max_parts=3)


def test_header_params():
    # An extended value that is not RFC 5987 (charset'language'value) is ignored.
    assert header_params('form-data; name="a b"; filename=x.png; FileName*=ignored') == {
        "name": "a b",
        "filename": "x.png",
    }


def test_rfc_5987_filename_wins_over_the_plain_one():
    value = (
        'form-data; name="image"; filename="rates.png"; filename*=UTF-8\'\'%e2%82%ac%20rates.png'
    )
    assert header_params(value) == {"name": "image", "filename": "\u20ac rates.png"}
    assert header_params("form-data; name=a; filename*=iso-8859-1'en'%A3.png")["filename"] == (
        "\u00a3.png"
    )
    assert "filename" not in header_params("form-data; name=a; filename*=nocodec''x.png")


def test_quoted_strings_with_escapes():
    assert header_params(r'form-data; name="a\"b\\"; filename="c;d.png"') == {
        "name": 'a"b\\',
        "filename": "c;d.png",
    }
    with pytest.raises(MalformedMultipart, match="unterminated"):
        header_params('form-data; name="abc')
    with pytest.raises(MalformedMultipart, match="parameters"):
        header_params("form-data" + "; a=b" * 40)
