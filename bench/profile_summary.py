"""Summarise a py-spy profile recorded with ``--format raw``: where the samples' own time went.

    py-spy record -r 200 --format raw -o prof.txt -- statemill run loop.json --input '{"i": 0}' -q
    python bench/profile_summary.py prof.txt [--top 15] [--thread statemill-frame]

Prints the share of samples by package (the innermost frame's file: sqlalchemy, sqlite3/psycopg, json, statemill's
modules, the rest) and the top functions by self and by inclusive time.
"""
from __future__ import annotations

import argparse
import re
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def package(file: str) -> str:
    """A short name for where ``file`` belongs."""
    for marker, name in (("sqlalchemy", "sqlalchemy"), ("psycopg", "psycopg"), ("/json/", "json"),
                         ("sqlite3", "sqlite3"), ("threading", "threading"), ("concurrent", "threading")):
        if marker in file:
            return name
    if "statemill" in file or "/engine/" in file or "/cli/" in file:
        return "statemill:" + file.rsplit("/", 1)[-1]
    return file.rsplit("/", 1)[-1]


def parse(path: str, thread: str | None):
    """(stack of (function, file) outermost first, samples) per line of a raw py-spy profile."""
    for line in open(path, encoding="utf-8"):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if thread and not any(thread in f for f in frames[:1]):
            continue
        parsed = []
        for frame in frames:
            match = _FRAME.match(frame)
            parsed.append((match["func"], match["file"]) if match else (frame, ""))
        yield parsed, int(count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--thread", help="only samples whose first frame (the thread) contains this text")
    args = parser.parse_args(argv)
    by_package, self_time, inclusive, total = Counter(), Counter(), Counter(), 0
    for stack, count in parse(args.profile, args.thread):
        stack = [f for f in stack if f[1]]  # py-spy's thread/process labels carry no file
        if not stack:
            continue
        total += count
        func, file = stack[-1]
        by_package[package(file)] += count
        self_time[f"{func} ({package(file)})"] += count
        for name in {f"{f} ({package(p)})" for f, p in stack}:
            inclusive[name] += count
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples")
    print("self time by package:")
    for name, count in by_package.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {name}")
    print("top functions, self time:")
    for name, count in self_time.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {name}")
    print("top functions, inclusive:")
    for name, count in inclusive.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
