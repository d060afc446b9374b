"""The ceiling: digitpass's request handling with no model behind it.

Same framework and server stack as digitpass (FastAPI on uvicorn, see
``bench.launch``). It reads the same requests as the real routes (the ``hours``
query parameter, validated as a float; the multipart upload, parsed and read to
the end) and answers a constant JSON object of about the same size. No middleware,
no batching, no model: whatever digitpass does beyond this is its own cost.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from bench.payload import DIGIT_ANSWER, PASS_ANSWER

app = FastAPI(title="digitpass bench ceiling")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/predict/pass")
async def predict_pass(hours: Annotated[float, Query(ge=0, le=10_000)]) -> JSONResponse:
    return JSONResponse(PASS_ANSWER)


@app.post("/predict/digit")
async def predict_digit(request: Request) -> JSONResponse:
    form = await request.form(max_files=2, max_fields=16)
    upload = form.get("image")
    if not isinstance(upload, UploadFile) or not await upload.read():
        return JSONResponse({"detail": "missing form field 'image'"}, status_code=400)
    return JSONResponse(DIGIT_ANSWER)
