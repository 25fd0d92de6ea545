"""YAML definitions for ``source.parse_text``: PyYAML's safe loader, refusing what JSON cannot carry, with the
position of every node. A module of its own so that PyYAML is imported only when a YAML file is read."""
from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

import yaml

from .jsonvalue import MAX_DEPTH
from .source import (MAX_DEFINITION_BYTES, Position, SourceError, SourceMap, _long_number, _too_deep_message,
                     _utf8_size, join_pointer, not_json_number)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML loading where timestamps stay strings (ASL compares them as RFC 3339 text)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# JSON (and YAML 1.2) numbers such as 1e3 or 2E-1 are floats; YAML 1.1 would keep them as text.
_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def parse_yaml(text: str) -> tuple[Any, SourceMap]:
    """``text`` as YAML: its value and where each node starts; SourceError as ``source.parse_text`` says."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        source = SourceMap(text, "yaml", {}, {})
        if root is not None:
            _Expansion(loader).measure(root, 1)
        value = _construct(loader, root, "", source) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Position(mark.line + 1, mark.column + 1) if mark else None
        if "nesting depth" in str(exc.problem):  # libyaml's own bound, far above ours
            raise SourceError(_too_deep_message(), where, code="SM004") from None
        raise SourceError(f"invalid YAML: {exc.problem or exc.context}", where) from None
    except yaml.YAMLError as exc:
        raise SourceError(f"invalid YAML: {exc}", None) from None
    except RecursionError:  # a merge-key (<<) chain thousands of links long: nothing else recurses unbounded
        raise SourceError(_too_deep_message("merge keys (<<) chain"), None, code="SM004") from None
    finally:
        loader.dispose()
    return value, source


def _mark(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_YAML + t for t in ("str", "int", "float", "bool", "null"))
_JSON_TAGS = _SCALAR_TAGS | {_YAML + "seq", _YAML + "map"}


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_YAML):] if tag.startswith(_YAML) else tag


class _Expansion:
    """Sizes the composed YAML as the JSON it stands for, aliases expanded, before anything is built from it.

    Each node is measured once (aliases share their anchor's node), so a "billion laughs" file costs what its
    text costs to refuse. Refuses what JSON cannot carry (tags such as ``!!binary``, ``!!set``, ``!custom``;
    NaN, Infinity, overflowing numbers), a value over AWS's 1 MiB once expanded, nesting deeper than MAX_DEPTH
    and an alias inside its own anchor.
    """

    def __init__(self, loader: yaml.Loader):
        self.loader = loader
        self.known: dict[int, tuple[int, int]] = {}  # id(node) -> (bytes as compact JSON, levels of nesting)
        self.open: set[int] = set()  # nodes being measured: meeting one again means an alias loops

    def measure(self, node: yaml.Node, depth: int) -> int:
        """The node's size in bytes as compact JSON; ``depth`` is the level it is used at (the root is 1)."""
        known = self.known.get(id(node))
        if known is None:
            if id(node) in self.open:
                raise SourceError("a YAML alias refers to a node that contains it, so the value would be infinitely "
                                  "deep", _mark(node), code="SM004")
            if isinstance(node, yaml.CollectionNode) and depth > MAX_DEPTH:
                raise SourceError(_too_deep_message(), _mark(node), code="SM004")
            self.open.add(id(node))
            known = self.known[id(node)] = self._measure(node, depth)
            self.open.discard(id(node))
        size, levels = known
        if depth - 1 + levels > MAX_DEPTH:  # an anchored value, used deeper than where it was first measured
            raise SourceError(_too_deep_message("objects and arrays (YAML aliases expanded) nest"), _mark(node),
                              code="SM004")
        if size > MAX_DEFINITION_BYTES:
            raise SourceError(f"this value is {size:,} bytes as JSON once its YAML aliases are expanded; AWS allows "
                              f"a definition at most 1 MiB ({MAX_DEFINITION_BYTES:,} bytes)", _mark(node), code="SM003")
        return size

    def _measure(self, node: yaml.Node, depth: int) -> tuple[int, int]:
        if node.tag not in _JSON_TAGS:
            raise SourceError(f"the YAML tag {_tag_name(node.tag)} has no JSON equivalent; a definition holds only "
                              "strings, numbers, booleans, null, objects and arrays", _mark(node), code="SM005")
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            size, levels = max(2, 1 + 2 * len(node.value)), 0  # braces, colons and commas
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):  # kept as its text: `1:` and `.nan:` are string keys
                    if key_node.tag not in _SCALAR_TAGS:
                        raise SourceError(f"the YAML tag {_tag_name(key_node.tag)} has no JSON equivalent; keys "
                                          "are plain strings", _mark(key_node), code="SM005")
                    size += _json_size(key_node.value)
                else:  # refused, with its pointer, when the value is built
                    size += self.measure(key_node, depth + 1)
                size += self.measure(value_node, depth + 1)
                levels = max(levels, self.known[id(value_node)][1])
            return size, levels + 1
        if isinstance(node, yaml.SequenceNode):
            size, levels = 1 + max(len(node.value), 1), 0  # brackets and commas
            for item in node.value:
                size += self.measure(item, depth + 1)
                levels = max(levels, self.known[id(item)][1])
            return size, levels + 1
        return _json_size(self._scalar(node)), 0

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        """The scalar's value; SourceError for a number JSON cannot carry."""
        try:
            value = self.loader.construct_object(node)
        except ValueError:  # an integer longer than Python converts
            raise SourceError(_long_number(sys.get_int_max_str_digits()), _mark(node), code="SM006") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise SourceError(not_json_number(node.value), _mark(node), code="SM006")
        return value


def _json_size(value: Any) -> int:
    return _utf8_size(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _construct(loader: yaml.Loader, node: yaml.Node, pointer: str, source: SourceMap) -> Any:
    source._values[pointer] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise SourceError("mapping keys must be plain strings", _mark(key_node), pointer, "SM001")
            key = key_node.value  # keys are always strings in ASL (`On:` or `1:` stays text)
            child = join_pointer(pointer, key)
            if key in result:
                raise SourceError(f'duplicate key "{key}"', _mark(key_node), child, "SM002")
            source._keys[child] = _mark(key_node)
            result[key] = _construct(loader, value_node, child, source)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, join_pointer(pointer, i), source) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
