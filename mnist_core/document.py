"""One narrative, two outputs: parse the tutorial's Markdown-like text into blocks.

The narrative is written once (``templates/tutorial.md.j2``); the HTML and
Typst templates only say how each block looks. That is what keeps the two
documents from ever disagreeing.

Block syntax, deliberately small:
  ``#``/``##``/``###`` headings, blank-line separated paragraphs, ``- `` lists,
  fenced code (```python, ```output), pipe tables with an optional
  ``Table: caption`` line after them, and figures::

      ::: figure path/to/figure.svg fig-label
      Caption text.
      :::

Inline: ``**bold**``, ``*emphasis*``, `` `code` `` and ``[text](url)``.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

_FENCE = re.compile(r"^```(\w*)\s*$")
_FIGURE = re.compile(r"^:::\s*figure\s+(\S+)(?:\s+(\S+))?\s*$")
_HEADING = re.compile(r"^(#{1,3})\s+(.*?)(?:\s+\{id=([\w-]+)\})?\s*$")
_INLINE = re.compile(r"`([^`]+)`|\*\*(.+?)\*\*|\*(.+?)\*|\[([^\]]+)\]\(([^)\s]+)\)")


@dataclass
class Block:
    kind: str  # heading, paragraph, list, code, figure, table
    text: str = ""
    level: int = 0
    lang: str = ""
    id: str = ""
    items: list = field(default_factory=list)
    header: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    align: list = field(default_factory=list)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _split_row(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse(text: str) -> list[Block]:
    """Turn the narrative text into a flat list of blocks."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if m := _FENCE.match(line):
            end = i + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            blocks.append(Block("code", text="\n".join(lines[i + 1:end]), lang=m.group(1)))
            i = end + 1
            continue
        if m := _FIGURE.match(line):
            end = i + 1
            while end < len(lines) and lines[end].strip() != ":::":
                end += 1
            caption = " ".join(s.strip() for s in lines[i + 1:end] if s.strip())
            blocks.append(Block("figure", text=caption, id=m.group(2) or "", items=[m.group(1)]))
            i = end + 1
            continue
        if m := _HEADING.match(line):
            title = m.group(2)
            blocks.append(Block("heading", text=title, level=len(m.group(1)),
                                id=m.group(3) or slug(title)))
            i += 1
            continue
        if line.lstrip().startswith("|"):
            table = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                table.append(lines[i])
                i += 1
            header, rule, rows = _split_row(table[0]), _split_row(table[1]), table[2:]
            align = ["right" if c.endswith(":") else "left" for c in rule]
            caption = ""
            if i < len(lines) and lines[i].startswith("Table:"):
                caption = lines[i][len("Table:"):].strip()
                i += 1
            blocks.append(Block("table", text=caption, header=header, align=align,
                                rows=[_split_row(r) for r in rows]))
            continue
        if line.startswith("- "):
            items = []
            while i < len(lines) and (lines[i].startswith("- ") or lines[i].startswith("  ")):
                if lines[i].startswith("- "):
                    items.append(lines[i][2:].strip())
                else:
                    items[-1] += " " + lines[i].strip()
                i += 1
            blocks.append(Block("list", items=items))
            continue
        paragraph = []
        while i < len(lines) and lines[i].strip() and not (
            _FENCE.match(lines[i]) or _FIGURE.match(lines[i]) or _HEADING.match(lines[i])
            or lines[i].lstrip().startswith("|") or lines[i].startswith("- ")
        ):
            paragraph.append(lines[i].strip())
            i += 1
        blocks.append(Block("paragraph", text=" ".join(paragraph)))
    return blocks


def _inline(text: str, code, bold, em, link, plain) -> str:
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(plain(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append(code(m.group(1)))
        elif m.group(2) is not None:
            out.append(bold(_inline(m.group(2), code, bold, em, link, plain)))
        elif m.group(3) is not None:
            out.append(em(_inline(m.group(3), code, bold, em, link, plain)))
        else:
            out.append(link(m.group(5), _inline(m.group(4), code, bold, em, link, plain)))
        pos = m.end()
    out.append(plain(text[pos:]))
    return "".join(out)


def inline_html(text: str) -> str:
    return _inline(
        text,
        code=lambda s: f"<code>{html.escape(s)}</code>",
        bold=lambda s: f"<strong>{s}</strong>",
        em=lambda s: f"<em>{s}</em>",
        link=lambda url, s: f'<a href="{html.escape(url, quote=True)}">{s}</a>',
        plain=html.escape,
    )


_TYPST_SPECIAL = re.compile(r"([\\#$*_`<>@\[\]~/=+\-\"'])")


def typst_escape(text: str) -> str:
    """Plain text safe inside Typst markup: every character with a meaning is escaped."""
    return _TYPST_SPECIAL.sub(r"\\\1", text)


def typst_string(text: str) -> str:
    """A Typst string literal (for raw code blocks, paths and labels)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "")
    return f'"{escaped}"'


def inline_typst(text: str) -> str:
    return _inline(
        text,
        code=lambda s: f"#raw({typst_string(s)})",
        bold=lambda s: f"#strong[{s}]",
        em=lambda s: f"#emph[{s}]",
        link=lambda url, s: f"#link({typst_string(url)})[{s}]",
        plain=typst_escape,
    )


def to_json(blocks: list[Block]) -> str:
    return json.dumps([b.__dict__ for b in blocks], indent=1)
