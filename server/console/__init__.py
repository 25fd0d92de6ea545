"""The web console: executions live, state machines with their diagrams, waiting tasks to approve or reject.

Served under ``/console`` by ``statemill serve`` (next to the API's ``POST /``) or alone by ``statemill console``.
Server-rendered Jinja2 pages with a vendored htmx for the parts that update themselves; no build step, no CDN.
"""
from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import routes as r
from .security import COOKIE, session_key

HERE = Path(__file__).parent


def console(server, *, actions: bool = False) -> Starlette:
    """The console's ASGI app for ``server`` (a server.app.Server), to mount at ``/console``."""
    settings = r.Settings(server, actions)

    table = [
        ("/", r.executions_page), ("/executions", r.executions_page),
        ("/executions/rows", lambda call: r.executions_page(call, rows_only=True)),
        ("/executions/{id:int}", r.execution_page), ("/executions/{id:int}/live", r.execution_live),
        ("/executions/{id:int}/stop", r.stop_confirm), ("/executions/{id:int}/redrive", r.redrive_confirm),
        ("/machines", r.machines_page),
        ("/machines/{name}", r.machine_page), ("/tasks", r.tasks_page),
    ]
    routes = [Route(path, r.endpoint(settings, work), methods=["GET"]) for path, work in table]
    routes += [Route(path, r.endpoint(settings, work, action=True), methods=["POST"]) for path, work in [
        ("/executions/{id:int}/stop", r.stop), ("/executions/{id:int}/redrive", r.redrive),
        ("/machines/{name}/start", r.start),
        ("/tasks/approve", r.approve), ("/tasks/reject", r.reject)]]
    routes += [Route("/login", r.endpoint(settings, r.login, public=True), methods=["GET", "POST"]),
               Route("/logout", r.endpoint(settings, r.logout, public=True), methods=["POST"]),
               Mount("/static", StaticFiles(directory=HERE / "static"), name="static")]
    middleware = [Middleware(SessionMiddleware, secret_key=session_key(server.credentials), session_cookie=COOKIE,
                             path=r.PREFIX, same_site="strict", max_age=12 * 3600)]
    return Starlette(routes=routes, middleware=middleware)


def mount(server, *, actions: bool = False) -> list:
    """Routes to add to an app: ``GET /`` goes to the console, ``/console/...`` is the console."""
    return [Route("/", lambda request: RedirectResponse(f"{r.PREFIX}/", 307), methods=["GET", "HEAD"]),
            Mount(r.PREFIX, console(server, actions=actions))]
