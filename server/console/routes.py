"""The console's pages and form actions, under ``/console``. Pages read the database (queries.py, Client); actions
(start, stop, redrive, approve, reject) go through ``Client`` like the API does, and only when actions are enabled.

Every endpoint goes through ``endpoint``: the login check, the CSRF check on POST, the database work in a thread
(the engine is synchronous), and the security headers on the answer.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from statemill.engine.errors import StatemillError

from . import queries as q
from . import security
from .steps import pretty, steps

HERE = Path(__file__).parent
PREFIX = "/console"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")  # engine/redrive.py decides; this only chooses where the button shows
# An execution page shows the latest visits and events (a big Map has thousands): `statemill history` has them all.
SHOWN_STEPS, SHOWN_EVENTS = 500, 1000
MAX_FORM = 1024 * 1024 + 64 * 1024  # a payload of AWS's 256 KiB limit, escaped, fits several times over

templates = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                               undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _span(seconds: float | None) -> str:
    """A duration as a person reads it: 850 ms, 12.3 s, 4 min 05 s, 2 h 03 min, 3 d 4 h."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 24 else f"{hours // 24} d {hours % 24} h"


templates.filters.update(when=_when, span=_span, pretty=pretty)


@dataclass
class Settings:
    """The console's part of the server: its Client, credentials (a login when set) and whether it may act."""

    server: Any  # server.app.Server
    actions: bool = False

    @property
    def client(self):
        return self.server.default

    @property
    def credentials(self):
        return self.server.credentials


@dataclass
class Call:
    request: Request
    form: Any
    settings: Settings

    @property
    def client(self):
        return self.settings.client

    def arg(self, name: str, default: str = "") -> str:
        source = self.form if self.form is not None else self.request.query_params
        value = source.get(name, default)
        return value if isinstance(value, str) else default

    def int_arg(self, name: str) -> int | None:
        value = self.arg(name)
        return int(value) if value.isdigit() and len(value) < 19 else None

    def flash(self, text: str, kind: str = "ok") -> None:
        self.request.session.setdefault("flash", []).append([kind, text])

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        session = self.request.session
        context.update(csrf=security.csrf_token(self.request), actions=self.settings.actions, prefix=PREFIX,
                       user=session.get("user"), login=self.settings.credentials is not None,
                       flashes=session.pop("flash", []) if not template.startswith("_") else [])
        return HTMLResponse(templates.get_template(template).render(**context), status)

    def back(self, default: str) -> RedirectResponse:
        """303 to the form's ``next`` (a console path only: never another site) or ``default``."""
        target = self.arg("next")
        ok = target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target
        return RedirectResponse(target if ok else default, 303)


def endpoint(settings: Settings, work: Callable[[Call], Response], *, action: bool = False, public: bool = False):
    async def handle(request: Request) -> Response:
        call = Call(request, None, settings)
        try:
            if request.method == "POST":
                declared = request.headers.get("content-length", "")
                if not declared.isdigit() or int(declared) > MAX_FORM:
                    raise security.TooLarge(f"a console form is at most {MAX_FORM} bytes, with its length declared")
                call.form = await request.form(max_files=0, max_fields=20)
            if not public and not security.logged_in(request, settings.credentials):
                if request.method == "GET" and "hx-request" not in request.headers:
                    answer = RedirectResponse(f"{PREFIX}/login?{urlencode({'next': request.url.path})}", 303)
                else:
                    raise security.Forbidden("log in first: the console needs the server's access key")
            else:
                if action and not settings.actions:
                    raise security.Forbidden("the console is read-only: start the server with --console-actions "
                                             "(statemill console: --actions) to start and stop executions and "
                                             "answer tasks from here")
                if call.form is not None:
                    security.check_csrf(request, call.form)
                answer = await run_in_threadpool(work, call)
        except security.Forbidden as exc:
            answer = call.render("message.html", exc.status, title=exc.title, message=str(exc))
        answer.headers.update(security.HEADERS)
        return answer
    return handle


# ------------------------------------------------------------------------------------------------ executions
def executions_filters(call: Call) -> q.Filters:
    status = call.arg("status")
    return q.Filters(call.arg("machine")[:80], status if status in q.STATUSES else "", call.arg("q")[:80])


def _page_links(filters: q.Filters, page: q.Page, limit: int) -> dict[str, str | None]:
    base = {k: v for k, v in (("machine", filters.machine), ("status", filters.status), ("q", filters.search),
                              ("limit", limit if limit != q.PAGE else "")) if v}
    return {"newer": f"?{urlencode({**base, 'after': page.newer})}" if page.newer is not None else None,
            "older": f"?{urlencode({**base, 'before': page.older})}" if page.older is not None else None,
            "query": urlencode(base)}


def executions_page(call: Call, rows_only: bool = False) -> Response:
    filters = executions_filters(call)
    limit = min(max(call.int_arg("limit") or q.PAGE, 1), q.MAX_PAGE)
    with call.client.reader.connect() as conn:
        page = q.executions_page(conn, filters, before=call.int_arg("before"), after=call.int_arg("after"),
                                 limit=limit)
        names = [] if rows_only else q.machine_names(conn)
    links = _page_links(filters, page, limit)
    poll = f"{PREFIX}/executions/rows?{call.request.url.query}"
    context = dict(page=page, links=links, filters=filters, poll=poll, now=time.time())
    if rows_only:
        return call.render("_rows.html", **context)
    return call.render("executions.html", machines=names, statuses=q.SHOWN, **context)


# ------------------------------------------------------------------------------------------------ one execution
def _diagram(machine, overlay=None) -> tuple[str, str | None]:
    """(inline SVG markup, None) or ("", why there is no diagram)."""
    from statemill.visualizer import graph
    try:
        svg = graph.image(machine, "svg", overlay).decode("utf-8")
    except graph.DotNotFound as exc:
        return "", str(exc)
    return svg[svg.find("<svg"):], None


def _live_context(call: Call, execution_id: int) -> dict | None:
    from statemill.visualizer.overlay import from_history
    with call.client.reader.connect() as conn:
        row = q.execution(conn, execution_id)
        if row is None:
            return None
        tasks = q.waiting_tasks(conn, execution_id)
        parent, children = q.relatives(conn, row)
        runs = q.map_runs_of(conn, execution_id)
    events = call.client.history(row.arn)
    machine = call.client.machine(row.machine_id)
    svg, no_svg = _diagram(machine, from_history(machine, events))
    visits = steps(events)
    shown = events[-SHOWN_EVENTS:]
    for event in shown:
        event["json"] = json.dumps({k: v for k, v in event.items() if k != "json"}, indent=2, ensure_ascii=False)
    return dict(execution=row, events=shown, event_total=len(events), steps=visits[-SHOWN_STEPS:],
                step_total=len(visits), svg=svg, no_svg=no_svg, tasks=tasks, parent=parent, children=children, map_runs=runs,
                redrivable=row.status in REDRIVABLE,
                running=row.status not in TERMINAL, seen=len(events), now=time.time(),
                input=json.dumps(row.input, indent=2, ensure_ascii=False),
                output=json.dumps(row.output, indent=2, ensure_ascii=False) if row.status == "SUCCEEDED" else None)


def _no_execution(call: Call) -> Response:
    return call.render("message.html", 404, title="Not found", message="No execution has that id.")


def execution_page(call: Call) -> Response:
    context = _live_context(call, int(call.request.path_params["id"]))
    if context is None:
        return _no_execution(call)
    return call.render("execution.html", **context)


def execution_live(call: Call) -> Response:
    """The live part of the execution page; 204 (htmx keeps what it shows) while nothing new was recorded."""
    execution_id = int(call.request.path_params["id"])
    with call.client.reader.connect() as conn:
        known = q.event_count(conn, execution_id)
    if known is None:
        return Response(status_code=286)  # htmx stops polling on 286
    seen = call.int_arg("seen")
    if seen is not None and seen >= known[0] and known[1] == call.arg("status"):
        return Response(status_code=204)
    context = _live_context(call, execution_id)
    return call.render("_live.html", **context) if context else Response(status_code=286)


def _on_execution(call: Call, answer: Callable[[Any], Response]) -> Response:
    """``answer(row)`` for the execution the path's id names, or the 404 page."""
    with call.client.reader.connect() as conn:
        row = q.execution(conn, int(call.request.path_params["id"]))
    return _no_execution(call) if row is None else answer(row)


def _act(call: Call, act: Callable[[str], Any], done: str) -> Response:
    """``act(arn)`` on the path's execution, flashing ``done`` or the refusal, then back to its page."""
    def acted(row) -> Response:
        try:
            act(row.arn)
            call.flash(f"{done} {row.name}.")
        except StatemillError as exc:
            call.flash(f"{type(exc).__name__}: {exc}", "error")
        return RedirectResponse(f"{PREFIX}/executions/{row.id}", 303)
    return _on_execution(call, acted)


def stop_confirm(call: Call) -> Response:
    return _on_execution(call, lambda row: call.render("stop.html", execution=row))


def stop(call: Call) -> Response:
    return _act(call, lambda arn: call.client.stop(arn, call.arg("error") or None, call.arg("cause") or None),
                "Stopped")


def redrive_confirm(call: Call) -> Response:
    return _on_execution(call, lambda row: call.render("redrive.html", execution=row,
                                                       redrivable=row.status in REDRIVABLE))


def redrive(call: Call) -> Response:
    """RedriveExecution; a refusal (ExecutionNotRedrivable, with AWS's reason) comes back as a message on the page."""
    return _act(call, call.client.redrive, "Redrove")


# ------------------------------------------------------------------------------------------------ state machines
def machines_page(call: Call) -> Response:
    with call.client.reader.connect() as conn:
        found = q.machines(conn)
    return call.render("machines.html", machines=found, statuses=q.SHOWN)


def machine_page(call: Call, status: int = 200, **extra: Any) -> Response:
    name = call.request.path_params["name"]
    with call.client.reader.connect() as conn:
        revisions = q.machine_revisions(conn, name)
        counts = q.status_counts(conn, name) if revisions else {}
    if not revisions:
        return call.render("message.html", 404, title="Not found", message="No state machine has that name.")
    wanted = call.int_arg("revision")
    shown = next((r for r in revisions if r.revision == wanted), revisions[0])
    svg, no_svg = _diagram(call.client.machine(shown.id))
    extra.setdefault("form_input", "{}")
    extra.setdefault("form_name", "")
    extra.setdefault("error", None)
    return call.render("machine.html", status, name=name, revisions=revisions, shown=shown, counts=counts,
                       statuses=q.SHOWN, svg=svg, no_svg=no_svg,
                       definition=pretty(shown.definition), **extra)


def start(call: Call) -> Response:
    name = call.request.path_params["name"]
    text, execution_name = call.arg("input", "{}"), call.arg("name").strip()
    try:
        started = call.client.start(name, input_text=text, name=execution_name or None)
    except StatemillError as exc:
        return machine_page(call, 400, error=f"{type(exc).__name__}: {exc}", form_input=text,
                            form_name=execution_name)
    execution_id = call.client.execution_id(started["executionArn"])
    call.flash(f"Started {started['executionArn'].rsplit(':', 1)[-1]}.")
    return RedirectResponse(f"{PREFIX}/executions/{execution_id}", 303)


# ------------------------------------------------------------------------------------------------ waiting tasks
def tasks_page(call: Call) -> Response:
    execution_id = call.int_arg("execution")
    with call.client.reader.connect() as conn:
        found = q.waiting_tasks(conn, execution_id)
    return call.render("tasks.html", tasks=found, execution_id=execution_id, now=time.time())


def approve(call: Call) -> Response:
    try:
        call.client.send_task_success(call.arg("token"), call.arg("output", "{}"))
        call.flash(f"Approved {call.arg('state')} of {call.arg('execution')}.")
    except StatemillError as exc:
        call.flash(f"{type(exc).__name__}: {exc}", "error")
    return call.back(f"{PREFIX}/tasks")


def reject(call: Call) -> Response:
    try:
        call.client.send_task_failure(call.arg("token"), call.arg("error") or None, call.arg("cause") or None)
        call.flash(f"Rejected {call.arg('state')} of {call.arg('execution')}.")
    except StatemillError as exc:
        call.flash(f"{type(exc).__name__}: {exc}", "error")
    return call.back(f"{PREFIX}/tasks")


# ------------------------------------------------------------------------------------------------ login
def login(call: Call) -> Response:
    credentials = call.settings.credentials
    if credentials is None:
        return RedirectResponse(f"{PREFIX}/", 303)
    if call.form is None:
        return call.render("login.html", next=call.arg("next"), error=None)
    if security.log_in(call.request, credentials, call.arg("key"), call.arg("secret")):
        return call.back(f"{PREFIX}/")
    return call.render("login.html", 401, next=call.arg("next"), error="Wrong access key id or secret.")


def logout(call: Call) -> Response:
    call.request.session.clear()
    return RedirectResponse(f"{PREFIX}/login" if call.settings.credentials else f"{PREFIX}/", 303)
