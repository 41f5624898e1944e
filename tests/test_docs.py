"""The reference documents generated from the code (docs/profile.md, docs/glossary.md) are the
committed ones, and no document of the repository cites a file outside it."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import gen_docs  # noqa: E402


@pytest.mark.parametrize("name", ["profile", "glossary"])
def test_committed_reference_is_what_the_code_generates(name):
    path, build = gen_docs.DOCS[name]
    assert path.read_text(encoding="utf-8") == build(), f"请运行 python scripts/gen_docs.py {name}"


def test_every_entered_field_and_every_glossary_word_is_documented(registry):
    profile = (REPO / "docs" / "profile.md").read_text(encoding="utf-8")
    for spec in registry.entered_fields():
        assert f"`{spec.id}`" in profile and spec.label in profile, spec.id
    glossary = (REPO / "docs" / "glossary.md").read_text(encoding="utf-8")
    from engine.vocabulary import GLOSSARY, STATUS
    assert all(cn in glossary for cn, _, _ in GLOSSARY) and all(w in glossary for w in STATUS.values())


def test_no_file_of_the_repository_cites_a_file_outside_it():
    outside = re.compile(r"\.\./shared|shared/(contract|domain)|/work/")
    files = [*REPO.glob("*.md"), *(REPO / "docs").glob("*.md"), *(REPO / "rules").rglob("*.yaml"),
             *(p for d in ("engine", "api", "store", "notices", "cli") for p in (REPO / d).rglob("*.py")),
             *(REPO / "api" / "templates").glob("*.html")]
    hits = [f"{p.relative_to(REPO)}:{n}" for p in files
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if outside.search(line)]
    assert hits == []


def test_architecture_names_every_module():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [f"{d}/{p.name}" for d in ("engine", "store", "notices", "api", "cli")
               for p in sorted((REPO / d).glob("*.py")) if p.name != "__init__.py" and f"`{p.name}`" not in text]
    assert missing == []
