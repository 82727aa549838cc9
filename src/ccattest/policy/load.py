"""YAML policies to models, with errors that name the file, the key and the line."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigError
from .model import Policy

MAX_POLICY_BYTES = 1024 * 1024


def load_policy(path: Path | str) -> Policy:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read policy {path}", found=exc.strerror,
                          hint="write one with `ccattest policy init`") from None
    return parse_policy(data, source=str(path), base=path.parent)


def parse_policy(data: bytes | str, *, source: str = "<policy>", base: Path | None = None
                 ) -> Policy:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_POLICY_BYTES:
        raise ConfigError(f"{source}: policy is too large",
                          expected=f"at most {MAX_POLICY_BYTES} bytes", found=len(raw))
    try:
        text = raw.decode("utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: policy is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}{where}: policy is not valid YAML", found=problem) from None
    if root is not None:
        _reject_duplicate_keys(root, source)
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: a policy is a mapping of sections",
                          expected="keys such as common, software",
                          found=type(document).__name__)
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, root, source)) from None
    if policy.id is None:
        digest = hashlib.sha256(raw).hexdigest()[:16]
        policy = policy.model_copy(update={"id": f"{Path(source).stem}@{digest}"})
    return policy.resolve_files(base or Path.cwd())


def _describe(exc: ValidationError, root: yaml.Node | None, source: str) -> str:
    lines = [f"{source}: invalid policy"]
    for error in exc.errors():
        loc = error["loc"]
        key = ".".join(str(part) for part in loc) or "(top level)"
        line = _line_of(root, loc)
        where = f"line {line}, " if line else ""
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and the section it is in)"
        lines.append(f"  {where}{key}: {message}")
    return "\n".join(lines)


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node along `loc` that exists in the document."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line, child = key_node.start_mark.line + 1, value_node
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and 0 <= part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _reject_duplicate_keys(node: yaml.Node, source: str, seen_nodes: set[int] | None = None
                           ) -> None:
    # PyYAML keeps the last of two equal keys; in a policy that silently drops a rule.
    # Aliases are refused too: a policy has no need for them, and nested ones explode.
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:
        raise ConfigError(f"{source}:{node.start_mark.line + 1}: YAML aliases are not allowed "
                          "in a policy", hint="write the value out")
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                raise ConfigError(f"{source}:{line}: duplicate key {key_node.value!r}",
                                  hint=f"first defined on line {seen[key_node.value]}")
            seen[key_node.value] = line
            _reject_duplicate_keys(value_node, source, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, source, seen_nodes)
