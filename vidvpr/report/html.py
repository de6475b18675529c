"""HTML building blocks (pure): every piece of text goes through `esc`, images become data URIs,
and the page carries its own CSS (responsive for phones, a print stylesheet) and no script."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

MIME = {"png": "image/png", "svg": "image/svg+xml", "jpg": "image/jpeg"}

CSS = """
:root { --ink: #1d232b; --muted: #5b6570; --line: #d8dde3; --accent: #1f5fa8; --band: #f4f6f8; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--ink); }
header, main, footer { max-width: 68rem; margin: 0 auto; padding: 0 1rem; }
header { padding-top: 1.5rem; border-bottom: 3px solid var(--accent); }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 .6rem; padding-bottom: .2rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
p, li { max-width: 48rem; }
.muted, figcaption, .note { color: var(--muted); font-size: .9rem; }
nav ol { display: flex; flex-wrap: wrap; gap: .2rem 1rem; padding: 0; list-style: none; margin: .8rem 0; }
nav a { color: var(--accent); text-decoration: none; }
.headlines li { margin: .35rem 0; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: .5rem 0 1rem; }
table { border-collapse: collapse; font-size: .85rem; min-width: 50%; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: var(--band); position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td.long { overflow-wrap: anywhere; }
tr.front td { font-weight: 600; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); image-rendering: auto; }
figure.strip img { image-rendering: pixelated; }
code, .mono { font-family: "DejaVu Sans Mono", ui-monospace, monospace; font-size: .8rem; word-break: break-all; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .5rem 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
@media (max-width: 40rem) {
  body { font-size: 15px; }
  h1 { font-size: 1.3rem; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: .4rem; }
  table { font-size: .78rem; }
}
@media print {
  @page { margin: 14mm; }
  body { font-size: 10pt; }
  header, main, footer { max-width: none; padding: 0; }
  nav { display: none; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; }
  h3 { break-after: avoid; }
  figure, tr, .headlines li { break-inside: avoid; }
  .scroll { overflow: visible; }
  table { font-size: 7.5pt; min-width: 0; }
  th, td { padding: .15rem .25rem; }
  td.num { white-space: normal; }
  th { position: static; }
  figure img { max-height: 18cm; width: auto; max-width: 100%; }
}
"""


def esc(value: Any) -> str:
    """Text for HTML: &, <, >, and both quotes escaped; None is an em dash."""
    return "—" if value is None else html.escape(str(value), quote=True)


def data_uri(data: bytes, kind: str = "png") -> str:
    return f"data:{MIME[kind]};base64,{base64.b64encode(data).decode('ascii')}"


def figure(data: bytes, alt: str, caption: str | None = None, kind: str = "png", css_class: str = "") -> str:
    """An embedded image with its caption."""
    cls = f' class="{esc(css_class)}"' if css_class else ""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure{cls}><img src="{data_uri(data, kind)}" alt="{esc(alt)}" loading="eager">{cap}</figure>'


def number(value: Any, digits: int = 3) -> str:
    """A table number: floats rounded to `digits` significant places after the point, others as text."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


LONG_WORD = 16  # characters without a space or hyphen, past which a table cell may break anywhere


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Iterable[int] = (),
          row_classes: Sequence[str] | None = None, caption: str | None = None) -> str:
    """A scrollable table; cells that are already HTML are passed as `Raw`."""
    numeric = set(numeric)

    def td(i: int, cell: Any) -> str:
        if i in numeric:
            return f"<td class=num>{cell if isinstance(cell, Raw) else esc(cell)}</td>"
        if isinstance(cell, Raw):
            return f"<td>{cell}</td>"
        # a name with no place to break (a checkpoint's file name, a path) may break anywhere, so that it
        # cannot push the table past a printed page: a print cuts what overflows
        long = any(len(word) > LONG_WORD for word in re.split(r"[\s\-–]+", str(cell)))
        return f"<td{' class=long' if long else ''}>{esc(cell)}</td>"

    head = "".join(f'<th{" class=num" if i in numeric else ""}>{esc(h)}</th>' for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{esc(row_classes[r])}"' if row_classes and row_classes[r] else ""
        cells = "".join(td(i, cell) for i, cell in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    cap = f"<p class=muted>{esc(caption)}</p>" if caption else ""
    return f'{cap}<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


class Raw(str):
    """A string that is already HTML (built here from escaped parts)."""


def facts(items: Iterable[tuple[str, Any]]) -> str:
    return "<dl class=facts>" + "".join(f"<dt>{esc(k)}</dt><dd>{v if isinstance(v, Raw) else esc(v)}</dd>"
                                        for k, v in items) + "</dl>"


def paragraph(text: str, css_class: str = "") -> str:
    cls = f' class="{esc(css_class)}"' if css_class else ""
    return f"<p{cls}>{esc(text)}</p>"


def bullet_list(items: Iterable[str], css_class: str = "") -> str:
    cls = f' class="{esc(css_class)}"' if css_class else ""
    return f"<ul{cls}>" + "".join(f"<li>{esc(item)}</li>" for item in items) + "</ul>"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]], footer: str) -> str:
    """The whole document: (anchor, title, body HTML) per section, a table of contents, no script."""
    toc = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, t, _ in sections)
    body = "".join(section(a, t, b) for a, t, b in sections)
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width, initial-scale=1">'
            "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><p class=muted>{esc(subtitle)}</p><nav><ol>{toc}</ol></nav></header>"
            f"<main>{body}</main><footer><p class=muted>{esc(footer)}</p></footer></body></html>\n")
