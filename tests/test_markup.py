"""The narrative's Markdown, through markdown-it-py, to HTML and to Typst that compiles."""

from __future__ import annotations

import typst

from mnist_core import markup, view

TEXT = """# Title {#top}

::: {.callout-warning}
**Stale results.** Code changed in """ + view.md_escape("__init__.py, a*b [x]") + """.
:::

Intro with *emphasis*, `code`, **bold**.py and [a link](https://example.org).

## A section {id=first}

- one `item`
  continued
- two

```python
def f(x):
    return x + 1
```

```output
<not html>
```

::: figure fig.svg fig-x
A "quoted" caption.
:::

| Name | Value |
|---|--:|
| a | 1 |

Table: The *caption*.

## Plain title
"""


def test_headings_take_their_ids_or_a_slug():
    tokens = markup.parse(TEXT)
    assert [(h.level, h.id, h.html) for h in markup.headings(tokens, markup.inline_html)] == [
        (1, "top", "Title"), (2, "first", "A section"), (2, "plain-title", "Plain title")]


def test_html():
    html = markup.to_html(markup.parse(TEXT), embed=lambda path: "data:" + path)
    assert '<div class="callout-warning">' in html and "__init__.py, a*b [x]" in html
    assert '<span class="k">def</span>' in html  # Pygments highlighted the Python
    assert '<pre class="output"><code>&lt;not html&gt;' in html
    assert ('<figure id="fig-x"><img src="data:fig.svg" alt="A &quot;quoted&quot; caption.">'
            '<figcaption>A &quot;quoted&quot; caption.</figcaption></figure>') in html
    assert "<caption>The <em>caption</em>.</caption>" in html and "Table:" not in html
    assert '<td style="text-align:right">1</td>' in html
    assert "pre.code .k" in markup.highlight_css()


def test_typst_compiles_and_keeps_every_part(tmp_path):
    (tmp_path / "fig.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" '
        'height="10"/></svg>')
    body = markup.to_typst(markup.parse(TEXT), figure_width=lambda label: "50%")
    assert body.index("#title[Title]") < body.index("#block(") < body.index("#contents()")
    assert '#raw("def f(x):\\n    return x + 1", block: true, lang: "python")' in body
    assert "caption: [The #emph[caption]\\.]" in body and "<fig-x>" in body
    assert "#strong[bold]\\.py" in body  # not a field access on the strong element
    source = tmp_path / "doc.typ"
    source.write_text("#let title(it) = heading(it)\n#let contents() = outline()\n" + body)
    typst.compile(str(source), output=str(tmp_path / "doc.pdf"), root=str(tmp_path))
    assert (tmp_path / "doc.pdf").read_bytes().startswith(b"%PDF")


def test_raw_html_is_for_the_html_page_only():
    tokens = markup.parse('Press <kbd>Enter</kbd>.\n\n<div id="pad"><canvas></canvas></div>\n')
    assert '<div id="pad"><canvas></canvas></div>' in markup.to_html(tokens, embed=str)
    assert "Press <kbd>Enter</kbd>." in markup.to_html(tokens, embed=str)
    typst_text = markup.to_typst(tokens, figure_width=str)
    assert "Press Enter." in typst_text and "canvas" not in typst_text
