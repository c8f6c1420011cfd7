"""YAML or JSON text → plain JSON-compatible documents, without the traps.

Safe loading alone still lets through alias bombs ("billion laughs": a few
hundred bytes that expand to gigabytes when walked), nesting deep enough to
overflow the stack, duplicate keys (YAML keeps the last one silently; in a DAG
that hides a task) and values JSON cannot hold (timestamps, sets, bytes). kfp
output uses none of these, so the caps are small.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from pipelines.specs.errors import SpecError

MAX_ALIASES = 100
MAX_ALIAS_NODES = 10_000
MAX_DEPTH = 100
MAX_DOCUMENTS = 2  # the pipeline, then an optional platform spec (kfp-kubernetes)

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):
    """Safe loading that refuses duplicate keys and keeps everything JSON-compatible."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key_node.value}'", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _as_text(loader: yaml.Loader, node: yaml.Node) -> str:
    return loader.construct_scalar(node)


def _refuse(loader: yaml.Loader, node: yaml.Node) -> None:
    raise yaml.constructor.ConstructorError(
        None, None, f"a {node.tag.rsplit(':', 1)[-1]} value cannot be stored as JSON",
        node.start_mark)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _as_text)
_Loader.add_constructor("tag:yaml.org,2002:binary", _refuse)
_Loader.add_constructor("tag:yaml.org,2002:set", _refuse)


def parse(text: str) -> list[Any]:
    """The documents in ``text`` (at most two); JSON is read as JSON, anything else as YAML."""
    if text.lstrip()[:1] in ("{", "["):
        try:
            document = json.loads(text, object_pairs_hook=_json_object)
        except json.JSONDecodeError as exc:
            json_error = exc
        except RecursionError as exc:
            raise SpecError(f"The JSON is nested more than {MAX_DEPTH} levels deep") from exc
        else:
            check_depth(document)
            return [document]
        try:
            return _parse_yaml(text)
        except SpecError:
            # Flow-style YAML starts like JSON too; if neither reads it, JSON's words fit better.
            raise SpecError(f"JSON syntax error at line {json_error.lineno}, column "
                            f"{json_error.colno}: {json_error.msg}") from json_error
    return _parse_yaml(text)


def check_depth(document: Any) -> None:
    """Refuse a document nested more than MAX_DEPTH levels (walked without recursion)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise SpecError(f"The document is nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in children)


def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise SpecError(f"JSON object has the key '{key}' twice")
        result[key] = value
    return result


def _parse_yaml(text: str) -> list[Any]:
    try:
        _check_events(text)
        return list(yaml.load_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        raise SpecError(_describe(exc)) from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML error: {exc}") from exc
    except RecursionError as exc:
        raise SpecError(f"The YAML is nested more than {MAX_DEPTH} levels deep") from exc


def _check_events(text: str) -> None:
    """One pass over the event stream, before anything is built: counts documents, nesting,
    aliases and what the aliases would expand to (each anchor's size includes the aliases
    inside it, so nine levels of nine aliases count as 9⁹ nodes, not 81), so a bomb is
    refused without being expanded."""
    sizes: dict[str, int] = {}  # anchor → nodes it stands for
    open_sizes, open_anchors = [0], [None]  # the collections being read, innermost last
    aliases = expanded = documents = 0
    for event in yaml.parse(text, Loader=_Loader):
        kind = type(event)
        if kind is yaml.ScalarEvent:
            open_sizes[-1] += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif kind in _OPENS:
            open_sizes.append(1)
            open_anchors.append(event.anchor)
            if len(open_sizes) > MAX_DEPTH + 1:
                raise SpecError(f"The YAML is nested more than {MAX_DEPTH} levels deep "
                                f"(line {event.start_mark.line + 1})")
        elif kind in _CLOSES:
            size, anchor = open_sizes.pop(), open_anchors.pop()
            if anchor:
                sizes[anchor] = size
            open_sizes[-1] += size
        elif kind is yaml.AliasEvent:
            aliases += 1
            size = sizes.get(event.anchor, 1)  # an unknown anchor is the composer's error
            expanded += size
            open_sizes[-1] += size
            if aliases > MAX_ALIASES:
                raise SpecError(f"The YAML uses more than {MAX_ALIASES} aliases (*name, line "
                                f"{event.start_mark.line + 1}); pipelines never need that many")
            if expanded > MAX_ALIAS_NODES:
                raise SpecError(f"The YAML's aliases (*name) expand to more than "
                                f"{MAX_ALIAS_NODES} values (line {event.start_mark.line + 1}); "
                                "pipelines never need that many")
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > MAX_DOCUMENTS:
                raise SpecError(f"The YAML holds more than {MAX_DOCUMENTS} documents "
                                f"(the third starts at line {event.start_mark.line + 1}); "
                                "expected the pipeline and at most a platform spec")


_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _describe(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = exc.problem or exc.context or "invalid YAML"
    if exc.context and exc.problem:
        problem = f"{problem} ({exc.context})"
    return f"YAML error{where}: {problem}"
