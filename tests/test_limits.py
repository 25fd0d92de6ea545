"""Spec: hostile definitions and payloads are refused where they come in, with one clear line, never a traceback.

A definition is at most 1 MiB as JSON (AWS's hard quota; YAML aliases count expanded), nests at most 100 levels,
holds only what JSON can (no NaN or Infinity, no YAML tags such as ``!!binary``) and is UTF-8 text. Execution
inputs and SendTaskSuccess outputs nest at most 100 levels too and hold no NaN or Infinity (InvalidExecutionInput,
InvalidOutput). The located diagnostics of each code are specified in test_loader.py; here are the paths that read
a definition or a payload, and the bounds themselves.
"""
from __future__ import annotations

import resource
import subprocess
import time

import pytest
import sqlalchemy as sa

from statemill.engine import Engine, InvalidExecutionInput, loader
from statemill.engine.client import InvalidOutput, parse_input
from statemill.engine.errors import DefinitionError
from statemill.engine.jsonvalue import MAX_DEPTH
from statemill.engine.store.schema import executions
from statemill.engine.tokens import parse_output

from clitools import command
from test_loader import _alias_bomb

LATIN_1 = "StartAt: A\nStates:\n  A:\n    Type: Pass\n    Comment: caf\xe9\n    End: true\n".encode("latin-1")
NOT_UTF8 = "5:17: error[SM001] the file is not UTF-8 text (byte 0xe9 here)"


def nested(levels: int, leaf=0):
    """``levels`` arrays one inside the other around ``leaf``: ``nested(2)`` is ``[[0]]``."""
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def machine(result) -> dict:
    return {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": result, "End": True}}}


# ------------------------------------------------------------------------------------------ non-UTF-8 files
def test_validate_reports_a_latin_1_file_at_its_first_bad_byte(tmp_path):
    path = tmp_path / "cafe.yaml"
    path.write_bytes(LATIN_1)
    (diagnostic,) = loader.validate(path)
    assert diagnostic.format().startswith(f"{path}:{NOT_UTF8}")


@pytest.mark.parametrize("read", [
    pytest.param(lambda path: loader.load(path), id="load_a_path"),
    pytest.param(lambda path: loader.loads(path.read_bytes(), name=str(path)), id="loads_bytes"),
    pytest.param(lambda path: Engine(f"sqlite:///{path.with_suffix('.db')}").register(path), id="client_register"),
])
def test_every_api_that_reads_a_definition_raises_definition_error_for_non_utf8(tmp_path, read):
    path = tmp_path / "cafe.yaml"
    path.write_bytes(LATIN_1)
    with pytest.raises(DefinitionError) as raised:
        read(path)
    (diagnostic,) = raised.value.diagnostics
    assert diagnostic.format() == f"{path}:{NOT_UTF8}; save it as UTF-8"


@pytest.mark.parametrize("args, exit_code", [
    pytest.param(["validate"], 1, id="validate"),
    pytest.param(["run", "--db", "sqlite:///x.db"], 2, id="run"),
    pytest.param(["start", "--db", "sqlite:///x.db"], 2, id="start"),
    pytest.param(["render"], 2, id="render"),
])
def test_every_command_that_reads_a_definition_prints_one_located_line_for_non_utf8(tmp_path, args, exit_code):
    (tmp_path / "cafe.yaml").write_bytes(LATIN_1)
    done = subprocess.run([*command(), args[0], "cafe.yaml", *args[1:]], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == exit_code, done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "error" in line]
    assert lines[0] == f"cafe.yaml:{NOT_UTF8}; save it as UTF-8"
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------------------------------ YAML alias bombs
def test_a_nine_level_alias_bomb_is_refused_at_once_in_little_memory(tmp_path):
    """Before: 9 levels (387 million strings) ran past 870 MB and had to be killed. The child gets 1 GiB of
    address space so that a regression fails this test instead of exhausting the machine."""
    (tmp_path / "bomb.yaml").write_text(_alias_bomb(9), encoding="utf-8")

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    started = time.monotonic()
    done = subprocess.run([*command(), "validate", "bomb.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, preexec_fn=cap_memory)
    assert done.stdout.startswith("bomb.yaml:6:5: error[SM003] this value is 3,321,505 bytes as JSON once its YAML "
                                  "aliases are expanded"), done.stdout + done.stderr
    assert done.returncode == 1
    assert time.monotonic() - started < 20


def test_a_six_level_alias_bomb_is_measured_not_built():
    """Before: 7.9 s and 267 MB to build 531,441 strings, then a schema error for each anchor."""
    started = time.perf_counter()
    (diagnostic,) = loader.validates(_alias_bomb(6), name="bomb.yaml")
    assert diagnostic.code == "SM003"
    assert time.perf_counter() - started < 1.0


def test_aliases_that_stay_under_1_mib_still_load():
    text = ("StartAt: A\nStates:\n  A:\n    Type: Pass\n    End: true\n"
            "    Result: {zero: 0, no: false, empty: '', none: null, a: &lols [lol, lol], b: [*lols, *lols]}\n")
    compiled = loader.loads(text, name="ok.yaml")
    assert compiled.states["A"].result == {"zero": 0, "no": False, "empty": "", "none": None, "a": ["lol", "lol"],
                                           "b": [["lol", "lol"], ["lol", "lol"]]}


# ------------------------------------------------------------------------------------------ definitions as dicts
@pytest.mark.parametrize("definition, code, pointer", [
    pytest.param(machine(nested(MAX_DEPTH - 3)), None, None, id="exactly_100_levels_loads"),
    pytest.param(machine(nested(MAX_DEPTH - 2)), "SM004", "/States/A/Result" + "/0" * (MAX_DEPTH - 3),
                 id="101_levels_refused"),
    pytest.param(machine(nested(5000)), "SM004", "/States/A/Result" + "/0" * (MAX_DEPTH - 3),
                 id="5000_levels_refused_without_recursion_error"),
    pytest.param(machine({"zero": 0, "x": [False, float("nan")]}), "SM006", "/States/A/Result/x/1", id="nan"),
    pytest.param(machine([float("-inf")]), "SM006", "/States/A/Result/0", id="negative_infinity"),
    pytest.param(machine("x" * (1 << 20)), "SM003", "", id="over_1_MiB_as_json"),
])
def test_a_dict_definition_is_held_to_what_json_text_could_carry(definition, code, pointer):
    found = [(d.code, d.pointer) for d in loader.validate(definition)]
    assert found == ([] if code is None else [(code, pointer)])


def test_registering_a_dict_nested_5000_levels_is_a_definition_error(tmp_path):
    engine = Engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(DefinitionError) as raised:
        engine.register(machine(nested(5000)), "deep")
    assert [d.code for d in raised.value.diagnostics] == ["SM004"]


# ------------------------------------------------------------------------------------------ execution inputs
@pytest.mark.parametrize("text, says", [
    pytest.param("[" * 101 + "]" * 101, "nest more than 100 levels deep (at line 1 column 101)", id="101_levels"),
    pytest.param('{"a": "' + "[" * 500 + '", "b":' + "[" * 101 + "]" * 101 + "}", "at line 1 column 614",
                 id="brackets_inside_strings_do_not_count"),
    pytest.param("[" * 100_000 + "]" * 100_000, "nest more than 100 levels deep", id="100000_levels"),
    pytest.param("[0, 1e999]", "1e999 is out of the range of a double", id="overflowing_number"),
    pytest.param('{"x": -Infinity}', "-Infinity is not a JSON value", id="negative_infinity"),
    pytest.param("9" * 5000, "a number has more than 4,300 digits", id="integer_of_5000_digits"),
])
def test_parse_input_refuses_what_json_cannot_carry_or_nests_too_deep(text, says):
    with pytest.raises(InvalidExecutionInput) as raised:
        parse_input(text)
    assert says in str(raised.value)


def test_parse_input_accepts_exactly_100_levels_with_falsy_leaves():
    text = "[" * 99 + '{"zero": 0, "no": false, "empty": "", "none": null}' + "]" * 99
    assert parse_input(text) == nested(99, {"zero": 0, "no": False, "empty": "", "none": None})


@pytest.mark.parametrize("value, says", [
    pytest.param(nested(MAX_DEPTH + 1), "nests objects and arrays more than 100 levels deep", id="101_levels"),
    pytest.param(nested(5000), "nests objects and arrays more than 100 levels deep", id="5000_levels"),
    pytest.param({"x": float("nan")}, "not a JSON value", id="nan"),
])
def test_start_refuses_a_python_input_json_cannot_carry_and_writes_nothing(engine, value, says):
    engine.register(machine(None), "m")
    with pytest.raises(InvalidExecutionInput) as raised:
        engine.start("m", value)
    assert says in str(raised.value)
    with engine.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(executions)).scalar() == 0


# ------------------------------------------------------------------------------------------ SendTaskSuccess output
@pytest.mark.parametrize("output, says", [
    pytest.param("[" * 101 + "]" * 101, "nest more than 100 levels deep", id="text_101_levels"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "nest more than 100 levels deep", id="bytes_100000_levels"),
    pytest.param(nested(5000), "nest more than 100 levels deep", id="python_value_5000_levels"),
    pytest.param(nested(MAX_DEPTH + 1), "nest more than 100 levels deep", id="python_value_101_levels"),
    pytest.param("1e400", "out of the range of a double", id="overflowing_number"),
])
def test_send_task_success_output_is_bounded_like_an_input(output, says):
    with pytest.raises(InvalidOutput) as raised:
        parse_output(output, 10 * 1024 * 1024)
    assert says in str(raised.value)
