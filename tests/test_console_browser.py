"""The web console in a real browser: Debian's Chromium driven by Playwright, against real ``statemill serve`` and
``statemill console`` processes. One browser for the module; each test gets a fresh context (its own cookies).
Skipped, with the reason, when Chromium or Playwright is not installed (`.ci/run` installs both)."""
from __future__ import annotations

import os
import shutil

import pytest

from consoletools import HOSTILE, ConsoleProcess, console_fixtures, ended, seed, waiting, wait_for
from statemill.engine import Client

CHROMIUM = os.environ.get("STATEMILL_CHROMIUM", "/usr/bin/chromium")
playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install "
                                     "-e '.[test]'")
if not shutil.which(CHROMIUM):
    pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium (or set STATEMILL_CHROMIUM)",
                allow_module_level=True)
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz `dot` is not installed (apt-get install graphviz): no diagrams")
WAITING_TASK = f'.task[data-state="{HOSTILE}"]'


@pytest.fixture(scope="module")
def chromium():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


server, client = console_fixtures("console-browser")


@pytest.fixture
def page(chromium):
    """A page in a fresh context that fails the test on any JavaScript dialog (an alert would mean a script ran)
    or error."""
    context = chromium.new_context()
    context.set_default_timeout(15_000)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield opened
    context.close()
    assert problems == []


@needs_dot
def test_start_a_run_from_its_machine_and_watch_the_overlay_change_state(server, client, page):
    page.goto(f"{server.url}/console/machines/approval")
    editor = page.locator("textarea[name=input]")
    assert editor.input_value() == "{}"
    editor.fill('{"n": 0,}')
    page.fill("input[name=name]", "watched")
    page.click("#start")
    assert page.locator(".json-error").inner_text().startswith("Not valid JSON")
    assert page.url.endswith("/console/machines/approval")  # nothing was submitted
    editor.fill('{"n": 0, "flag": false, "text": "", "nothing": null}')
    page.click("#start")
    page.wait_for_url("**/console/executions/*")
    arn = client.execution_arn("approval", "watched")
    diagram = page.locator("#live .diagram svg")
    wait_for(lambda: "waiting: task token" in diagram.text_content(), what="the overlay showing the waiting task")
    client.send_task_success(client.pending_tokens(arn)[0]["taskToken"], '{"ok": 0}')
    page.locator("#status", has_text="SUCCEEDED").wait_for()  # no reload: the live part polls
    assert "waiting: task token" not in diagram.text_content() and "succeeded" in diagram.text_content()
    assert '"ok": 0' in page.locator("#output").inner_text()


def test_approve_a_waiting_task_with_an_edited_output(server, client, page):
    arn, execution_id, _ = waiting(client, "to-approve")
    page.goto(f"{server.url}/console/executions/{execution_id}")
    page.click("text=1 waiting task")
    task = page.locator(WAITING_TASK)
    assert task.locator("textarea[name=output]").input_value() == "{}"
    task.locator("textarea[name=output]").fill('{"approved": true, "amount": 0, "note": ""}')
    task.locator("button.approve").click()
    page.locator(".flash.ok").wait_for()
    assert ended(client, arn)["output"]["answer"] == {"approved": True, "amount": 0, "note": ""}
    assert page.locator(WAITING_TASK).count() == 0


def test_reject_another_with_an_error_and_a_cause(server, client, page):
    arn, execution_id, _ = waiting(client, "to-reject")
    page.goto(f"{server.url}/console/tasks?execution={execution_id}")
    task = page.locator(WAITING_TASK)
    task.locator("input[name=error]").fill("Rejected")
    task.locator("textarea[name=cause]").fill("over budget")
    task.locator("button.reject").click()
    page.locator(".flash.ok").wait_for()
    found = ended(client, arn)
    assert (found["status"], found["error"]) == ("FAILED", "Refused")
    page.goto(f"{server.url}/console/executions/{execution_id}")
    row = page.locator("tr.step", has=page.locator("td.state-name", has_text=HOSTILE))
    assert row.locator(".error-text").inner_text() == "Rejected"


def test_stop_one_after_confirming(server, client, page):
    arn, execution_id, _ = waiting(client, "to-stop")
    page.goto(f"{server.url}/console/executions/{execution_id}")
    page.click("text=Stop execution…")
    assert client.status(arn) == "RUNNING"  # the first click only asks
    page.fill("input[name=error]", "Ops.Stopped")
    page.click("#confirm-stop")
    page.locator("#status", has_text="ABORTED").wait_for()
    assert client.describe(arn)["error"] == "Ops.Stopped" and client.pending_tokens(arn) == []


@pytest.mark.parametrize("where", ["execution", "tasks", "machine"])
def test_a_state_named_like_a_script_tag_renders_as_text(server, client, page, where):
    _, execution_id, _ = waiting(client, f"escaping-{where}")
    page.goto(server.url + {"execution": f"/console/executions/{execution_id}",
                            "tasks": f"/console/tasks?execution={execution_id}",
                            "machine": "/console/machines/approval"}[where])
    if where == "machine":
        page.click("text=Definition")
    assert page.get_by_text(HOSTILE).count() >= 1  # shown as text; the fixture fails the test on any alert()
    assert page.locator("script:not([src])").count() == 0
    assert page.locator("img[src=x]").count() == 0


def test_the_executions_list_shows_a_new_execution_without_reloading(server, client, page):
    page.goto(f"{server.url}/console/executions?machine=approval")
    client.start("approval", {}, name="appears-live")
    page.locator("#rows a", has_text="appears-live").wait_for()


def test_page_through_1000_executions_and_back(tmp_path, chromium):
    """`statemill console` alone (no workers) over 1,000 executions: 5 pages of 200, older then newer again."""
    db = f"sqlite:///{tmp_path}/many.db"
    seeder = Client(db)
    seeder.register({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, "many")
    seed(seeder, "many", 1000)
    console = ConsoleProcess(tmp_path, db)
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(f"{console.url}/console/executions?limit=200")
        seen: list[str] = []
        while True:
            seen += page.locator("#rows tr[data-id] td:first-child").all_inner_texts()
            older = page.locator("#rows a[rel=next]")
            if older.count() == 0:
                break
            with page.expect_navigation():
                older.click()
        assert seen == [f"e{i:04d}" for i in reversed(range(1000))]
        back: list[str] = []
        while True:
            back = page.locator("#rows tr[data-id] td:first-child").all_inner_texts() + back
            newer = page.locator("#rows a[rel=prev]")
            if newer.count() == 0:
                break
            with page.expect_navigation():
                newer.click()
        assert back == seen
    finally:
        context.close()
        assert console.stop() == 0
