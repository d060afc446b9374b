"""The peer: the committed digit ONNX model served by LitServe, with its batching.

Runs in its own virtualenv (``bench/.venv-litserve``, made by ``bench.litserve_env``),
so it imports nothing from this repository::

    bench/.venv-litserve/bin/python bench/litserve_app.py --port 8000 --model PATH.onnx

Batching as LitServe's docs recommend: ``max_batch_size`` and ``batch_timeout`` on the
``LitAPI``; ``decode_request`` per request, ``batch`` stacks, ``predict`` runs the
batch, ``unbatch`` splits it, ``encode_response`` per request.
"""

from __future__ import annotations

import argparse
import io

import litserve as ls
import numpy as np
import onnxruntime as ort
from PIL import Image

MAX_BATCH_SIZE = 64
BATCH_TIMEOUT_S = 0.005
MEAN, STD = 0.1307, 0.3081


class DigitAPI(ls.LitAPI):
    def __init__(self, model_path: str) -> None:
        super().__init__(max_batch_size=MAX_BATCH_SIZE, batch_timeout=BATCH_TIMEOUT_S)
        self.model_path = model_path

    def setup(self, device: str) -> None:
        self.session = ort.InferenceSession(self.model_path, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    # No annotations on ``request`` or on encode_response's return: LitServe reads them
    # to build the endpoint's request and response types.
    def decode_request(self, request) -> np.ndarray:  # noqa: ANN001
        data = request["image"].file.read()
        image = Image.open(io.BytesIO(data)).convert("L").resize((28, 28))
        pixels = np.asarray(image, dtype=np.float32) / 255.0
        return ((pixels - MEAN) / STD).reshape(784)

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, x: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(None, {self.input_name: x})
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def unbatch(self, output: np.ndarray) -> list[np.ndarray]:
        return list(output)

    def encode_response(self, output: np.ndarray):  # noqa: ANN201
        digit = int(output.argmax())
        return {
            "digit": digit,
            "confidence": float(output[digit]),
            "probabilities": output.tolist(),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True, help="path of the digit model.onnx")
    args = parser.parse_args()
    api = DigitAPI(args.model)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        generate_client_file=False,
        access_log=False,
    )


if __name__ == "__main__":
    main()
