"""The tutorial is told twice, by the Jinja narrative (tutorial.html/.pdf) and by the Quarto
pages, from one set of prose fragments and one view model: the same sections in the same order,
and no paragraph written in both."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from mnist_core import markup
from mnist_core.render import build_context, narrative

REPO = Path(__file__).resolve().parent.parent
PROSE = REPO / "templates" / "prose"
# The Jinja document's chapters that are pages of their own on the site, by heading id.
OWN_PAGES = {"comparison": "report/comparison.qmd", "recognize": "report/recognize.qmd"}


def qmd_sections(page: Path) -> list[str]:
    """The ``## `` headings of a Quarto page, outside its code cells."""
    titles, in_code = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("## "):
            titles.append(line[3:].strip())
    return titles


@pytest.fixture(scope="module")
def jinja_sections(tmp_path_factory, quick_build):
    """(id, title) of each chapter of the Jinja document, for a build with two models."""
    out = tmp_path_factory.mktemp("two-models")
    shutil.copytree(quick_build["out"], out, dirs_exist_ok=True)
    first = out / "experiments" / quick_build["folder"].name
    second = out / "experiments" / "mlp-000000000000"
    shutil.copytree(first, second)
    data = json.loads((second / "results.json").read_text())
    data["experiment"] = "mlp"
    (second / "results.json").write_text(json.dumps(data))
    tokens = narrative(build_context(out, [first, second]))
    return [(h.id, re.sub(r"<[^>]+>", "", h.html))
            for h in markup.headings(tokens, markup.inline_html) if h.level == 2]


def test_the_tutorial_page_has_the_documents_sections_in_the_same_order(jinja_sections):
    ids = [i for i, _ in jinja_sections]
    assert set(OWN_PAGES) <= set(ids), ids  # the test sees both extra chapters
    titles = [t for i, t in jinja_sections if i not in OWN_PAGES]
    assert titles == qmd_sections(REPO / "report" / "tutorial.qmd")


def test_the_other_chapters_are_site_pages_in_the_same_order(jinja_sections):
    pages = yaml.safe_load((REPO / "_quarto.yml").read_text())["project"]["render"]
    chapters = [OWN_PAGES[i] for i, _ in jinja_sections if i in OWN_PAGES]
    assert chapters == [p for p in pages if p in chapters]
    # ... and they sit where the tutorial page ends: before Reproducibility and Credits.
    ids = [i for i, _ in jinja_sections]
    assert ids.index("recognize") < ids.index("reproducibility") < ids.index("credits")


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if len(p.split()) >= 12]


def test_every_prose_fragment_is_used_by_both_tellings():
    jinja = (REPO / "templates" / "tutorial.md.j2").read_text()
    quarto = "".join(p.read_text() for p in (REPO / "report").glob("*.qmd"))
    for fragment in sorted(PROSE.glob("_*.md")):
        assert f'{{% include "prose/{fragment.name}" %}}' in jinja, fragment.name
        assert f"{{{{< include ../templates/prose/{fragment.name} >}}}}" in quarto, fragment.name


def test_no_paragraph_is_written_in_both_tellings():
    jinja = set(_paragraphs((REPO / "templates" / "tutorial.md.j2").read_text()))
    for page in (REPO / "report").glob("*.qmd"):
        copies = jinja & set(_paragraphs(page.read_text()))
        assert not copies, f"{page.name} repeats the narrative: {copies}"


def test_every_include_of_a_page_resolves():
    """Quarto reads an include relative to the page that includes it."""
    for page in [*(REPO / "report").glob("*.qmd"), REPO / "index.qmd"]:
        for target in re.findall(r"\{\{< include (\S+) >\}\}", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name}: {target} is missing"
