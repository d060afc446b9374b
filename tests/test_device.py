"""Device and provider selection. The GPU is faked at the boundary only."""

import pytest

from service.models.backends import device
from service.models.backends.device import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    DeviceUnavailable,
    choose_onnx_device,
    choose_torch_device,
)

BOTH = [CUDA_PROVIDER, CPU_PROVIDER]


def test_auto_uses_cuda_when_the_provider_exists_and_a_gpu_is_visible():
    choice = choose_onnx_device("auto", BOTH, gpu_count=1)
    assert choice.device == "cuda"
    assert choice.providers == (CUDA_PROVIDER, CPU_PROVIDER)


def test_auto_falls_back_to_cpu_without_a_gpu():
    choice = choose_onnx_device("auto", BOTH, gpu_count=0)
    assert choice.device == "cpu"
    assert choice.providers == (CPU_PROVIDER,)
    assert "no GPU" in choice.reason


def test_auto_falls_back_to_cpu_without_the_cuda_provider():
    choice = choose_onnx_device("auto", [CPU_PROVIDER], gpu_count=2)
    assert choice.providers == (CPU_PROVIDER,)
    assert "no CUDA provider" in choice.reason


def test_cpu_request_never_uses_the_gpu():
    assert choose_onnx_device("cpu", BOTH, gpu_count=4).providers == (CPU_PROVIDER,)
    assert choose_torch_device("cpu", cuda_available=True).device == "cpu"


def test_cuda_request_without_a_gpu_fails_loudly():
    with pytest.raises(DeviceUnavailable, match="no GPU visible"):
        choose_onnx_device("cuda", BOTH, gpu_count=0)
    with pytest.raises(DeviceUnavailable):
        choose_torch_device("cuda", cuda_available=False)


def test_torch_auto_follows_torch():
    assert choose_torch_device("auto", cuda_available=True).device == "cuda"
    assert choose_torch_device("auto", cuda_available=False).device == "cpu"


def test_gpu_count_is_zero_when_the_driver_is_missing(monkeypatch):
    def no_driver(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(device.ctypes, "CDLL", no_driver)
    assert device.nvidia_gpu_count() == 0


def test_gpu_count_reads_the_driver(monkeypatch):
    class FakeDriver:
        def cuInit(self, flags):  # noqa: N802 - the CUDA driver API's name
            return 0

        def cuDeviceGetCount(self, count_ref):  # noqa: N802
            count_ref._obj.value = 2
            return 0

    monkeypatch.setattr(device.ctypes, "CDLL", lambda name: FakeDriver())
    assert device.nvidia_gpu_count() == 2


def test_onnx_backend_asks_for_cuda_only_when_a_gpu_is_visible(monkeypatch, committed_model):
    """With a GPU faked, the session is asked for CUDA first; it falls back and says so."""
    from service.models.backends import onnx_backend

    requested = {}
    real_session = onnx_backend.ort.InferenceSession

    def recording_session(path, sess_options=None, providers=None):
        requested["providers"] = providers
        return real_session(path, sess_options=sess_options, providers=[CPU_PROVIDER])

    monkeypatch.setattr(onnx_backend, "nvidia_gpu_count", lambda: 1)
    monkeypatch.setattr(onnx_backend.ort, "get_available_providers", lambda: BOTH)
    monkeypatch.setattr(onnx_backend.ort, "InferenceSession", recording_session)
    preloaded = []
    monkeypatch.setattr(
        onnx_backend.ort, "preload_dlls", lambda **kw: preloaded.append(kw), raising=False
    )
    version = committed_model("pass")
    backend = onnx_backend.OnnxBackend(
        version.artifact("onnx"),
        device="auto",
        input_name="hours",
        output_name="probability",
        intra_op_threads=1,
    )
    assert requested["providers"] == [CUDA_PROVIDER, CPU_PROVIDER]
    assert preloaded == [{"directory": ""}]  # CUDA libraries from pip packages, if any
    assert backend.device == "cpu"  # what the session really uses is reported
    assert backend.providers == (CPU_PROVIDER,)


def test_onnx_backend_on_a_cpu_host_never_asks_for_cuda(monkeypatch, committed_model):
    from service.models.backends import onnx_backend

    requested = {}
    real_session = onnx_backend.ort.InferenceSession

    def recording_session(path, sess_options=None, providers=None):
        requested["providers"] = providers
        return real_session(path, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(onnx_backend, "nvidia_gpu_count", lambda: 0)
    monkeypatch.setattr(onnx_backend.ort, "InferenceSession", recording_session)
    preloaded = []
    monkeypatch.setattr(
        onnx_backend.ort, "preload_dlls", lambda **kw: preloaded.append(kw), raising=False
    )
    version = committed_model("pass")
    onnx_backend.OnnxBackend(
        version.artifact("onnx"),
        device="auto",
        input_name="hours",
        output_name="probability",
        intra_op_threads=1,
    )
    assert requested["providers"] == [CPU_PROVIDER]
    assert preloaded == []


def test_onnx_backend_refuses_to_fall_back_when_cuda_was_demanded(monkeypatch, committed_model):
    """device=cuda with a GPU whose CUDA provider fails to start is an error, not the CPU."""
    from service.models.backends import onnx_backend
    from service.models.backends.base import BackendError

    real_session = onnx_backend.ort.InferenceSession

    def cpu_only_session(path, sess_options=None, providers=None):
        return real_session(path, sess_options=sess_options, providers=[CPU_PROVIDER])

    monkeypatch.setattr(onnx_backend, "nvidia_gpu_count", lambda: 1)
    monkeypatch.setattr(onnx_backend.ort, "get_available_providers", lambda: BOTH)
    monkeypatch.setattr(onnx_backend.ort, "InferenceSession", cpu_only_session)
    monkeypatch.setattr(onnx_backend.ort, "preload_dlls", lambda **kwargs: None, raising=False)
    with pytest.raises(BackendError, match="could not start its CUDA provider"):
        onnx_backend.OnnxBackend(
            committed_model("pass").artifact("onnx"),
            device="cuda",
            input_name="hours",
            output_name="probability",
            intra_op_threads=1,
        )
