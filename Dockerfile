# syntax=docker/dockerfile:1
#
# digitpass container images.
#
#   docker build -t digitpass .                          # target serve (the default, last stage)
#   docker build -t digitpass:torch --build-arg WITH_TORCH=1 .
#   docker build -t digitpass-train --target train .
#
#   docker run --gpus all -p 8000:8000 digitpass         # GPU (NVIDIA Container Toolkit)
#   docker run -p 8000:8000 digitpass                    # same image, CPU
#
# Base image: python:3.11 slim (Debian bookworm), the interpreter the project
# targets. The GPU libraries come from PyPI, not from an nvidia/cuda base image:
# onnxruntime-gpu 1.31 on PyPI is built against CUDA 13.0 and cuDNN 9 (its wheel
# says cuda_version = '13.0' and its providers library links libcudart.so.13 and
# libcublas.so.13), and its `cuda` and `cudnn` extras install exactly those
# runtime libraries as nvidia-* wheels (cudart, nvrtc, cufft, curand, cudnn,
# cublas). That keeps one CUDA copy whose versions are pinned by onnxruntime
# itself, with no Python to bolt onto an Ubuntu CUDA image, and it serves on the
# CPU when no GPU is visible. The NVIDIA driver (libcuda.so.1) is not in the image:
# `docker run --gpus all` mounts the host's, which must support CUDA 13 (>= 580). LD_LIBRARY_PATH below points the
# dynamic loader at the nvidia-* wheels, because onnxruntime does not look there
# by itself (the service does not call onnxruntime.preload_dlls()).

# ---------------------------------------------------------------------------
# base: the interpreter, shared by every stage so that the venv built in
# `builder` runs unchanged in the final stages (same /usr/local/bin/python3.11).
FROM python:3.11.14-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# ---------------------------------------------------------------------------
# builder: a virtual environment in /opt/venv with the serving dependencies only
# (no torch). WITH_TORCH=1 adds the `torch` extra, i.e. the TorchScript backend
# (DIGITPASS_BACKEND=torchscript). torch then comes from PyPI, whose linux x86_64
# wheel is the CUDA build (several GB); no CPU-only wheel index is wired in.
FROM base AS builder
ARG ONNXRUNTIME_VERSION=1.31.1
ARG WITH_TORCH=0
# The heavy, rarely changing layer first: onnxruntime-gpu with its CUDA 13 and
# cuDNN 9 wheels. nvidia-cublas is a dependency of nvidia-cudnn-cu13 with no
# version bound; ~=13.0 keeps it on the CUDA major onnxruntime was built with.
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir \
        "onnxruntime-gpu[cuda,cudnn]==${ONNXRUNTIME_VERSION}" \
        "nvidia-cublas~=13.0"
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY service ./service
COPY training ./training
# A regular (not editable) install: /src is not part of the final image. The serving
# dependencies are pinned by constraints.txt, as `make serve` pins them (onnxruntime
# there is the version above). The torch build takes PyPI's newest torch in
# pyproject's range instead: the pinned one came from the project machine's own disk.
RUN if [ "${WITH_TORCH}" = "1" ]; then pip install --no-cache-dir "./[torch]"; \
    else pip install --no-cache-dir --constraint constraints.txt "./"; fi

# ---------------------------------------------------------------------------
# train-builder: the serving venv plus the `train` extra (torch, torchvision,
# onnx, tensorboard, matplotlib). PyPI's torch wheel brings its own CUDA libraries.
FROM builder AS train-builder
RUN pip install --no-cache-dir "./[train]"

# ---------------------------------------------------------------------------
# runtime: what both final images share: a non-root user that owns /app, and the
# committed models. The model repository is /app/models in both images, so one
# volume mounted there is read by `serve` and published into by `train`. Docker
# seeds an empty named volume from the image, with this ownership.
FROM base AS runtime
RUN groupadd --system --gid 10001 digitpass \
    && useradd --system --no-log-init --uid 10001 --gid digitpass \
        --create-home --home-dir /home/digitpass --shell /usr/sbin/nologin digitpass \
    && install -d -o digitpass -g digitpass /app
WORKDIR /app
COPY --chown=digitpass:digitpass models ./models

# ---------------------------------------------------------------------------
# train: `docker run --gpus all -v "$MNIST_DIR":/data -v models:/app/models
# digitpass-train` retrains both models and publishes new versions into
# /app/models (training's default --repository, relative to WORKDIR /app). MNIST
# is read from /data/MNIST/raw/ (MNIST_DIR); TensorBoard runs go to /app/runs.
# Arguments replace CMD, e.g. `digitpass-train digit --epochs 5 --keep 3`.
FROM runtime AS train
COPY --from=train-builder /opt/venv /opt/venv
ENV MNIST_DIR=/data \
    MPLBACKEND=Agg
USER 10001:10001
ENTRYPOINT ["digitpass-train"]
CMD ["all"]

# ---------------------------------------------------------------------------
# serve (default): `digitpass-serve --host 0.0.0.0 --port 8000`, the command
# `make serve` runs. Extra arguments are appended (`docker run digitpass
# --workers 2`); every other setting is a DIGITPASS_* variable. On SIGTERM the
# server drains (up to 30 s unready, 30 s more to finish): `docker stop -t 65`. It
# listens on 0.0.0.0, so POST /admin/reload is off (403) until a token is given:
# `docker run -e DIGITPASS_ADMIN_TOKEN=$(openssl rand -hex 32) ...`.
FROM runtime AS serve
COPY --from=builder /opt/venv /opt/venv
ENV DIGITPASS_MODEL_REPOSITORY=/app/models \
    LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/nvidia/cu13/lib:/opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib
USER 10001:10001
EXPOSE 8000
# The Open Inference Protocol over gRPC (DIGITPASS_GRPC_PORT; 0 turns it off).
EXPOSE 8001
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["digitpass-serve", "--host", "0.0.0.0", "--port", "8000"]
