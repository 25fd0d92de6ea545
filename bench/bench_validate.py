"""Validation speed on a large definition: ``loader.validate(path)`` and ``loader.load(path)`` (what
``statemill validate`` and registering a definition do) on a generated ~1 MB, 2,000-state JSON file, the same
definition as YAML, and the time of each pass (parse, JSON Schema, graph checks, compile) against ``json.loads``."""
from __future__ import annotations

import json
import time

import yaml
from _common import Context, Result, profile, timed
from gen_definition import count_states, dump, generate

from statemill.engine import loader

STATES = 2000


def _phases(text: str, name: str) -> dict[str, float] | None:
    """Seconds of each pass of the loader, called one by one; None when the loader's internals moved on."""
    try:
        from statemill.engine.source import parse_text
        out: dict[str, float] = {}
        start = time.perf_counter()
        document, where = parse_text(text, "json")
        out["parse"] = time.perf_counter() - start
        start = time.perf_counter()
        errors = list(loader._validator().iter_errors(document))
        out["schema"] = time.perf_counter() - start
        analysis = loader._Analysis(document, where, name)
        start = time.perf_counter()
        analysis.all_names = set(loader._all_state_names(document))
        analysis.check_scope(document, "", {})
        out["graph"] = time.perf_counter() - start
        start = time.perf_counter()
        loader._Compiler(analysis).machine(document)
        out["compile"] = time.perf_counter() - start
        if errors or analysis.failed:
            return None
        return out
    except (AttributeError, ImportError, TypeError):
        return None


def run(ctx: Context) -> None:
    folder = ctx.tmp / "validate"
    folder.mkdir(exist_ok=True)
    definition = generate(STATES)
    text = dump(definition)
    path = folder / "big.asl.json"
    path.write_text(text, encoding="utf-8")
    yaml_path = folder / "big.asl.yaml"
    if not ctx.quick:
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        yaml_path.write_text(yaml.dump(definition, Dumper=dumper, sort_keys=False, width=120), encoding="utf-8")
    size = f"{count_states(definition):,} states, {len(text.encode()) / 1e6:.2f} MB"

    times, _ = timed(lambda: json.loads(text), 3)
    ctx.add(Result("validate.json", "validate", "json.loads of the file (floor)", 1000 * min(times), "ms",
                   higher_is_better=False, short="json.loads"))
    repeat = ctx.pick(3, 1)
    times, diagnostics = timed(lambda: loader.validate(path), repeat)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise RuntimeError(f"the generated definition is invalid: {errors[0].format()}")
    ctx.add(Result("validate.validate", "validate", "loader.validate(path), JSON", 1000 * min(times), "ms",
                   higher_is_better=False, against=("validate.json",), short="validate",
                   note=f"{size}; {len(diagnostics)} warnings; = statemill validate without start-up; "
                        f"best of {len(times)}"))
    repeat = ctx.pick(2, 1)  # the rest: fewer rounds, to keep the full run short
    times, _ = timed(lambda: loader.load(path), repeat)
    ctx.add(Result("validate.load", "validate", "loader.load(path), JSON", 1000 * min(times), "ms",
                   higher_is_better=False, against=("validate.validate",),
                   note="what Engine.register / Engine.run do on every call"))
    if not ctx.quick:
        times, _ = timed(lambda: loader.validate(yaml_path), repeat)
        ctx.add(Result("validate.yaml", "validate", "loader.validate(path), same as YAML", 1000 * min(times), "ms",
                       higher_is_better=False, against=("validate.validate",),
                       note=f"{yaml_path.stat().st_size / 1e6:.2f} MB of YAML (full mode only)"))

    runs = [_phases(text, str(path)) for _ in range(repeat)]
    phases = None if None in runs else {k: min(r[k] for r in runs) for k in runs[0]}  # type: ignore[index]
    if phases is None:
        ctx.add(Result("validate.phases", "validate", "per-pass times unavailable", 0, "ms",
                       note="the loader's internals changed; see --profile"))
    else:
        total = sum(phases.values())
        labels = {"parse": "parse (json + duplicate-key check)", "schema": "JSON Schema (jsonschema)",
                  "graph": "graph checks (names, targets, reachability)",
                  "compile": "compile (paths, templates, intrinsics, rules)"}
        for name, seconds in phases.items():
            ctx.add(Result(f"validate.{name}", "validate", f"  pass: {labels[name]}", 1000 * seconds, "ms",
                           higher_is_better=False, against=("validate.json",),
                           note=f"{100 * seconds / total:.0f} % of the passes"))
    if ctx.profile:
        _, report = profile(lambda: loader.validate(path))
        ctx.report("profile: loader.validate on the generated JSON definition", report)


BENCHMARKS = {"validate": ("validate/load a generated ~1 MB, 2,000-state definition (JSON and YAML)", run)}
