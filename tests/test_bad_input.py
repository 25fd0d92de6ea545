"""The bad-input matrix: every bad input a user can give the CLI, the one-line error they get, and the exit code.

The matrix is data (``CASES``). One parametrised test runs each case as a user does (the installed ``statemill`` in
a subprocess, in a folder holding a database and the files the cases name) and checks the exit code, the message,
that there is no traceback, and that nothing in the folder changed (a bad request changes nothing). Another test
checks that the README's table is the one rendered from ``CASES``; after changing the cases, rewrite it with

    python tests/test_bad_input.py --write-readme
"""
from __future__ import annotations

import hashlib
import shutil
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from clitools import statemill  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- bad-input:start -->", "<!-- bad-input:end -->"
EXECUTION = "arn:aws:states:us-east-1:000000000000:execution:m:nope"
DONE = "arn:aws:states:us-east-1:000000000000:execution:m:done"


@dataclass(frozen=True)
class Case:
    """``args`` may hold ``{used_token}`` (a task token already answered); ``stdin`` is raw bytes."""

    what: str
    args: tuple[str, ...]
    code: int
    message: str  # stderr contains this
    stdin: bytes | None = None
    shown_stdin: str = ""  # how the README describes stdin
    extra: tuple[str, ...] = field(default=())  # stderr also contains these (a handler module's own frames)


CASES = [
    # execution input and task output
    Case("input that is not JSON", ("start", "m.yaml", "--input", '{"a": '), 2,
         "error: InvalidExecutionInput: the input is not valid JSON: Expecting value at line 1 column 7"),
    Case("NaN in the input", ("start", "m.yaml", "--input", '{"n": NaN}'), 2,
         "error: InvalidExecutionInput: the input is not valid JSON: NaN is not a JSON value"),
    Case("input over 256 KiB", ("start", "m.yaml", "--input", "@big.json"), 2,
         "error: InvalidExecutionInput: the input is 300011 bytes, over the payload limit of 262144 bytes"),
    Case("input file that is not UTF-8", ("start", "m.yaml", "--input", "@latin1.json"), 2,
         "error: InvalidExecutionInput: 'latin1.json' is not UTF-8 text (byte 0xe9 at offset 13)"),
    Case("input on stdin that is not UTF-8", ("start", "m.yaml", "--input", "@-"), 2,
         "error: InvalidExecutionInput: standard input is not UTF-8 text (byte 0xff at offset 0)",
         stdin=b"\xff\xfe{}", shown_stdin="bytes ff fe 7b 7d"),
    Case("input file that does not exist", ("start", "m.yaml", "--input", "@nope.json"), 2,
         "error: UsageError: cannot read input file 'nope.json': No such file or directory"),
    Case("task output that is not JSON", ("send-task-success", "--task-token", "{used_token}", "--task-output", "{"),
         2, "error: InvalidOutput: "),
    Case("task output on stdin that is not UTF-8",
         ("send-task-success", "--task-token", "{used_token}", "--task-output", "@-"), 2,
         "error: InvalidOutput: standard input is not UTF-8 text (byte 0xc3 at offset 0)",
         stdin=b"\xc3(", shown_stdin="bytes c3 28"),
    Case("an execution name AWS refuses", ("start", "m.yaml", "--name", "a b"), 2,
         "error: InvalidName: invalid execution name 'a b'"),
    # definitions
    Case("definition file that does not exist", ("run", "nope.yaml"), 2,
         "error: UsageError: cannot read nope.yaml: No such file or directory"),
    Case("invalid definition", ("run", "bad.yaml"), 2,
         "bad.yaml:5:11: error[SM203] "),
    Case("definition that is not UTF-8", ("start", "latin1.yaml"), 2,
         "latin1.yaml:1:13: error[SM001] the file is not UTF-8 text (byte 0xe9 here); save it as UTF-8"),
    # what the engine refuses
    Case("unknown execution ARN", ("describe", EXECUTION), 1,
         f"error: ExecutionDoesNotExist: no execution has the ARN '{EXECUTION}'"),
    Case("unknown execution name", ("history", "nope"), 1,
         "error: ExecutionDoesNotExist: no execution has the ARN or name 'nope'"),
    Case("starting a name already used", ("start", "m.yaml", "--name", "done"), 1,
         "error: ExecutionAlreadyExists: execution 'done' of 'm' already exists and has closed (SUCCEEDED)"),
    Case("unknown task token", ("send-task-success", "--task-token", "nope", "--task-output", "{}"), 1,
         "error: InvalidToken: "),
    Case("task token already used", ("send-task-failure", "--task-token", "{used_token}", "--error", "E"), 1,
         "error: TaskTimedOut: "),
    # databases
    Case("--db that is not a URL", ("list", "--db", "notaurl"), 2,
         "error: InvalidDatabaseUrl: 'notaurl' is not a database URL; give sqlite:///path/to/file.db, "
         "a path ending in .db or .sqlite, or postgresql://user@host/database"),
    Case("unsupported database scheme", ("list", "--db", "mysql://me@host/db"), 2,
         "error: InvalidDatabaseUrl: unsupported database scheme 'mysql'"),
    Case("mistyped database path (read command)", ("describe", DONE, "--db", "typo.db"), 1,
         "error: DatabaseUnavailable: no database at typo.db (nothing was created)"),
    Case("database in a folder that does not exist", ("start", "m.yaml", "--db", "sqlite:///nodir/x.db"), 1,
         "error: DatabaseUnavailable: cannot create the database nodir/x.db: the folder nodir does not exist"),
    Case("corrupted SQLite file", ("list", "--db", "garbage.db"), 1,
         "error: DatabaseUnavailable: cannot use the database garbage.db: file is not a database"),
    Case("SQLite file of another program", ("list", "--db", "other.db"), 1,
         "error: DatabaseUnavailable: other.db is not a statemill database (no schema)"),
    Case("PostgreSQL on a wrong port", ("list", "--db", "postgresql://postgres@127.0.0.1:1/statemill"), 1,
         "error: DatabaseUnavailable: cannot use the database postgresql://postgres@127.0.0.1:1/statemill: "
         "connection failed"),
    Case("PostgreSQL with an unknown user", ("list", "--db", "postgresql://no_such_user@127.0.0.1:5432/postgres"),
         1, "error: DatabaseUnavailable: cannot use the database postgresql://no_such_user@127.0.0.1:5432/postgres"),
    Case("PostgreSQL database that does not exist",
         ("list", "--db", "postgresql://postgres@127.0.0.1:5432/no_such_database"), 1,
         "error: DatabaseUnavailable: cannot use the database postgresql://postgres@127.0.0.1:5432/no_such_database"),
    # handler modules
    Case("handler module that does not exist", ("run", "m.yaml", "--handlers", "nosuch"), 2,
         "error: InvalidHandlers: cannot import handler module 'nosuch': no module named 'nosuch'"),
    Case("handler module that raises at import", ("run", "m.yaml", "--handlers", "boom"), 2,
         "error: InvalidHandlers: handler module 'boom' failed to import: ZeroDivisionError: division by zero",
         extra=('boom.py", line 3, in <module>', "RATE = 1 / 0")),
    Case("handler module with a syntax error", ("run", "m.yaml", "--handlers", "broken"), 2,
         "error: InvalidHandlers: handler module 'broken' failed to import: SyntaxError: ",
         extra=('broken.py", line 1', "def echo(value:")),
    Case("HANDLERS value that is not a function", ("run", "m.yaml", "--handlers", "not_callable"), 2,
         "error: InvalidHandlers: not_callable.HANDLERS['echo'] is 42, not a function"),
    Case("handler module that registers nothing", ("run", "m.yaml", "--handlers", "empty"), 2,
         "error: InvalidHandlers: handler module 'empty' has no HANDLERS mapping and registered no handler"),
    # usage
    Case("unknown option", ("list", "--colour"), 2,
         "error: UsageError: No such option '--colour'. (see `statemill list --help`)"),
    Case("duration prune does not understand", ("prune", "--older-than", "soon"), 2,
         "error: UsageError: Invalid value for '--older-than': 'soon' is not a duration like 30d, 12h, 90m or 3600s"),
]

M_YAML = "StartAt: A\nStates:\n  A:\n    Type: Pass\n    Result: {zero: 0, no: false, empty: '', nothing: null}\n" \
         "    End: true\n"
ASK_YAML = "StartAt: Ask\nStates:\n  Ask:\n    Type: Task\n    Resource: ask.waitForTaskToken\n" \
           "    Parameters: {token.$: $$.Task.Token}\n    End: true\n"
FILES = {
    "m.yaml": M_YAML.encode(),
    "ask.yaml": ASK_YAML.encode(),
    "bad.yaml": b"StartAt: A\nStates:\n  A:\n    Type: Pass\n    Next: Shipp\n  Ship:\n    Type: Succeed\n",
    "latin1.yaml": "Comment: caf\u00e9\nStartAt: A\nStates: {A: {Type: Succeed}}\n".encode("latin-1"),
    "latin1.json": '{"name": "caf\u00e9"}'.encode("latin-1"),
    "big.json": b'{"blob": "' + b"x" * 300_000 + b'"}',
    "garbage.db": bytes(range(256)) * 64,
    "boom.py": b"import os\n\nRATE = 1 / 0\n",
    "broken.py": b"def echo(value:\n    return value\n",
    "not_callable.py": b'HANDLERS = {"echo": 42}\n',
    "empty.py": b'"""A module that forgot its HANDLERS."""\nVALUE = 0\n',
}


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> tuple[Path, str]:
    """A folder with the files above and a statemill.db holding execution m:done and a used task token."""
    from statemill.engine import Engine
    folder = tmp_path_factory.mktemp("bad-input")
    for name, content in FILES.items():
        (folder / name).write_bytes(content)
    other = sqlite3.connect(folder / "other.db")
    other.execute("CREATE TABLE notes (text TEXT)")
    other.commit()
    other.close()
    engine = Engine(f"sqlite:///{folder / 'statemill.db'}")
    tokens: list[str] = []
    engine.handler("ask")(lambda value: tokens.append(value["token"]))
    engine.run(str(folder / "m.yaml"), {}, name="done", machine_name="m")
    engine.register(str(folder / "ask.yaml"), "ask")
    arn = engine.start("ask", {}, name="asked")["executionArn"]
    worker = engine.worker(poll_seconds=0.01)
    try:
        worker.run(until=lambda: bool(tokens))
    finally:
        worker.close()
    engine.send_task_success(tokens[0], "{}")
    engine.wait(arn, poll_seconds=0.01)
    engine.db.dispose()
    return folder, tokens[0]


def state_of(folder: Path) -> dict[str, str]:
    """Every file (SQLite's -wal/-shm aside) and its content; databases by their rows."""
    found = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith(("-wal", "-shm", "__pycache__")):
            continue
        if path.name.endswith(".db") and path.name != "garbage.db":
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            found[path.name] = "\n".join(conn.iterdump())
            conn.close()
        else:
            found[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.mark.parametrize("case", CASES, ids=[c.what.replace(" ", "-") for c in CASES])
def test_bad_input_gets_one_line_and_its_exit_code_and_changes_nothing(case: Case, template, tmp_path):
    folder, used_token = template
    work = tmp_path / "w"
    shutil.copytree(folder, work)
    before = state_of(work)
    args = [a.replace("{used_token}", used_token) for a in case.args]
    done = statemill(*args, cwd=work, stdin=case.stdin)
    assert (done.returncode, done.stdout) == (case.code, ""), done.stderr
    assert case.message in done.stderr
    assert "Traceback" not in done.stderr and "sqlalchemy" not in done.stderr
    for text in case.extra:
        assert text in done.stderr
    if not case.extra:
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert state_of(work) == before


# ------------------------------------------------------------------------------------------- the README's table
def render() -> str:
    """The matrix as a Markdown table."""
    def cell(text: str) -> str:
        return "`" + text.replace("|", "\\|") + "`" if text else ""

    rows = ["| bad input | command | exit | the user sees |", "|---|---|---|---|"]
    for case in CASES:
        line = "statemill " + " ".join(_quoted(a).replace("{used_token}", "USED_TOKEN") for a in case.args)
        if case.stdin is not None:
            line += f"  (stdin: {case.shown_stdin})"
        rows.append(f"| {case.what} | {cell(line)} | {case.code} | {cell(case.message)} |")
    return "\n".join(rows)


def _quoted(arg: str) -> str:
    import shlex
    return shlex.quote(arg)


def readme_block(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def test_readme_matrix_is_rendered_from_the_cases():
    assert readme_block(README.read_text(encoding="utf-8")) == render(), \
        "the README's bad-input table is stale: run `python tests/test_bad_input.py --write-readme`"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-readme"]:
        sys.exit("usage: python tests/test_bad_input.py --write-readme")
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    README.write_text(f"{head}{START}\n{render()}\n{END}{rest.split(END, 1)[1]}", encoding="utf-8")
    print(f"rewrote the bad-input table in {README}")
