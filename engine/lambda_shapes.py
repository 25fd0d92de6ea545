"""What AWS makes of a Lambda function's answer, so definitions written against real Lambda read the same fields.

``arn:aws:states:::lambda:invoke`` wraps the function's result in the Lambda Invoke response (``ExecutedVersion``,
``Payload``, ``SdkHttpMetadata``, ``SdkResponseMetadata``, ``StatusCode``). A function that raises fails the task
with its exception's type as the error and Lambda's error JSON (``errorMessage``, ``errorType``, ``requestId``,
``stackTrace``) as the cause: compact as Step Functions re-encodes it for ``lambda:invoke``, as the Python runtime
writes it for a plain function ARN.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
import traceback
import uuid
from email.utils import formatdate
from types import TracebackType
from typing import Any

_ASYNCIO = os.path.dirname(asyncio.__file__)


def invoke_result(result: Any) -> dict[str, Any]:
    """The Lambda Invoke response Step Functions returns for a function that returned ``result``."""
    body = json.dumps(result)  # the Python runtime's encoding: its length is the response's Content-Length
    request_id, date, trace = str(uuid.uuid4()), formatdate(usegmt=True), _trace_id()
    headers = {"X-Amz-Executed-Version": "$LATEST", "x-amzn-Remapped-Content-Length": "0",
               "Connection": "keep-alive", "x-amzn-RequestId": request_id, "Content-Length": str(len(body.encode())),
               "Date": date, "X-Amzn-Trace-Id": trace, "Content-Type": "application/json"}
    return {
        "ExecutedVersion": "$LATEST",
        "Payload": json.loads(body),
        "SdkHttpMetadata": {"AllHttpHeaders": {key: [value] for key, value in headers.items()},
                            "HttpHeaders": dict(sorted(headers.items(), key=lambda kv: kv[0].lower())),
                            "HttpStatusCode": 200},
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200,
    }


def invoke_payload(payload: Any) -> Any:
    """What the function receives from ``lambda:invoke``'s ``Payload``: a string is sent as the raw request body, so
    the function gets the JSON it holds (``"0"`` arrives as ``0``); a string that is not JSON arrives as it is."""
    if not isinstance(payload, str):
        return payload
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def error_cause(exc: BaseException, invoke: bool, handler_file: str) -> str:
    """Lambda's error JSON for ``exc`` raised by a function, its stack trace cut to the function's own frames (those
    after ``handler_file``'s, statemill's call of the handler)."""
    error = {"errorMessage": str(exc), "errorType": type(exc).__name__, "requestId": str(uuid.uuid4()),
             "stackTrace": [_entry(f) for f in _own_frames(exc.__traceback__, handler_file)]}
    if invoke:
        return json.dumps(error, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(error)


def _own_frames(tb: TracebackType | None, handler_file: str) -> list[traceback.FrameSummary]:
    frames = traceback.extract_tb(tb)
    start = next((i + 1 for i, f in enumerate(frames) if f.filename == handler_file and f.name == "__call__"), 0)
    while start < len(frames) - 1 and frames[start].filename.startswith(_ASYNCIO):  # an async handler's event loop
        start += 1
    return frames[start:]


def _entry(frame: traceback.FrameSummary) -> str:
    """A stack trace entry as Lambda's runtime writes it: ``traceback.format_list``'s, without 3.11's ^^^ markers."""
    entry = f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
    return entry + (f"    {frame.line.strip()}\n" if frame.line else "")


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
