"""YAML policies to models, with errors that name the file, the key and the line."""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

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
        lines.append(f"  {where}{key}: {_message(error)}")
    return "\n".join(lines)


def _message(error: ErrorDetails) -> str:
    """Pydantic's error in the words a policy's author uses; its own text as a fallback."""
    kind, ctx, found = error["type"], error.get("ctx") or {}, _found(error.get("input"))
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(error["loc"][-1]),
                                          _field_names(Policy, error["loc"][:-1]), n=1)
        return "unknown key: " + (f"did you mean {close[0]}?" if close
                                  else "check its spelling and the section it is in")
    if kind == "missing":
        return "required, but missing"
    if kind == "value_error":  # our own validators' text, without pydantic's prefix
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":  # ctx spells the choices as reprs: 'Milan', 'Genoa' or 'Turin'
        return f"expected {str(ctx.get('expected', '')).replace(chr(39), '')}, found {found}"
    bound = next((f"{_BOUNDS[name]} {ctx[name]}" for name in _BOUNDS if name in ctx), None)
    if bound is not None:
        return f"expected {bound}, found {found}"
    expected = _EXPECTED.get(kind)
    return f"expected {expected}, found {found}" if expected else str(error["msg"])


_EXPECTED = {
    "int_parsing": "a whole number", "int_type": "a whole number",
    "int_from_float": "a whole number", "float_parsing": "a number", "float_type": "a number",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "text", "list_type": "a list",
    "dict_type": "a mapping of keys to values", "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
}
_BOUNDS = {"gt": "more than", "ge": "at least", "lt": "less than", "le": "at most"}


def _found(value: Any) -> str:
    """What the document held, in YAML's words rather than Python's."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value if len(value) <= 60 else value[:57] + '...'}'"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys valid at `loc` inside `model` (what a misspelt key was probably meant to be)."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        else:  # dict[K, V] or list[V]: the part is a key or an index, V lies below it
            args = typing.get_args(annotation)
            if not args:
                return []
            annotation = args[-1]
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """SnpPolicy | None -> SnpPolicy."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


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
