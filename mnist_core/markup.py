"""Markdown to HTML and to Typst: markdown-it-py parses, this module only says how things look.

The narrative (``templates/tutorial.md.j2``) is CommonMark with the few extensions that
Pandoc and Quarto read the same way:

- headings end with ``{#id}`` or ``{id=id}`` (otherwise the id is a slug of the title);
- a pipe table may be followed, after a blank line, by a ``Table: caption`` paragraph;
- ``::: figure PATH LABEL`` ... ``:::`` is a figure with its caption inside;
- ``::: {.callout-warning}`` ... ``:::`` is a warning box (Quarto's callout).

Both outputs come from one token stream, so the HTML and the PDF cannot disagree.
Python code is highlighted by Pygments in the HTML and by Typst itself in the PDF.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from typing import Callable

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.container import container_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_HEADING_ID = re.compile(r"\s*\{(?:#|id=)([\w-]+)\}\s*$")
_CAPTION = "Table:"
PYGMENTS_STYLE = "friendly"


@dataclass(frozen=True)
class Heading:
    level: int
    id: str
    html: str


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _heading_ids(state) -> None:
    """``## Title {#id}`` -> id="id"; a heading without one gets the slug of its title."""
    tokens = state.tokens
    for i, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        inline = tokens[i + 1]
        match = _HEADING_ID.search(inline.content)
        if match:
            inline.content = inline.content[:match.start()]
            last = inline.children[-1] if inline.children else None
            if last is not None and last.type == "text":
                last.content = _HEADING_ID.sub("", last.content)
        token.attrSet("id", match.group(1) if match else slug(inline.content))


def _table_captions(state) -> None:
    """A ``Table: caption`` paragraph right after a table becomes that table's caption."""
    tokens, out = state.tokens, []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        out.append(token)
        if (token.type == "table_close" and i + 3 < len(tokens)
                and tokens[i + 1].type == "paragraph_open"
                and tokens[i + 2].content.startswith(_CAPTION)):
            inline = tokens[i + 2]
            first = inline.children[0]
            first.content = first.content[len(_CAPTION):].lstrip()
            opening = next(t for t in reversed(out) if t.type == "table_open")
            opening.meta["caption"] = inline
            i += 4  # paragraph_open, inline, paragraph_close
            continue
        i += 1
    state.tokens = out


def _figure_captions(state) -> None:
    """A figure's caption is its one paragraph: no <p> inside <figcaption>."""
    inside = False
    for token in state.tokens:
        if token.type in ("container_figure_open", "container_figure_close"):
            inside = token.type.endswith("open")
        elif inside and token.type in ("paragraph_open", "paragraph_close"):
            token.hidden = True


def _is_callout(params: str, markup: str) -> bool:
    return params.strip() == "{.callout-warning}"


def parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"typographer": False}).enable("table")
    md.use(container_plugin, name="figure")
    md.use(container_plugin, name="callout", validate=_is_callout)
    md.core.ruler.push("heading_ids", _heading_ids)
    md.core.ruler.push("table_captions", _table_captions)
    md.core.ruler.push("figure_captions", _figure_captions)
    return md


@functools.cache
def _shared() -> MarkdownIt:
    """One parser for parsing and inline HTML (to_html changes its own renderer's rules)."""
    return parser()


def parse(text: str) -> list[Token]:
    return _shared().parse(text)


def headings(tokens: list[Token], render_inline: Callable[[list[Token]], str]) -> list[Heading]:
    return [Heading(int(t.tag[1]), t.attrGet("id"), render_inline(tokens[i + 1].children))
            for i, t in enumerate(tokens) if t.type == "heading_open"]


def _figure_args(token: Token) -> tuple[str, str]:
    """``figure PATH LABEL`` -> (PATH, LABEL)."""
    parts = token.info.split()
    return parts[1], parts[2] if len(parts) > 2 else ""


def _plain(inline: Token) -> str:
    return "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))


# --- HTML ----------------------------------------------------------------------------

def highlight_css() -> str:
    """The stylesheet for Pygments' classes, scoped to code blocks."""
    return HtmlFormatter(style=PYGMENTS_STYLE).get_style_defs("pre.code")


def _highlight(code: str, lang: str, attrs) -> str:
    if lang == "output":
        return f'<pre class="output"><code>{html.escape(code)}</code></pre>\n'
    try:
        lexer = get_lexer_by_name(lang or "text")
    except ClassNotFound:
        lexer = get_lexer_by_name("text")
    body = highlight(code, lexer, HtmlFormatter(nowrap=True, style=PYGMENTS_STYLE))
    return f'<pre class="code"><code>{body}</code></pre>\n'


def to_html(tokens: list[Token], embed: Callable[[str], str],
            replace: dict[str, str] | None = None) -> str:
    """HTML of the tokens; ``embed`` turns a figure's path into its ``src`` (a data URI).

    ``replace`` maps a figure's label to HTML that stands in the HTML page for the whole
    figure, caption included (the PDF keeps the figure: a still of something live).
    """
    tokens = _replace_figures(tokens, replace or {})
    md = parser()
    md.options["highlight"] = _highlight
    rules = md.renderer.rules
    inline = lambda children: md.renderer.renderInline(children, md.options, {})  # noqa: E731

    def figure_open(tokens, idx, options, env):
        path, label = _figure_args(tokens[idx])
        caption = next(t for t in tokens[idx:] if t.type == "inline")
        ident = f' id="{html.escape(label, quote=True)}"' if label else ""
        alt = html.escape(_plain(caption), quote=True)
        return (f'<figure{ident}><img src="{html.escape(embed(path), quote=True)}" '
                f'alt="{alt}"><figcaption>')

    def table_open(tokens, idx, options, env):
        caption = tokens[idx].meta.get("caption")
        text = f"<caption>{inline(caption.children)}</caption>\n" if caption else ""
        return f'<div class="table"><table>\n{text}'

    rules["container_figure_open"] = figure_open
    rules["container_figure_close"] = lambda *a: "</figcaption></figure>\n"
    rules["container_callout_open"] = lambda *a: '<div class="callout-warning">\n'
    rules["container_callout_close"] = lambda *a: "</div>\n"
    rules["table_open"] = table_open
    rules["table_close"] = lambda *a: "</table></div>\n"
    return md.renderer.render(tokens, md.options, {})


def _replace_figures(tokens: list[Token], replace: dict[str, str]) -> list[Token]:
    out, skip_to = [], None
    for token in tokens:
        if skip_to is not None:
            if token.type == "container_figure_close" and token.level == skip_to:
                skip_to = None
            continue
        if token.type == "container_figure_open" and _figure_args(token)[1] in replace:
            label = _figure_args(token)[1]
            out.append(Token("html_block", "", 0, content=f'<figure id="{html.escape(label)}">'
                             f"{replace[label]}</figure>\n"))
            skip_to = token.level
            continue
        out.append(token)
    return out


def inline_html(tokens: list[Token]) -> str:
    md = _shared()
    return md.renderer.renderInline(tokens, md.options, {})


# --- Typst ---------------------------------------------------------------------------

_TYPST_SPECIAL = re.compile(r"([\\#$*_`<>@\[\]~/=+\-\"'])")


def typst_escape(text: str) -> str:
    """Plain text safe inside Typst markup: every character with a meaning is escaped."""
    return _TYPST_SPECIAL.sub(r"\\\1", text)


def typst_string(text: str) -> str:
    """A Typst string literal (for raw code blocks, paths and labels)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "")
    return f'"{escaped}"'


def inline_typst(children: list[Token]) -> str:
    out = []
    for token in children or []:
        kind = token.type
        if kind == "text":
            text = typst_escape(token.content)
            # After #strong[...] or #raw(...), "." "(" "[" would continue the expression.
            if out and out[-1].endswith(("]", ")")) and text[:1] in (".", "(", "["):
                text = "\\" + text
            out.append(text)
        elif kind == "code_inline":
            out.append(f"#raw({typst_string(token.content)})")
        elif kind in ("softbreak",):
            out.append(" ")
        elif kind == "hardbreak":
            out.append(" \\\n")
        elif kind == "strong_open":
            out.append("#strong[")
        elif kind == "em_open":
            out.append("#emph[")
        elif kind == "link_open":
            href = token.attrGet("href")
            # A link within the document (#id) goes to the heading or figure labelled so.
            target = f"<{href[1:]}>" if href.startswith("#") else typst_string(href)
            out.append(f"#link({target})[")
        elif kind in ("strong_close", "em_close", "link_close"):
            out.append("]")
        elif kind == "image":  # an inline image: its alt text
            out.append(typst_escape(token.content))
        # html_inline: raw HTML is for the HTML page only (as html_block tokens are).
    return "".join(out)


def to_typst(tokens: list[Token], figure_width: Callable[[str], str]) -> str:
    """Typst markup of the tokens.

    The level-1 heading becomes ``#title[...]`` and, after any warning right below it,
    ``#contents()``: the Typst template defines both. ``figure_width`` says how wide a figure
    is, by its label.
    """
    out: list[str] = []
    lists: list[str] = []  # "-" or "+" for each open list
    contents_due = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        kind = token.type
        if contents_due and token.level == 0 and not kind.startswith("container_callout"):
            out.append("#contents()\n\n")
            contents_due = False
        if kind == "heading_open":
            text = inline_typst(tokens[i + 1].children)
            level = int(token.tag[1])
            if level == 1:
                out.append(f"#title[{text}]\n\n")
                contents_due = True
            else:
                out.append(f"{'=' * (level - 1)} {text} <{token.attrGet('id')}>\n")
            i += 3
            continue
        if kind == "paragraph_open":
            text = inline_typst(tokens[i + 1].children)
            out.append(f"{text}\n" if token.hidden else f"{text}\n\n")
            i += 3
            continue
        if kind in ("bullet_list_open", "ordered_list_open"):
            lists.append("-" if kind == "bullet_list_open" else "+")
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            out.append("\n")
        elif kind == "list_item_open":
            out.append("  " * (len(lists) - 1) + lists[-1] + " ")
        elif kind in ("fence", "code_block"):
            lang = token.info.strip()
            extra = f", lang: {typst_string(lang)}" if lang and lang != "output" else ""
            code = typst_string(token.content.rstrip("\n"))
            out.append(f"#raw({code}, block: true{extra})\n\n")
        elif kind == "container_figure_open":
            path, label = _figure_args(token)
            caption = next(t for t in tokens[i:] if t.type == "inline")
            end = next(j for j in range(i, len(tokens))
                       if tokens[j].type == "container_figure_close")
            out.append(f"#figure(image({typst_string(path)}, width: {figure_width(label)}), "
                       f"caption: [{inline_typst(caption.children)}])"
                       f"{f' <{label}>' if label else ''}\n\n")
            i = end + 1
            continue
        elif kind == "container_callout_open":
            out.append('#block(fill: rgb("#fff4e5"), stroke: rgb("#f0a040"), inset: 8pt, '
                       "radius: 4pt, width: 100%)[\n")
        elif kind == "container_callout_close":
            out.append("]\n\n")
            i += 1
            continue
        elif kind == "table_open":
            end = next(j for j in range(i, len(tokens)) if tokens[j].type == "table_close")
            out.append(_typst_table(tokens[i:end + 1]))
            i = end + 1
            continue
        elif kind == "hr":
            out.append("#line(length: 100%)\n\n")
        i += 1
    return "".join(out)


def _typst_table(tokens: list[Token]) -> str:
    caption = tokens[0].meta.get("caption")
    header, rows, align = [], [], []
    row: list[str] | None = None
    for j, token in enumerate(tokens):
        if token.type == "tr_open":
            row = []
        elif token.type in ("th_open", "td_open"):
            cell = inline_typst(tokens[j + 1].children)
            if token.type == "th_open":
                style = token.attrGet("style") or ""
                align.append("right" if "right" in style else
                             "center" if "center" in style else "left")
                cell = f"*{cell}*"
            row.append(f"[{cell}]")
        elif token.type == "tr_close":
            (header if not header and not rows and tokens[j - 1].type == "th_close"
             else rows).append(row)
    lines = [
        "#figure(",
        "  table(",
        f"    columns: {len(align)},",
        f"    align: ({', '.join(align)},),",
        "    stroke: (x, y) => if y == 0 { (bottom: 0.8pt) } else { (bottom: 0.3pt + luma(200)) },",
        "    inset: 5pt,",
        f"    table.header({', '.join(header[0]) if header else ''}),",
        *(f"    {', '.join(r)}," for r in rows),
        "  ),",
        "  kind: table,",
    ]
    if caption is not None:
        lines.append(f"  caption: [{inline_typst(caption.children)}],")
    lines.append(")\n\n")
    return "\n".join(lines)
