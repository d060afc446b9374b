"""The Ray Serve baseline: the committed digit ONNX model served the way Ray Serve's
docs show it: a FastAPI ingress deployment, ``@serve.batch`` with its wait timeout,
the image decoded in the request handler::

    python -m bench.ray_baseline_app --port 8000 --model PATH.onnx [--replicas 2]

It starts a one-node Ray cluster on loopback (like ``make serve-ray``), deploys, and
stops on SIGTERM.
"""

# No `from __future__ import annotations`: FastAPI resolves the handler's annotations
# (UploadFile) at run time, and this class is defined inside a function.
import argparse
import io
import signal
import threading

import numpy as np
from fastapi import FastAPI, File, UploadFile

from service.rayserve.cluster import apply_local_environment

MAX_BATCH_SIZE = 64
BATCH_WAIT_TIMEOUT_S = 0.005  # as the LitServe peer's batch_timeout
MEAN, STD = 0.1307, 0.3081

app = FastAPI()


def build(model_path: str, replicas: int):  # noqa: ANN201
    from ray import serve

    @serve.deployment(
        num_replicas=replicas,
        ray_actor_options={"num_cpus": 1},
        max_ongoing_requests=2 * MAX_BATCH_SIZE,  # >= max_batch_size, as the docs advise
    )
    @serve.ingress(app)
    class DigitBaseline:
        def __init__(self, path: str) -> None:
            import onnxruntime as ort

            self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            self.input_name = self.session.get_inputs()[0].name

        @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_TIMEOUT_S)
        async def classify(self, rows: list[np.ndarray]) -> list[dict]:
            (logits,) = self.session.run(None, {self.input_name: np.stack(rows)})
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            probabilities = shifted / shifted.sum(axis=1, keepdims=True)
            return [
                {
                    "digit": int(p.argmax()),
                    "confidence": float(p.max()),
                    "probabilities": p.tolist(),
                }
                for p in probabilities
            ]

        @app.post("/predict/digit")
        async def predict(self, image: UploadFile = File(...)) -> dict:  # noqa: B008
            from PIL import Image

            data = await image.read()
            picture = Image.open(io.BytesIO(data)).convert("L").resize((28, 28))
            pixels = np.asarray(picture, dtype=np.float32) / 255.0
            return await self.classify(((pixels - MEAN) / STD).reshape(784))

        @app.get("/readyz")
        async def readyz(self) -> dict:
            return {"status": "ready"}

    return DigitBaseline.bind(model_path)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ray_baseline_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    apply_local_environment()
    from ray import serve

    from service.rayserve.cluster import start_local

    stop = threading.Event()
    start_local()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        serve.run(build(args.model, args.replicas), name="baseline", route_prefix="/")
        stop.wait()
    finally:
        import ray

        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
