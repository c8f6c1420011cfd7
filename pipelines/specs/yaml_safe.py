"""YAML or JSON text → plain JSON-compatible documents, without the traps.

Safe loading alone still lets through alias bombs ("billion laughs": a few
hundred bytes that expand to gigabytes when walked), nesting deep enough to
overflow the stack, a few megabytes of tiny values that take gigabytes once
built (parsed YAML costs about 400 bytes a value), duplicate keys (YAML keeps the
last one silently; in a DAG that hides a task) and values JSON cannot hold
(timestamps, sets, bytes). kfp output uses none of these, so the caps are small.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from pipelines.specs.errors import SpecError

MAX_ALIASES = 100
MAX_ALIAS_NODES = 10_000
MAX_DEPTH = 100
MAX_DOCUMENTS = 2  # the pipeline, then an optional platform spec (kfp-kubernetes)
# Keys, items and scalars of all documents together. A 500-task pipeline from kfp 2 holds
# about 41,000; 100,000 (some 1,200 tasks, already more than one Argo Workflow object can
# hold in etcd) built from YAML take up to 70 MB and a second of the server's time.
MAX_VALUES = 100_000

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


def parse(text: str, utf8: bytes | None = None) -> list[Any]:
    """The documents in ``text`` (at most two); JSON is read as JSON, anything else as YAML.
    ``utf8``, the same text as the bytes it was decoded from, is what libyaml reads if given:
    from ``text`` it would first make a UTF-8 copy of it (32 MB more for a 32 MB upload)."""
    source = text if utf8 is None else utf8
    if text.lstrip()[:1] in ("{", "["):
        # Every value takes at least a byte of its own: only a longer text can hold too many.
        if len(text) > MAX_VALUES and _json_values_at_most(text) > MAX_VALUES:
            raise _too_many("The JSON")
        try:
            document = json.loads(text, object_pairs_hook=_json_object)
        except json.JSONDecodeError as exc:
            json_error = exc
        except RecursionError as exc:
            raise SpecError(f"The JSON is nested more than {MAX_DEPTH} levels deep") from exc
        else:
            check_shape(document)
            return [document]
        try:
            return _parse_yaml(source)
        except SpecError:
            # Flow-style YAML starts like JSON too; if neither reads it, JSON's words fit better.
            raise SpecError(f"JSON syntax error at line {json_error.lineno}, column "
                            f"{json_error.colno}: {json_error.msg}") from json_error
    return _parse_yaml(source)


def check_shape(document: Any) -> None:
    """Refuse a document nested more than MAX_DEPTH levels or holding more than MAX_VALUES
    values, counted as the YAML scan counts them (walked without recursion)."""
    stack, values = [(document, 1)], 0
    while stack:
        value, depth = stack.pop()
        values += 1
        if isinstance(value, dict):
            children = value.values()
            values += len(value)  # the keys
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise SpecError(f"The document is nested more than {MAX_DEPTH} levels deep")
        if values > MAX_VALUES:
            raise _too_many("The document")
        stack.extend((child, depth + 1) for child in children)


def _too_many(what: str, where: str = "") -> SpecError:
    return SpecError(f"{what} holds more than {MAX_VALUES} values (keys, list items and "
                     f"scalars){where}; a pipeline of 500 tasks holds about 41000")


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _json_values_at_most(text: str) -> int:
    """As many values as the JSON text holds or more, counted without building any: one
    for the top value, one for each comma (a list's values after its first), each "[" (a
    list's first value) and two for each colon (a key and its value). For a text over the
    cap, the commas, brackets and colons inside its strings are taken off again."""

    def marks(part: str) -> int:
        return part.count(",") + part.count("[") + 2 * part.count(":")

    rough = 1 + marks(text)
    if rough <= MAX_VALUES:
        return rough
    return rough - sum(marks(string.group()) for string in _JSON_STRING.finditer(text))


def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise SpecError(f"JSON object has the key '{key}' twice")
        result[key] = value
    return result


def _parse_yaml(source: str | bytes) -> list[Any]:
    try:
        _check_events(source)
        return list(yaml.load_all(source, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        raise SpecError(_describe(exc)) from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML error: {exc}") from exc
    except RecursionError as exc:
        raise SpecError(f"The YAML is nested more than {MAX_DEPTH} levels deep") from exc


def _check_events(source: str | bytes) -> None:
    """One pass over the event stream, before anything is built: counts documents, nesting,
    values, aliases and what the aliases would expand to (each anchor's size includes the
    aliases inside it, so nine levels of nine aliases count as 9⁹ nodes, not 81), so a bomb
    is refused without being expanded."""
    sizes: dict[str, int] = {}  # anchor → nodes it stands for
    open_sizes, open_anchors = [0], [None]  # the collections being read, innermost last
    aliases = expanded = documents = values = 0
    for event in yaml.parse(source, Loader=_Loader):
        kind = type(event)
        if kind is yaml.ScalarEvent or kind in _OPENS:
            values += 1
            if values + expanded > MAX_VALUES:
                raise _too_many("The YAML", f" by line {event.start_mark.line + 1}")
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
