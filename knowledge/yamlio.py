"""YAML for the knowledge base: safe, and a mapping with a key given twice is refused (PyYAML would keep the
last one silently, so a second `年限:` in lexicon.yaml used to override the first without anyone noticing)."""
from __future__ import annotations

import functools
from pathlib import Path

import yaml


class DuplicateKeyError(yaml.YAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise DuplicateKeyError(f"duplicate key {key!r} (line {seen[key] + 1} and line {key_node.start_mark.line + 1})")
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def loads(text: str):
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def load(path: Path | str):
    return loads(Path(path).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def pipeline() -> dict:
    """knowledge/pipeline.yaml: every tuned value of the question answering, with how it was chosen."""
    return load(Path(__file__).with_name("pipeline.yaml"))
