"""The ASGI application: ``POST /`` with ``X-Amz-Target: AWSStepFunctions.<Action>`` answers the action.

Every request is read with a size cap before it is parsed, checked (signature, when credentials are configured),
dispatched to its action in a thread (the engine is synchronous), and answered as botocore expects:
``application/x-amz-json-1.0``, an ``x-amzn-RequestId`` header, and ``{"__type", "message"}`` for errors.
"""
from __future__ import annotations

import inspect
import json
import logging
import re
import threading
import uuid
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from statemill.engine import Client

from .protocol import ACTIONS, ApiError, Call, as_api_error
from .wakeups import Wakeups

log = logging.getLogger("statemill.server")

CONTENT_TYPE = "application/x-amz-json-1.0"
TARGET_PREFIX = "AWSStepFunctions."
# AWS caps a request at 1 MiB of payload plus its envelope; anything past this is refused unread.
MAX_BODY = 1024 * 1024 + 64 * 1024
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/states/aws4_request")


class Server:
    """What every action may reach: one ``Client`` per region over one database, and the server's settings."""

    def __init__(self, client: Client, *, credentials: tuple[str, str] | None = None, engine: Any = None,
                 console_actions: bool = False):
        self.default = client
        self.credentials = credentials
        self.console_actions = console_actions  # the web console may start, stop and answer tasks
        self.engine = engine  # the Engine whose workers run in this process (None with --no-worker)
        self._clients = {client.region: client}
        self._lock = threading.Lock()
        self.wakeups = Wakeups()  # the in-process workers' on_event, waking GetActivityTask's waiting polls

    def client(self, region: str | None) -> Client:
        """The client forming ARNs in ``region`` (the request's credential scope), sharing the database."""
        if not region or region == self.default.region:
            return self.default
        with self._lock:
            found = self._clients.get(region)
            if found is None:
                found = self._clients[region] = Client(self.default.db, region=region, account=self.default.account,
                                                       clock=self.default.clock,
                                                       payload_limit=self.default.payload_limit)
            return found


def _answer(body: dict, status: int = 200, request_id: str | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status_code=status,
                    media_type=CONTENT_TYPE, headers={"x-amzn-RequestId": request_id or str(uuid.uuid4())})


def _error(error: ApiError, request_id: str) -> Response:
    return _answer({"__type": error.type, "message": error.message}, error.status, request_id)


async def _read_body(request: Request) -> bytes:
    """The body, refused with a 413 before parsing when it is over MAX_BODY (declared or actual length)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError("ValidationException", f"the request body is {declared} bytes, over the limit of "
                       f"{MAX_BODY} bytes", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError("ValidationException", f"the request body is over the limit of {MAX_BODY} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(server: Server) -> Starlette:
    """The Starlette application serving the Step Functions API for ``server``."""

    async def api(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            body = await _read_body(request)
            target = request.headers.get("x-amz-target", "")
            name = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else None
            if name not in ACTIONS:
                raise ApiError("UnknownOperationException", f"unknown operation {target or '(no X-Amz-Target)'!r}")
            if server.credentials is not None:
                from .auth import verify
                verify(request, body, server.credentials)
            try:
                payload = json.loads(body or b"{}")
            except (ValueError, UnicodeDecodeError) as exc:
                raise ApiError("SerializationException", f"the request body is not JSON: {exc}") from None
            if not isinstance(payload, dict):
                raise ApiError("SerializationException", "the request body must be a JSON object")
            scope = _SCOPE.search(request.headers.get("authorization", ""))
            call = Call(name, payload, server.client(scope.group(1) if scope else None), server)
            handler = ACTIONS[name]  # a coroutine (GetActivityTask's long poll) waits on the loop, not in a thread
            result = await (handler(call) if inspect.iscoroutinefunction(handler) else
                            run_in_threadpool(handler, call))
            return _answer(result, request_id=request_id)
        except Exception as exc:  # noqa: BLE001 - every failure is answered, never a dropped connection
            error = as_api_error(exc)
            if error is None and isinstance(exc, sa.exc.DBAPIError):
                log.error("database error in %s: %s", request.headers.get("x-amz-target"), exc)
                error = ApiError("ServiceUnavailable", "the database is unavailable; retry later", 503)
            if error is None:
                log.exception("internal error in %s", request.headers.get("x-amz-target"))
                error = ApiError("InternalServerError", f"internal error ({type(exc).__name__}); request "
                                 f"{request_id}", 500)
            return _error(error, request_id)

    from . import actions  # noqa: F401 - registers every action group
    from .console import mount
    return Starlette(routes=[Route("/", api, methods=["POST"]), *mount(server, actions=server.console_actions)])
