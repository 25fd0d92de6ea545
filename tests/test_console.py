"""The web console over HTTP, against real ``statemill serve`` processes on a SQLite file: who may act (read-only,
login, CSRF), what every action does through the engine, escaping, and keyset paging on SQLite and PostgreSQL.
The browser tests (tests/test_console_browser.py) drive the same pages in Chromium."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from consoletools import APPROVAL, HOSTILE, Session, console_fixtures, ended, flashes, waiting, wait_for, write_handlers
from servertools import ServerProcess
from statemill.engine import Client
from statemill.engine.store.schema import executions
from statemill.server.console import queries as q

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def serve(folder, *args: str) -> ServerProcess:
    return ServerProcess(folder, f"sqlite:///{folder}/sm.db", "--handlers", write_handlers(folder), "-q", *args)


server, client = console_fixtures("console")
_count = iter(range(10**6))


@pytest.fixture
def browser(server):
    session = Session(server.url)
    yield session
    session.close()


def test_get_slash_opens_the_console_while_post_slash_stays_the_api(server, browser):
    answer = browser.get("/")
    assert answer.status_code == 307 and answer.headers["location"] == "/console/"
    assert browser.get("/console/").status_code == 200
    api = browser.http.post("/", headers={"X-Amz-Target": "AWSStepFunctions.DescribeExecution",
                                          "Content-Type": "application/x-amz-json-1.0"},
                            content=b'{"executionArn": "arn:aws:states:us-east-1:000000000000:execution:a:b"}')
    assert api.json()["__type"].endswith("ExecutionDoesNotExist")


@pytest.mark.parametrize("page", ["/console/", "/console/machines", "/console/machines/approval", "/console/tasks",
                                  "/console/executions?status=RUNNING&q=run"])
def test_every_page_answers_with_headers_that_forbid_foreign_scripts(server, client, browser, page):
    answer = browser.get(page)
    assert answer.status_code == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert "samesite=strict" in answer.headers["set-cookie"].lower()


@pytest.mark.parametrize("page", ["execution", "tasks", "machine"])
def test_a_state_named_like_a_script_tag_is_shown_as_text(server, client, browser, page):
    arn, execution_id, _ = waiting(client)
    path = {"execution": f"/console/executions/{execution_id}", "tasks": f"/console/tasks?execution={execution_id}",
            "machine": "/console/machines/approval"}[page]
    html = browser.get(path).text
    assert HOSTILE not in html and "<img src=x" not in html
    assert ESCAPED in html


def test_approve_sends_task_success_with_the_edited_output(server, client, browser):
    arn, _, token = waiting(client)
    browser.get("/console/tasks")
    answer = browser.post("/console/tasks/approve", {"token": token, "output": '{"ok": 0, "no": false, "s": ""}',
                                                     "state": "Ask", "execution": "x", "next": "/console/tasks"})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/tasks"
    assert ended(client, arn)["output"]["answer"] == {"ok": 0, "no": False, "s": ""}
    assert flashes(browser.get("/console/tasks").text) == ["Approved Ask of x."]


def test_reject_sends_task_failure_with_its_error_and_cause(server, client, browser):
    arn, _, token = waiting(client)
    browser.get("/console/tasks")
    browser.post("/console/tasks/reject", {"token": token, "error": "Rejected", "cause": "over budget"})
    assert ended(client, arn)["status"] == "FAILED"
    failed = [e for e in client.history(arn) if e["type"] == "TaskFailed"]
    assert failed[0]["taskFailedEventDetails"] | {"resource": None, "resourceType": None} == \
        {"error": "Rejected", "cause": "over budget", "resource": None, "resourceType": None}


def test_answering_a_closed_token_says_why_with_the_aws_error_name(server, client, browser):
    arn, _, token = waiting(client)
    client.send_task_success(token, "{}")
    browser.get("/console/tasks")
    browser.post("/console/tasks/approve", {"token": token, "output": "{}"})
    assert flashes(browser.get("/console/tasks").text)[0].startswith("TaskTimedOut: ")


def test_stop_asks_for_confirmation_then_aborts_with_error_and_cause(server, client, browser):
    arn, execution_id, _ = waiting(client)
    confirm = browser.get(f"/console/executions/{execution_id}/stop").text
    assert "This cannot be undone" in confirm and client.status(arn) == "RUNNING"
    answer = browser.post(f"/console/executions/{execution_id}/stop", {"error": "Ops.Stopped", "cause": ""})
    assert answer.headers["location"] == f"/console/executions/{execution_id}"
    found = client.describe(arn)
    assert (found["status"], found["error"], found.get("cause")) == ("ABORTED", "Ops.Stopped", None)
    assert client.pending_tokens(arn) == []


@pytest.mark.parametrize("csrf", ["", "forged"], ids=["missing", "forged"])
@pytest.mark.parametrize("action", ["approve", "reject", "stop", "start"])
def test_a_form_without_the_sessions_csrf_token_changes_nothing(server, client, browser, action, csrf):
    arn, execution_id, token = waiting(client)
    before = len(client.list(limit=10_000))
    browser.get("/console/tasks")
    path = {"approve": "/console/tasks/approve", "reject": "/console/tasks/reject",
            "stop": f"/console/executions/{execution_id}/stop", "start": "/console/machines/approval/start"}[action]
    answer = browser.post(path, {"token": token, "input": "{}", "output": "{}"}, csrf=csrf)
    assert answer.status_code == 403 and "CSRF" in answer.text
    assert client.pending_tokens(arn)[0]["taskToken"] == token and client.status(arn) == "RUNNING"
    assert len(client.list(limit=10_000)) == before


def test_a_form_over_the_size_limit_is_refused_unread(server, client, browser):
    from statemill.server.console.routes import MAX_FORM
    arn, _, token = waiting(client)
    browser.get("/console/tasks")
    answer = browser.post("/console/tasks/approve", {"token": token, "output": '"' + "x" * MAX_FORM + '"'})
    assert answer.status_code == 413 and client.pending_tokens(arn)[0]["taskToken"] == token


def test_start_refuses_input_that_is_not_json_and_writes_nothing(server, client, browser):
    before = len(client.list(limit=10_000))
    browser.get("/console/machines/approval")
    answer = browser.post("/console/machines/approval/start", {"name": "bad-input", "input": "{'a': 0}"})
    assert answer.status_code == 400 and "InvalidExecutionInput: " in answer.text
    assert "{&#39;a&#39;: 0}" in answer.text  # the editor keeps what was typed
    assert len(client.list(limit=10_000)) == before


def test_start_runs_the_latest_revision_and_opens_the_new_execution(server, client, browser):
    browser.get("/console/machines/approval")
    answer = browser.post("/console/machines/approval/start", {"name": "from-console", "input": '{"n": 0}'})
    arn = client.execution_arn("approval", "from-console")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/executions/{client.execution_id(arn)}"
    assert client.describe(arn)["input"] == {"n": 0}


def test_a_form_never_redirects_off_the_console(server, client, browser):
    _, _, token = waiting(client)
    browser.get("/console/tasks")
    answer = browser.post("/console/tasks/approve", {"token": token, "output": "{}", "next": "//evil.example/x"})
    assert answer.headers["location"] == "/console/tasks"


def test_the_live_view_answers_204_until_something_new_is_recorded(server, client, browser):
    arn, execution_id, token = waiting(client)
    page = browser.get(f"/console/executions/{execution_id}").text
    live = re.search(r'hx-get="([^"]+/live[^"]+)"', page).group(1).replace("&amp;", "&")
    assert browser.get(live).status_code == 204
    client.send_task_success(token, '{"ok": 0}')
    ended(client, arn)
    changed = browser.get(live)
    assert changed.status_code == 200 and "SUCCEEDED" in changed.text and "hx-trigger" not in changed.text


def test_a_read_only_console_shows_no_buttons_and_refuses_actions(tmp_path, client):
    process = serve(tmp_path)
    session = Session(process.url)
    try:
        reader = Client(process.db)
        reader.register(APPROVAL, "approval")
        arn = reader.start("approval", {})["executionArn"]
        token = wait_for(lambda: reader.pending_tokens(arn), what="the task token")[0]["taskToken"]
        page = session.get("/console/tasks").text
        assert "Approve" not in page and "read-only" in page
        answer = session.post("/console/tasks/approve", {"token": token, "output": "{}"})
        assert answer.status_code == 403 and "--console-actions" in answer.text
        assert reader.pending_tokens(arn)[0]["taskToken"] == token
        broken, broken_id = failed(reader)
        assert "/redrive" not in session.get(f"/console/executions/{broken_id}").text
        refused = session.post(f"/console/executions/{broken_id}/redrive", {})
        assert refused.status_code == 403 and "--console-actions" in refused.text
        assert reader.describe(broken).get("redriveCount", 0) == 0
    finally:
        session.close()
        assert process.stop() == 0


def test_with_credentials_the_console_needs_a_login_with_the_secret(tmp_path):
    process = serve(tmp_path, "--access-key-id", "AKIDCONSOLE", "--secret-access-key", "s3cret", "--console-actions")
    session = Session(process.url)
    try:
        first = session.get("/console/tasks")
        assert first.status_code == 303 and first.headers["location"] == "/console/login?next=%2Fconsole%2Ftasks"
        session.get("/console/login")
        wrong = session.post("/console/login", {"key": "AKIDCONSOLE", "secret": "guess", "next": "/console/tasks"})
        assert wrong.status_code == 401 and session.get("/console/tasks").status_code == 303
        session.get("/console/login")
        right = session.post("/console/login", {"key": "AKIDCONSOLE", "secret": "s3cret", "next": "/console/tasks"})
        assert right.status_code == 303 and right.headers["location"] == "/console/tasks"
        assert session.get("/console/tasks").status_code == 200
        assert session.post("/console/logout", {}).status_code == 303
        assert session.get("/console/tasks").status_code == 303
    finally:
        session.close()
        assert process.stop() == 0


# ------------------------------------------------------------------------------------------------ keyset paging
@pytest.fixture
def seeded(db_url):
    """Seven executions of two machines: a0 a1 b2 a3 b4 a5 a6 (in start order), the last three SUCCEEDED."""
    client = Client(db_url)
    for name in ("a", "b"):
        client.register({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, name)
    for i, machine in enumerate("aabab" "aa"):
        client.start(machine, {}, name=f"{machine}{i}")
    with client.db.begin() as conn:
        conn.execute(executions.update().where(executions.c.name.in_(["b4", "a5", "a6"])).values(status="SUCCEEDED"))
    return client


def walk(conn, filters: q.Filters, limit: int) -> tuple[list[str], list[str]]:
    """Every name, page by page older, then page by page newer again from the oldest page."""
    pages, page = [], q.executions_page(conn, filters, limit=limit)
    pages.append(page)
    while page.older is not None:
        page = q.executions_page(conn, filters, before=page.older, limit=limit)
        pages.append(page)
    back = [page]
    while page.newer is not None:
        page = q.executions_page(conn, filters, after=page.newer, limit=limit)
        back.append(page)
    older = [r.name for p in pages for r in p.rows]
    newer = [r.name for p in reversed(back) for r in p.rows]
    return older, newer


@pytest.mark.parametrize("filters, names", [
    (q.Filters(), ["a6", "a5", "b4", "a3", "b2", "a1", "a0"]),
    (q.Filters(machine="a"), ["a6", "a5", "a3", "a1", "a0"]),
    (q.Filters(status="SUCCEEDED"), ["a6", "a5", "b4"]),
    (q.Filters(machine="b", status="RUNNING"), ["b2"]),
    (q.Filters(search="4"), ["b4"]),
    (q.Filters(search="%"), []),  # a LIKE wildcard is searched for as itself
    (q.Filters(machine="nobody"), []),
    (q.Filters(machine="a", search="5"), ["a5"]),
    (q.Filters(machine="a", search="_"), []),
], ids=["all", "machine", "status", "machine-and-status", "search", "search-wildcard", "unknown-machine",
        "machine-and-search", "machine-and-search-wildcard"])
def test_keyset_pages_show_each_execution_once_whichever_way_they_are_walked(seeded, filters, names):
    with seeded.reader.connect() as conn:
        for limit in (1, 2, 3, 50):
            older, newer = walk(conn, filters, limit)
            first = q.executions_page(conn, filters, limit=limit)
            assert (older, newer) == (names, names), limit
            assert first.newer is None and (first.older is None) == (len(names) <= limit), limit


def test_the_console_indexes_make_a_filtered_page_an_index_range_scan(seeded):
    with seeded.reader.connect() as conn:
        if conn.dialect.name != "sqlite":
            pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
        for filters in (q.Filters(machine="a", status="RUNNING"), q.Filters(status="RUNNING")):
            query = filters.where(sa.select(executions.c.id)).order_by(executions.c.id.desc()).limit(51)
            plan = " ".join(str(r[-1]) for r in conn.execute(sa.text("EXPLAIN QUERY PLAN " + str(
                query.compile(conn, compile_kwargs={"literal_binds": True})))))
            assert "INDEX ix_executions_" in plan and "TEMP B-TREE" not in plan, plan


def test_the_console_migration_adds_its_indexes_to_an_older_database(db_url):
    from statemill.engine.store import migrations
    from statemill.engine.store.schema import schema_version
    client = Client(db_url)
    names = {"ix_executions_machine_status", "ix_executions_status_page"}
    with client.db.begin() as conn:
        for index in executions.indexes:
            if index.name in names:
                index.drop(conn)
        before = migrations.MIGRATIONS.index(migrations._v7_index_executions_for_the_console)  # later ones may follow
        conn.execute(schema_version.update().values(version=before))
    assert migrations.upgrade(client.db) == (before, migrations.LATEST)
    with client.db.connect() as conn:
        assert names <= {i["name"] for i in sa.inspect(conn).get_indexes("executions")}


PAGES = ["/console/executions?machine=m&status=RUNNING&q=e", "/console/executions/{id}", "/console/executions/{id}/live",
         "/console/machines", "/console/machines/m", "/console/tasks", "/console/executions?before={id}&limit=1"]


def test_statemill_console_serves_every_page_on_either_database(db_url, tmp_path):
    from consoletools import ConsoleProcess
    client = Client(db_url)
    client.register({"StartAt": HOSTILE, "States": {HOSTILE: {"Type": "Pass", "End": True}}}, "m")
    arn = client.start("m", {"zero": 0, "no": False, "empty": "", "none": None}, name="e0")["executionArn"]
    execution_id = client.execution_id(arn)
    client.db.dispose()
    console = ConsoleProcess(tmp_path, db_url)
    session = Session(console.url)
    try:
        for page in PAGES:
            answer = session.get(page.format(id=execution_id))
            assert (answer.status_code, HOSTILE in answer.text) == (200, False), page
    finally:
        session.close()
        assert console.stop() == 0


# ------------------------------------------------------------------------------------------------ the state list
def test_the_state_list_gives_each_visit_its_input_output_error_and_cause(engine):
    from statemill.engine import TaskFailure
    from statemill.server.console.steps import steps

    def refuse(value):
        raise TaskFailure("Refused", "")
    engine.handler("refuse")(refuse)
    definition = {"StartAt": "Both", "States": {
        "Both": {"Type": "Parallel", "Next": "Ask", "Branches": [
            {"StartAt": "Zero", "States": {"Zero": {"Type": "Pass", "Result": 0, "End": True}}},
            {"StartAt": "No", "States": {"No": {"Type": "Pass", "Result": False, "End": True}}}]},
        "Ask": {"Type": "Task", "Resource": "refuse", "Next": "Done",
                "Catch": [{"ErrorEquals": ["Refused"], "ResultPath": None, "Next": "Done"}]},
        "Done": {"Type": "Pass", "Result": "", "End": True}}}
    arn = engine.run(definition, {"none": None}, machine_name="steps")["executionArn"]
    found = {step.name: step for step in steps(engine.history(arn))}
    order = list(found)
    # the branches run at once (on PostgreSQL, on different connections): their visits come in either order
    assert (order[0], set(order[1:3]), order[3:]) == ("Both", {"Zero", "No"}, ["Ask", "Done"])
    assert (found["Both"].input, found["Both"].output) == ('{"none":null}', "[0,false]")
    assert (found["Zero"].output, found["No"].output) == ("0", "false")
    assert (found["Ask"].error, found["Ask"].cause, found["Ask"].output) == ("Refused", "", '[0,false]')
    assert (found["Done"].output, found["Done"].status) == ('""', "done")


# ------------------------------------------------------------------------------------------------ children, redrive
START_SYNC = "arn:aws:states:::states:startExecution.sync:2"
KID = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
# The parent's one state is named like a script tag: the page shows it as text.
FAMILY = {"StartAt": HOSTILE, "States": {HOSTILE: {
    "Type": "Task", "Resource": START_SYNC, "End": True,
    "Parameters": {"StateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:kid",
                   "Input": {"zero": 0, "no": False, "empty": "", "none": None}}}}}
BROKEN = {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Broke", "Cause": ""}}}


def failed(client: Client) -> tuple[str, int]:
    """A new FAILED execution of ``broken``: (arn, id)."""
    client.register(BROKEN, "broken")
    arn = client.start("broken", {"zero": 0}, name=f"broke-{next(_count)}")["executionArn"]
    assert ended(client, arn)["status"] == "FAILED"
    return arn, client.execution_id(arn)


def test_an_execution_page_links_its_parent_and_its_children_with_their_statuses(server, client, browser):
    client.register(KID, "kid")
    client.register(FAMILY, "family")
    arn = client.start("family", {}, name=f"family-{next(_count)}")["executionArn"]
    assert ended(client, arn)["status"] == "SUCCEEDED"
    (kid,) = client.links(arn)["childExecutionArns"]
    parent_id, kid_id = client.execution_id(arn), client.execution_id(kid)
    page = browser.get(f"/console/executions/{parent_id}").text
    assert re.findall(r'<a class="child" href="([^"]+)">([^<]+)</a> <span class="status (\w+)"', page) == \
        [(f"/console/executions/{kid_id}", kid.rsplit(":", 1)[-1], "SUCCEEDED")]
    assert 'class="parent"' not in page and HOSTILE not in page and ESCAPED in page
    page = browser.get(f"/console/executions/{kid_id}").text
    assert re.findall(r'<a class="parent" href="([^"]+)">([^<]+)</a> <span class="status (\w+)"', page) == \
        [(f"/console/executions/{parent_id}", arn.rsplit(":", 1)[-1], "SUCCEEDED")]
    assert 'class="child"' not in page


def test_an_execution_page_shows_its_distributed_map_runs_counts(server, client, browser):
    client.register({"StartAt": "Spread", "States": {"Spread": {
        "Type": "Map", "Label": "spread", "End": True,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, **KID}}}}, "spread")
    arn = client.start("spread", [0, False], name=f"spread-{next(_count)}")["executionArn"]
    assert ended(client, arn)["status"] == "SUCCEEDED"
    page = browser.get(f"/console/executions/{client.execution_id(arn)}").text
    assert "<dt>Map run spread</dt>" in page
    assert re.search(r"SUCCEEDED</span>\s+2 succeeded, 0 failed, 0 running of 2 items read", page)


def test_redrive_asks_for_confirmation_then_runs_the_failed_execution_again(server, client, browser):
    arn, execution_id = failed(client)
    running, _, _ = waiting(client)
    assert "/redrive" not in browser.get(f"/console/executions/{client.execution_id(running)}").text
    assert f'href="/console/executions/{execution_id}/redrive"' in browser.get(f"/console/executions/{execution_id}").text
    confirm = browser.get(f"/console/executions/{execution_id}/redrive").text
    assert "ExecutionRedriven" in confirm and client.describe(arn).get("redriveCount", 0) == 0
    answer = browser.post(f"/console/executions/{execution_id}/redrive", {})
    assert answer.status_code == 303 and answer.headers["location"] == f"/console/executions/{execution_id}"
    assert client.describe(arn)["redriveCount"] == 1
    assert "ExecutionRedriven" in [e["type"] for e in client.history(arn)]
    assert flashes(browser.get(f"/console/executions/{execution_id}").text)[0] == f"Redrove {arn.rsplit(':', 1)[-1]}."


@pytest.mark.parametrize("csrf", ["", "forged"], ids=["missing", "forged"])
def test_a_redrive_without_the_sessions_csrf_token_changes_nothing(server, client, browser, csrf):
    arn, execution_id = failed(client)
    browser.get(f"/console/executions/{execution_id}/redrive")
    answer = browser.post(f"/console/executions/{execution_id}/redrive", {}, csrf=csrf)
    assert answer.status_code == 403 and "CSRF" in answer.text
    found = client.describe(arn)
    assert (found["status"], found.get("redriveCount", 0)) == ("FAILED", 0)


def test_a_refused_redrive_shows_the_reason_on_the_execution_page(server, client, browser):
    arn, execution_id = failed(client)
    with client.db.begin() as conn:  # closed 15 days ago: past AWS's 14-day redrive window
        conn.execute(executions.update().where(executions.c.id == execution_id)
                     .values(stopped_at=executions.c.stopped_at - 15 * 24 * 3600))
    browser.get(f"/console/executions/{execution_id}/redrive")
    answer = browser.post(f"/console/executions/{execution_id}/redrive", {})
    assert answer.status_code == 303 and answer.headers["location"] == f"/console/executions/{execution_id}"
    page = browser.get(answer.headers["location"])
    assert page.status_code == 200
    assert flashes(page.text) == [f"ExecutionNotRedrivable: Execution closed more than 14 days ago and can no longer "
                                  f"be redriven: {arn}"]
    assert client.describe(arn).get("redriveCount", 0) == 0
