"""Spec for ``statemill validate FILE... [--json]``, run as a real command in a subprocess.

It prints one ``file:line:col: severity[SMxxx] message`` line per diagnostic (or ``ok``), and exits 0 when every
file is valid (warnings allowed), 1 when any has errors, 2 when a file cannot be read or the usage is wrong.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from clitools import statemill

VALID = "StartAt: A\nStates:\n  A:\n    Type: Pass\n    Result: {zero: 0, no: false, empty: '', nothing: null}\n" \
        "    End: true\n"
TYPO = "StartAt: A\nStates:\n  A:\n    Type: Pass\n    Next: Shipp\n  Ship:\n    Type: Succeed\n"
WARNS = "StartAt: C\nStates:\n  C:\n    Type: Choice\n    Choices:\n      - {Variable: $.n, IsNull: true, Next: D}\n" \
        "  D: {Type: Succeed}\n"
JSON_BAD = '{\n  "StartAt": "A",\n  "States": {\n    "A": {"Type": "Pass", "End": true, "Next": "A"}\n  }\n}\n'
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning)\[(?P<code>SM\d{3})\] .+$")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "valid.yaml").write_text(VALID, encoding="utf-8")
    (tmp_path / "typo.yaml").write_text(TYPO, encoding="utf-8")
    (tmp_path / "warns.yaml").write_text(WARNS, encoding="utf-8")
    (tmp_path / "bad.json").write_text(JSON_BAD, encoding="utf-8")
    (tmp_path / "broken.yaml").write_text("StartAt: A\nStates:\n  A:\n    Type: Pass\n   End: true\n", encoding="utf-8")
    (tmp_path / "broken.json").write_text('{"StartAt": "A",\n "States": {\n', encoding="utf-8")
    (tmp_path / "latin1.yaml").write_bytes("Comment: caf\u00e9\n".encode("latin-1"))
    return tmp_path


def test_valid_file_prints_ok_and_exits_0(files):
    done = statemill("validate", "valid.yaml", cwd=files)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")


def test_several_valid_files(files):
    done = statemill("validate", "valid.yaml", "valid.yaml", cwd=files)
    assert (done.returncode, done.stdout) == (0, "ok: 2 files\n")


def test_error_is_printed_at_file_line_col_and_exits_1(files):
    done = statemill("validate", "typo.yaml", cwd=files)
    assert done.returncode == 1
    assert done.stdout == 'typo.yaml:5:11: error[SM203] state "A": Next target "Shipp" does not exist ' \
                          '(did you mean "Ship"?)\n'
    assert done.stderr == "1 error(s), 0 warning(s)\n"


def test_warnings_alone_exit_0(files):
    done = statemill("validate", "warns.yaml", cwd=files)
    assert done.returncode == 0
    assert done.stdout.startswith("warns.yaml:3:3: warning[SM901] ")
    assert "0 error(s), 1 warning(s)" in done.stderr


def test_json_file_is_located_too(files):
    done = statemill("validate", "bad.json", cwd=files)
    assert done.returncode == 1
    assert done.stdout.startswith('bad.json:4:27: error[SM205] state "A": has both Next and End')


@pytest.mark.parametrize("name, line, col", [("broken.yaml", 5, 4), ("broken.json", 3, 1)])
def test_malformed_file_reported_at_parser_position_without_traceback(files, name, line, col):
    done = statemill("validate", name, cwd=files)
    assert done.returncode == 1
    assert done.stdout.startswith(f"{name}:{line}:{col}: error[SM001] invalid ")
    assert "Traceback" not in done.stdout + done.stderr


def test_several_files_report_every_problem_in_order(files):
    done = statemill("validate", "valid.yaml", "typo.yaml", "warns.yaml", "bad.json", cwd=files)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert all(LINE.match(line) for line in lines), lines
    assert [(LINE.match(x)["file"], LINE.match(x)["code"]) for x in lines] == [
        ("typo.yaml", "SM203"), ("warns.yaml", "SM901"), ("bad.json", "SM205")]
    assert done.stderr == "2 error(s), 1 warning(s)\n"


def test_json_output_lists_every_field(files):
    done = statemill("validate", "--json", "typo.yaml", "warns.yaml", cwd=files)
    assert done.returncode == 1
    found = json.loads(done.stdout)
    assert found[0] == {"code": "SM203", "severity": "error",
                        "message": 'state "A": Next target "Shipp" does not exist (did you mean "Ship"?)',
                        "pointer": "/States/A/Next", "file": "typo.yaml", "line": 5, "column": 11}
    assert (found[1]["code"], found[1]["severity"], found[1]["pointer"]) == ("SM901", "warning", "/States/C")
    assert len(found) == 2


def test_json_output_of_valid_files_is_an_empty_list(files):
    done = statemill("validate", "valid.yaml", "warns.yaml", "--json", cwd=files)
    assert done.returncode == 0
    assert [d["code"] for d in json.loads(done.stdout)] == ["SM901"]
    done = statemill("validate", "--json", "valid.yaml", cwd=files)
    assert (done.returncode, json.loads(done.stdout)) == (0, [])


@pytest.mark.parametrize("args, says", [
    pytest.param(["missing.yaml"], "missing.yaml: error: cannot read", id="missing_file"),
    pytest.param(["valid.yaml", "missing.yaml"], "missing.yaml: error: cannot read", id="missing_among_valid"),
    pytest.param(["typo.yaml", "missing.yaml"], "missing.yaml: error: cannot read", id="missing_beats_errors"),
    pytest.param(["."], "is a directory", id="directory"),
    pytest.param([], "Missing argument", id="no_files"),
    pytest.param(["--bogus", "valid.yaml"], "No such option", id="unknown_option"),
])
def test_unreadable_files_and_usage_errors_exit_2(files, args, says):
    done = statemill("validate", *args, cwd=files)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_unreadable_file_with_json_still_prints_the_others(files):
    done = statemill("validate", "--json", "typo.yaml", "missing.yaml", cwd=files)
    assert done.returncode == 2
    assert [d["code"] for d in json.loads(done.stdout)] == ["SM203"]
    assert "missing.yaml: error: cannot read" in done.stderr


def test_help_and_version(files):
    assert "validate" in statemill("--help", cwd=files).stdout
    assert "--json" in statemill("validate", "--help", cwd=files).stdout
    version = statemill("--version", cwd=files)
    assert (version.returncode, re.match(r"statemill, version \d+\.\d+", version.stdout) is not None) == (0, True)
