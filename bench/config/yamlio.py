"""The one YAML reader and writer of colorbench: every file it reads (configs, ablation and study
files, profile presets, run directories' config.yaml, ablation snapshots, published numbers) and
every ``--set`` value go through :func:`loads` / :func:`read`.

It is PyYAML's safe loader with what a hand-written config never needs refused, so that bad
input is one clean line rather than a hang, a traceback or a silent surprise:

* anchors and aliases (``&name`` / ``*name``): a 1 KB "billion laughs" file expands into
  gigabytes; refusing them at the first anchor costs nothing;
* duplicate keys in a mapping (PyYAML keeps the last one silently);
* nesting deeper than :data:`MAX_DEPTH` (20,000 ``[`` would exhaust Python's stack);
* files larger than :data:`MAX_BYTES` and documents of more than :data:`MAX_NODES` values (PyYAML parses
  some 30,000 values a second: a 50 MB list would take half an hour);
* files that are not UTF-8 text;
* values that are not JSON types: tags such as ``!!binary``, ``!!set``, ``!!omap`` and the merge key
  ``<<`` are refused, keys must be text, and a date or time (``2020-01-01``) is read as the text it
  is written as, so that every value read can be written as JSON and compared as such.

Every problem is a :class:`YamlError` whose message is one line, ``source:line:column: problem``
(1-based, as editors count).  :func:`dumps` never writes anchors, so what colorbench writes it
can read back.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

MAX_DEPTH = 100  # nested sequences/mappings; a config needs 3
MAX_BYTES = 1 << 20  # the largest file colorbench ships (published.yaml) is 15 KB
MAX_NODES = 50_000  # values in one document; published.yaml has about 2,000

# The tags of JSON's types.  Dates and times (and YAML 1.1's "=" value) are read as their text.
_JSON_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map"))
_AS_TEXT = frozenset(("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"))
_STR = "tag:yaml.org,2002:str"


class YamlError(ValueError):
    """A YAML text or file that cannot be read; the message is one line naming its source, line and column."""


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without anchors, aliases, duplicate keys or non-JSON types, with nesting and size limits."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise ComposerError(None, None, f"alias *{event.anchor}: anchors and aliases are not allowed "
                                "(write the value out)", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise ComposerError(None, None, f"anchor &{event.anchor}: anchors and aliases are not allowed "
                                "(write the value out)", event.start_mark)
        if self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise ComposerError(None, None, f"more than {MAX_NODES} values; colorbench reads no file this large",
                                event.start_mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        return _json_typed(node, is_key=isinstance(parent, yaml.MappingNode) and index is None)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = first.get(key)
                except TypeError:  # unhashable: the safe constructor says so below
                    continue
                if seen is not None:
                    raise ConstructorError(None, None, f"duplicate key {key!r} (first at line {seen.line + 1}); "
                                           "each key may appear once", key_node.start_mark)
                first[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def _json_typed(node: yaml.Node, is_key: bool) -> yaml.Node:
    """``node`` if its value is of a JSON type (a date or time retagged as text); a ComposerError otherwise."""
    if node.tag in _AS_TEXT and isinstance(node, yaml.ScalarNode):
        node.tag = _STR  # the scalar's text as written: "2020-01-01" stays "2020-01-01"
    if node.tag == "tag:yaml.org,2002:merge":
        raise ComposerError(None, None, "merge key <<: not allowed (write the keys out; each key may appear once)",
                            node.start_mark)
    if node.tag not in _JSON_TAGS:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise ComposerError(None, None, f"tag {tag}: not allowed; colorbench reads text, numbers, true/false, null, "
                            "lists and mappings", node.start_mark)
    if is_key and node.tag != _STR:
        raise ComposerError(None, None, f"key {node.value!r} is not text (quote it, e.g. \"{node.value}\")"
                            if isinstance(node, yaml.ScalarNode) else "a key must be text, not a list or mapping",
                            node.start_mark)
    return node


def loads(text: str, source: str = "<string>") -> Any:
    """The value of the YAML ``text``; :class:`YamlError` naming ``source`` when it cannot be read."""
    loader = None
    try:
        loader = _Loader(text)  # checks every character already
        return loader.get_single_data()
    except yaml.YAMLError as err:
        raise YamlError(_one_line(err, source)) from None
    except RecursionError:
        raise YamlError(f"{source}: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def read(path: str | Path) -> Any:
    """The value of the YAML file ``path``.

    :class:`YamlError` when it is not UTF-8 text or not valid YAML; ``OSError`` (with the path)
    when it cannot be read at all, e.g. missing or a directory.
    """
    path = Path(path)
    with open(path, "rb") as handle:  # a FIFO (``--config <(...)``) is read as the stream it is; a device is capped
        data = handle.read(MAX_BYTES + 1)
    return decode(data, str(path))


def decode(data: bytes, source: str) -> Any:
    """The value of the YAML document in the UTF-8 bytes ``data`` read from ``source`` (see :func:`loads`)."""
    if len(data) > MAX_BYTES:
        raise YamlError(f"{source}: larger than {MAX_BYTES} bytes; colorbench reads no YAML file this large")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise YamlError(f"{source}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})") from None
    return loads(text, source)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # a value used twice is written twice, never as &id001/*id001
        return True


def dumps(data: Any, **options: Any) -> str:
    """``yaml.safe_dump`` (keys in their order) without anchors and aliases, so :func:`loads` reads it back."""
    return yaml.dump(data, Dumper=_Dumper, **{"sort_keys": False, **options})


def _one_line(err: yaml.YAMLError, source: str) -> str:
    """``source:line:column: problem`` (1-based), with the context on the same line."""
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "not valid YAML"
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        message = f"{where}: {problem}"
        if err.problem and err.context:
            context_mark = err.context_mark
            at = f" at line {context_mark.line + 1}, column {context_mark.column + 1}" if context_mark else ""
            message += f" ({err.context}{at})"
        return " ".join(message.split())
    if isinstance(err, yaml.reader.ReaderError):
        character = err.character if isinstance(err.character, int) else ord(err.character)
        return f"{source}: character #x{character:04x} at position {err.position}: {err.reason}"
    return f"{source}: " + " ".join(str(err).split())
