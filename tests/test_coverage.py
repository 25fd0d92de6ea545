"""Coverage of states and transitions, read off execution histories and accumulated across executions."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from statemill.engine import TaskFailure
from statemill.visualizer.coverage import CoverageFile, record_execution, report, summary

sys.path.insert(0, str(Path(__file__).parent))
from clitools import statemill  # noqa: E402

ROUTER = {"StartAt": "Route", "States": {
    "Route": {"Type": "Choice", "Choices": [
        {"Variable": "$.kind", "StringEquals": "card", "Next": "Charge"},
        {"Variable": "$.kind", "StringEquals": "cash", "Next": "Done"}], "Default": "Reject"},
    "Charge": {"Type": "Task", "Resource": "charge", "Next": "Done",
               "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 60, "MaxAttempts": 1},
                         {"ErrorEquals": ["Offline"], "MaxAttempts": 1}],
               "Catch": [{"ErrorEquals": ["Declined"], "Next": "Reject"},
                         {"ErrorEquals": ["States.ALL"], "Next": "Reject"}]},
    "Done": {"Type": "Succeed"},
    "Reject": {"Type": "Fail", "Error": "Rejected"}}}


def run_all(engine, cases) -> CoverageFile:
    coverage = CoverageFile()
    for payment, mocks in cases:
        result = engine.run(ROUTER, payment, machine_name="router", mocks=mocks)
        record_execution(engine, result["executionArn"], coverage)
    return coverage


def test_choice_rules_retriers_and_catchers_are_counted_across_executions(engine):
    coverage = run_all(engine, [
        ({"kind": "card"}, {"Charge": [TaskFailure("Busy", ""), {"id": 0}]}),
        ({"kind": "card"}, {"Charge": TaskFailure("Declined", "")}),
    ])
    data = summary(coverage.machines["router"])
    assert data["executions"] == 2
    assert data["states"]["missed"] == []
    assert data["choices"]["hits"] == {"Route: rule 1 → Charge": 2, "Route: rule 2 → Done": 0,
                                       "Route: Default → Reject": 0}
    assert data["retriers"]["hits"] == {"Charge: Retry 1 [Busy]": 1, "Charge: Retry 2 [Offline]": 0}
    assert data["catchers"]["hits"] == {"Charge: Catch 1 [Declined] → Reject": 1,
                                        "Charge: Catch 2 [States.ALL] → Reject": 0}
    assert "Charge → Done (next)" in data["transitions"]["hits"]
    assert data["transitions"]["hits"]["Charge → Reject (catch)"] == 1
    assert "Route → Done (choice)" in data["transitions"]["missed"]


def test_every_path_taken_is_full_coverage(engine):
    coverage = run_all(engine, [
        ({"kind": "card"}, {"Charge": [TaskFailure("Busy", ""), TaskFailure("Offline", ""), {"id": 0}]}),
        ({"kind": "card"}, {"Charge": TaskFailure("Declined", "")}),
        ({"kind": "card"}, {"Charge": TaskFailure("Other", "")}),
        ({"kind": "cash"}, None),
        ({"kind": "gold"}, None),
    ])
    data = summary(coverage.machines["router"])
    assert (data["covered"], data["total"], data["percent"]) == (data["total"], data["total"], 100.0)


def test_a_changed_definition_starts_its_counts_afresh(engine):
    coverage = run_all(engine, [({"kind": "cash"}, None)])
    other = json.loads(json.dumps(ROUTER))
    other["States"]["Done"]["Comment"] = "changed"
    result = engine.run(other, {"kind": "gold"}, machine_name="router")
    record_execution(engine, result["executionArn"], coverage)
    entry = coverage.machines["router"]
    assert entry["executions"] == 1 and entry["definition"] == other




def test_cli_accumulates_coverage_and_reports_it(tmp_path):
    machine = tmp_path / "router.json"
    machine.write_text(json.dumps(ROUTER))
    db, cov = str(tmp_path / "x.db"), str(tmp_path / "cov.json")
    for kind in ("cash", "gold"):
        done = statemill("run", str(machine), "--db", db, "--input", json.dumps({"kind": kind}), "--coverage", cov,
                         "--quiet", cwd=tmp_path)
        assert done.returncode in (0, 1), done.stderr
    text = statemill("coverage", "report", cov, cwd=tmp_path)
    assert text.returncode == 0
    assert text.stdout.splitlines()[0].startswith("router: ") and "over 2 execution(s)" in text.stdout
    assert "not covered: Charge" in text.stdout
    as_json = json.loads(report(CoverageFile.read(cov), "json"))
    assert as_json["router"]["states"] == {**as_json["router"]["states"], "covered": 3, "total": 4}
    page = tmp_path / "cov.html"
    html = statemill("coverage", "report", cov, "--format", "html", "-o", str(page), cwd=tmp_path)
    assert html.returncode == 0
    content = page.read_text()
    assert "<svg" in content or 'class="mermaid"' in content  # the diagram (SVG when Graphviz is installed)
    assert '<tr class="miss"><td>state</td><td>Charge</td><td>0</td></tr>' in content
    under = statemill("coverage", "report", cov, "--fail-under", "90", cwd=tmp_path)
    assert under.returncode == 1


@pytest.mark.parametrize("content, message", [
    ("{", "not JSON"),
    ('{"machines": {}}', "not a statemill coverage file"),
], ids=["not JSON", "another JSON file"])
def test_a_file_that_is_not_coverage_is_refused(tmp_path, content, message):
    path = tmp_path / "cov.json"
    path.write_text(content)
    done = statemill("coverage", "report", str(path), cwd=tmp_path)
    assert done.returncode == 2 and "InvalidCoverageFile" in done.stderr and message in done.stderr


def test_report_of_nothing(tmp_path):
    assert report(CoverageFile()) == "no executions recorded"
    done = statemill("coverage", "report", str(tmp_path / "none.json"), cwd=tmp_path)
    assert done.returncode == 2 and "no coverage file" in done.stderr
