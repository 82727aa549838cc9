"""docs/SECURITY.md's attack table is generated from the catalog and cannot drift; every
catalog test names its attack once, and names are unique."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from . import catalog

REPO = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("attack_table", REPO / "tools" /
                                                  "attack_table.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_catalog_test_names_one_attack_and_names_are_unique():
    entries, unmarked = _tool().collect()
    assert unmarked == [], f"catalog tests without @attack: {unmarked}"
    names = [entry.name for entry in entries]
    assert len(names) == len(set(names)), "attack names must be unique"
    assert len(entries) >= 40


def test_security_doc_table_equals_the_generated_one():
    tool = _tool()
    text = (REPO / "docs" / "SECURITY.md").read_text(encoding="utf-8")
    assert text == tool.document_with(tool.render(tool.collect()[0]), text), (
        "docs/SECURITY.md's attack table is out of date: run "
        "python tools/attack_table.py --write")


def test_the_source_reading_agrees_with_the_decorator():
    """What the tool reads from the source is what the decorator attaches at import."""
    tool = _tool()
    for entry in tool.collect()[0]:
        path, function = entry.test.split("::")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        marked = getattr(module, function).attack
        assert isinstance(marked, catalog.Attack)
        assert (" ".join(marked.name.split()), " ".join(marked.does.split()),
                " ".join(marked.stopped_by.split())) == (entry.name, entry.does,
                                                          entry.stopped_by)


def test_the_table_lists_every_test_file():
    files = {path.name for path in (REPO / "tests" / "attacks").glob("test_*.py")} - {
        "test_table.py"}
    listed = {entry.test.split("::")[0].rsplit("/", 1)[1] for entry in _tool().collect()[0]}
    assert listed == files
