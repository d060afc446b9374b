"""The protocol layer on its own: the tensor codec, requests with binary data,
classification, the JSON body guard, and the version policy file."""

from __future__ import annotations

import asyncio
import json
import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import MalformedRequest, ServiceError
from service.http.json_body import nesting_depth, parse_json, too_deep
from service.models.policy import PolicyError, VersionPolicy, read_policy
from service.protocol.classification import top_classes
from service.protocol.messages import (
    InferResponse,
    OutputTensor,
    decode_json_data,
    request_from_json,
    response_to_rest,
)
from service.protocol.tensors import (
    ProtocolError,
    from_binary,
    from_json,
    join_bytes,
    split_bytes,
    to_json,
)


@pytest.mark.parametrize(
    ("datatype", "data", "shape", "expected"),
    [
        ("FP32", [[1, 2], [4, 5]], (2, 2), [[1, 2], [4, 5]]),  # the spec's nested example
        ("FP32", [1, 2, 4, 5], (2, 2), [[1, 2], [4, 5]]),  # ... and flattened
        ("FP64", [0.1, 0.2], (2,), [0.1, 0.2]),
        ("INT32", [[-3], [7]], (2, 1), [[-3], [7]]),
        ("INT64", [2**40], (1,), [2**40]),
        ("UINT32", [1, 2, 3, 4], (2, 2), [[1, 2], [3, 4]]),
        ("BOOL", [True, False, True], (3,), [True, False, True]),
    ],
)
def test_json_data_flat_or_nested_becomes_the_tensor(datatype, data, shape, expected):
    tensor = from_json(datatype, shape, data, "x")
    assert tensor.shape == shape
    assert tensor.tolist() == expected


@pytest.mark.parametrize(
    ("datatype", "data", "shape", "fragment"),
    [
        ("FP32", [1, 2, 3], (2, 2), "3 elements, but shape [2, 2] holds 4"),
        ("BOOL", [True], (3,), "1 elements, but shape [3] holds 3"),  # the spec's input1
        ("FP32", [[1, 2], [3]], (3,), "FP32 values"),  # ragged
        ("FP32", ["1.5"], (1,), "FP32 values"),  # a string is not a number
        ("INT32", [1.5], (1,), "INT32 values"),  # nor is a fraction an integer
        ("INT32", [2**40], (1,), "out of range for INT32"),
        ("UINT8", [-1], (1,), "out of range for UINT8"),
        ("BYTES", [1], (1,), "must be strings"),
    ],
)
def test_json_data_that_does_not_fit_is_a_400(datatype, data, shape, fragment):
    with pytest.raises(ProtocolError) as caught:
        from_json(datatype, shape, data, "input 'x'")
    assert caught.value.status_code == 400
    assert fragment in caught.value.detail


def test_binary_data_must_be_exactly_shape_times_datatype():
    values = np.arange(6, dtype="<f4")
    assert from_binary("FP32", (2, 3), values.tobytes(), "x").tolist() == [[0, 1, 2], [3, 4, 5]]
    for wrong in (values.tobytes()[:-1], values.tobytes() + b"\0"):
        with pytest.raises(ProtocolError, match="takes 24"):
            from_binary("FP32", (2, 3), wrong, "x")


def test_bytes_elements_have_4_byte_little_endian_length_prefixes():
    elements = [b"\x89PNG", b"", b"abc"]
    raw = join_bytes(elements)
    assert raw[:4] == struct.pack("<I", 4) and len(raw) == 12 + 7
    assert split_bytes(raw, 3, "x") == elements
    with pytest.raises(ProtocolError, match="overruns"):
        split_bytes(raw[:-1], 3, "x")
    with pytest.raises(ProtocolError, match="left after"):
        split_bytes(raw + b"\0", 3, "x")
    with pytest.raises(ProtocolError, match="inside an element's length"):
        split_bytes(raw[:2], 1, "x")
    with pytest.raises(ProtocolError, match="not UTF-8"):
        to_json([b"\xff"])


@pytest.mark.parametrize("outputs", [None, []])
def test_no_requested_outputs_means_every_output(outputs):
    request = {"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}]}
    if outputs is not None:
        request["outputs"] = outputs
    assert request_from_json(decode_json_data(request)).outputs is None


def test_a_request_with_json_and_binary_inputs_splits_the_binary_part_by_size():
    first = np.arange(4, dtype="<f4").reshape(2, 2)
    request = {
        "id": "42",
        "parameters": {"binary_data_output": True},
        "inputs": [
            {
                "name": "a",
                "shape": [2, 2],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 16},
            },
            {"name": "b", "shape": [1], "datatype": "INT64", "data": [7]},
            {"name": "c", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 7}},
        ],
        "outputs": [{"name": "y", "parameters": {"binary_data": False, "classification": 3}}],
    }
    parsed = request_from_json(decode_json_data(request), first.tobytes() + join_bytes([b"png"]))
    assert parsed.id == "42" and parsed.binary_output is True
    assert [t.name for t in parsed.inputs] == ["a", "b", "c"]
    assert parsed.inputs[0].data.tolist() == first.tolist()
    assert parsed.inputs[1].data.tolist() == [7]
    assert parsed.inputs[2].data == [b"png"]
    assert parsed.outputs[0].binary is False and parsed.outputs[0].class_count == 3


@pytest.mark.parametrize(
    ("request_body", "binary", "fragment"),
    [
        ({"inputs": []}, b"", "'inputs' must be a list"),
        (
            {"inputs": [{"name": "a", "shape": [1], "datatype": "FP33", "data": [1]}]},
            b"",
            "unknown datatype",
        ),
        (
            {"inputs": [{"name": "a", "shape": [-1], "datatype": "FP32", "data": [1]}]},
            b"",
            "non-negative",
        ),
        ({"inputs": [{"name": "a", "shape": [1], "datatype": "FP32"}]}, b"", "no 'data'"),
        (
            {
                "inputs": [
                    {
                        "name": "a",
                        "shape": [1],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": 8},
                    }
                ]
            },
            b"\0" * 4,
            "runs past",
        ),
        (
            {"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}]},
            b"\0",
            "no input's binary_data_size covers",
        ),
        ([1, 2], b"", "JSON object"),
    ],
)
def test_malformed_requests_are_400s_that_say_why(request_body, binary, fragment):
    with pytest.raises(ProtocolError) as caught:
        request_from_json(decode_json_data(request_body), binary)
    assert fragment in caught.value.detail


def test_a_response_with_binary_outputs_says_where_the_json_ends():
    values = np.array([[0.25, 0.75]], dtype=np.float32)
    response = InferResponse("m", "1", [OutputTensor("p", "FP32", (1, 2), values, True)], "7")
    body, header_length = response_to_rest(response)
    header = json.loads(body[:header_length])
    assert header["id"] == "7"
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 8}
    assert np.frombuffer(body[header_length:], dtype="<f4").tolist() == [0.25, 0.75]
    as_json, none = response_to_rest(
        InferResponse("m", "1", [OutputTensor("p", "FP32", (1, 2), values, False)])
    )
    assert none is None and json.loads(as_json)["outputs"][0]["data"] == [0.25, 0.75]


def test_classification_is_the_top_k_as_score_index_label_strings():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]], dtype=np.float32)
    assert top_classes(scores, ["a", "b", "c"], 2) == [
        b"0.700000:1:b",
        b"0.200000:2:c",
        b"0.500000:0:a",
        b"0.300000:2:c",
    ]
    assert top_classes(scores, [], 9)[:3] == [b"0.700000:1", b"0.200000:2", b"0.100000:0"]


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"{}", 1),
        (b"[[1, [2]]]", 3),
        (b'{"a": "[[[[{{{{"}', 1),  # brackets in strings do not count
        (b'["\\"[[", [[]]]', 3),  # nor after an escaped quote
        (b'["\\\\", [[]]]', 3),  # an escaped backslash ends the string
        (b"", 0),
    ],
)
def test_nesting_depth_counts_brackets_outside_strings(body, depth):
    assert nesting_depth(body) == depth


def v2_parse(body: bytes, offload=None):
    return asyncio.run(
        parse_json(
            body, offload=offload, convert=decode_json_data, max_depth=32, error=MalformedRequest
        )
    )


def test_deep_or_bad_json_is_refused_before_and_by_the_parse():
    with pytest.raises(MalformedRequest, match="nested 33 deep, at most 32"):
        v2_parse(b"[" * 33 + b"]" * 33)
    with pytest.raises(MalformedRequest, match="invalid JSON"):
        v2_parse(b'{"a": ')
    assert v2_parse(b"[" * 32 + b"]" * 32) == [
        [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
    ]


@pytest.mark.slow
def test_a_large_body_is_parsed_in_a_worker_process_and_converted_there():
    from service.http import json_body
    from service.serving.stage import PreprocessStage

    body = json.dumps(
        {
            "inputs": [
                {"name": "a", "shape": [100_000], "datatype": "FP32", "data": list(range(100_000))}
            ]
        }
    ).encode()
    assert len(body) > json_body.INLINE_BYTES
    offloaded: list[int] = []

    async def parse_both() -> tuple[object, BaseException | None]:
        stage = PreprocessStage(workers=1, max_queue=8, timeout_s=60)

        async def offload(prepare, rows, cost):
            offloaded.append(cost)
            return await stage.run(prepare, rows, cost)

        try:
            parsed = await parse_json(
                body, offload=offload, convert=decode_json_data, error=MalformedRequest
            )
            try:
                await parse_json(
                    b"[" * 100_000, offload=offload, max_depth=32, error=MalformedRequest
                )
            except MalformedRequest as exc:  # refused in the worker, raised here
                return parsed, exc
            return parsed, None
        finally:
            stage.close()

    parsed, refusal = asyncio.run(parse_both())
    assert offloaded == [len(body), 100_000]  # both went to a worker process
    assert isinstance(refusal, MalformedRequest) and "at most 32" in str(refusal)
    tensor = parsed["inputs"][0]["digitpass.decoded"]
    assert isinstance(tensor, np.ndarray) and tensor.dtype == np.float32
    assert tensor[-1] == 99_999


def write_config(tmp_path, config: object) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("config", "policy", "published", "order", "count"),
    [
        (None, VersionPolicy("latest", 1), [1, 2, 3], [3, 2, 1], 1),
        ({}, VersionPolicy("latest", 1), [1, 2], [2, 1], 1),
        (
            {"version_policy": {"latest": {"num_versions": 2}}},
            VersionPolicy("latest", 2),
            [1, 2, 3],
            [3, 2, 1],
            2,
        ),
        (
            {"version_policy": {"specific": {"versions": [3, 1, 9]}}},
            VersionPolicy("specific", versions=(1, 3, 9)),
            [1, 2, 3],
            [3, 1],
            None,
        ),
        ({"version_policy": {"all": {}}}, VersionPolicy("all"), [1, 2], [2, 1], None),
    ],
)
def test_the_version_policy_file(tmp_path, config, policy, published, order, count):
    if config is not None:
        write_config(tmp_path, config)
    read = read_policy(tmp_path)
    assert read == policy
    assert read.candidates(published) == (order, count)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"version_policy": {"latest": {"num_versions": 0}}}, "num_versions"),
        ({"version_policy": {"latest": {}, "all": {}}}, "exactly one"),
        ({"version_policy": {"newest": {}}}, "newest"),
        ([], "valid dictionary"),
        ({"version_policy": {"specific": {"versions": [0]}}}, "versions.0"),
        ({"version_policy": {"specific": {"versions": [10**30]}}}, "versions.0"),
    ],
)
def test_a_bad_version_policy_names_the_problem(tmp_path, config, fragment):
    write_config(tmp_path, config)
    with pytest.raises(PolicyError, match=fragment):
        read_policy(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(PolicyError, match="not JSON"):
        read_policy(tmp_path)


def test_a_config_file_nested_too_deeply_is_a_policy_error(tmp_path):
    (tmp_path / "config.json").write_bytes(b"[" * 60_000)  # within the size cap
    with pytest.raises(PolicyError, match="not JSON"):
        read_policy(tmp_path)


def test_a_config_file_is_read_only_as_a_regular_file_in_the_model_folder(tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"version_policy": {"all": {}}}))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").symlink_to(outside)
    with pytest.raises(PolicyError, match="a link or not a regular file"):
        read_policy(model)
    (model / "config.json").unlink()
    os.mkfifo(model / "config.json")  # opening a FIFO to read would wait for a writer
    with pytest.raises(PolicyError, match="a link or not a regular file"):
        read_policy(model)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "shape",
                    "datatype",
                    "data",
                    "parameters",
                    "inputs",
                    "outputs",
                    "binary_data_size",
                    "id",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)
TENSOR = st.fixed_dictionaries(
    {
        "name": st.text(max_size=4),
        "shape": st.lists(st.integers(-2, 5), max_size=3),
        "datatype": st.sampled_from(["FP32", "INT64", "BYTES", "BOOL", "UINT8", "FP16", "X"]),
    },
    optional={
        "data": JSON_VALUES,
        "parameters": st.fixed_dictionaries({}, optional={"binary_data_size": st.integers(-1, 40)}),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    request=st.one_of(
        JSON_VALUES,
        st.fixed_dictionaries(
            {"inputs": st.lists(TENSOR, max_size=3)},
            optional={"outputs": JSON_VALUES, "parameters": JSON_VALUES},
        ),
    ),
    binary=st.binary(max_size=48),
)
def test_any_request_is_parsed_or_refused_with_a_4xx(request, binary):
    try:
        request_from_json(decode_json_data(request), binary)
    except ServiceError as exc:
        assert 400 <= exc.status_code < 500


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64), count=st.integers(0, 8))
def test_any_bytes_split_into_elements_or_refused(raw, count):
    try:
        elements = split_bytes(raw, count, "x")
    except ProtocolError:
        return
    assert len(elements) == count and join_bytes(elements) == raw


def depth_of(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(
    value=st.recursive(
        st.text(alphabet='[]{}"\\ab', max_size=6) | st.integers(),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(alphabet='[]{}"\\k', max_size=4), children, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_nesting_depth_is_exact_for_any_json(value):
    body = json.dumps(value).encode()
    assert nesting_depth(body) == depth_of(value)
    for limit in (0, 1, 2, 3):
        assert too_deep(body, limit) == (depth_of(value) > limit)
