"""Feedback a student reads: their notebook, its outputs, and at each graded cell the verdict.

The verdicts come from the judge (``hardened``); nothing here shows the
hidden checks' code, their inputs beyond the diagnosis, or a reference.

The page is written for a person and must be safe to open: the student's
notebook is theirs to fill with anything (markdown with ``<script>``, HTML
outputs with event handlers, image metadata that nbconvert's template writes
into unquoted attributes, ...). So:

1. nbconvert renders the cells (markdown as HTML, outputs, code), with every
   piece of the student's HTML passed through :func:`clean_student_html`;
   the grader's own cells (the summary and the verdicts) are HTML built here
   with every piece of text escaped.
2. The whole rendered body is then sanitized once more with bleach
   (:func:`sanitize_html`), an allow-list of ordinary structural tags and
   harmless attributes: no scripts, no event handlers, no frames, objects or
   forms, no URLs but http(s)/mailto links and data: images.
3. The page head is written here: the classic template's CSS, no script at
   all, and a Content-Security-Policy that forbids scripts (defence in depth;
   the sanitizer holds on its own). Mathematics is shown as its TeX source.

The same input gives the same bytes.
"""
from __future__ import annotations

import copy
import functools
import html
import re
import warnings
from typing import Any, Iterable

import nbformat

from .notebook_spec import grade_id_of

ICONS = {"passed": "✓", "partial": "◐", "failed": "✗", "error": "✗", "timeout": "⏱", "missing": "∅"}

# ----------------------------------------------------------------------------------------------
# sanitizing

#: tags a page may hold; any other tag is removed (its text stays, escaped)
ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details",
    "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong",
    "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
})
#: attributes a tag may carry ("*": any allowed tag); URLs are checked further (see _attribute_ok)
ALLOWED_ATTRIBUTES = {
    "*": frozenset({"class", "id", "title", "lang", "dir", "style"}),
    "a": frozenset({"href"}),
    "img": frozenset({"src", "alt", "width", "height"}),
    "ol": frozenset({"start", "type"}),
    "table": frozenset({"border"}),
    "col": frozenset({"span"}),
    "colgroup": frozenset({"span"}),
    "td": frozenset({"colspan", "rowspan", "align", "valign"}),
    "th": frozenset({"colspan", "rowspan", "align", "valign", "scope"}),
    "tr": frozenset({"align", "valign"}),
}
#: CSS properties a style attribute may set (colours and text layout; nothing that positions,
#: sizes or loads anything)
ALLOWED_CSS = frozenset({
    "color", "background-color", "text-align", "vertical-align", "font-weight", "font-style",
    "text-decoration", "white-space", "word-break", "overflow-wrap", "word-wrap",
})
#: link targets: a fragment of this page, or these schemes
LINK_SCHEMES = ("http:", "https:", "mailto:")
#: images: only embedded ones (a plot, an attachment), never fetched from elsewhere
_SAFE_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*\Z", re.I)
#: elements removed with everything inside them before bleach (whose strip would keep their text)
DROPPED_WITH_CONTENT = (
    "script", "style", "template", "iframe", "frame", "frameset", "object", "embed", "applet", "noscript",
    "noembed", "noframes", "svg", "math", "head", "title", "base", "link", "meta", "form", "textarea",
    "select", "button", "input", "xmp", "plaintext", "listing", "audio", "video", "canvas",
)
#: class and id prefix of the grader's own cells: the student's content may not use it
RESERVED = "autograder"
#: a verdict's diagnosis: lines as written, wrapped at spaces only, never inside a number
MESSAGE_STYLE = "white-space: pre-wrap; word-break: normal; overflow-wrap: normal; word-wrap: normal"


def _normalized_url(value: str) -> str:
    """A URL as a browser reads its scheme (entities, whitespace and controls gone, lowercase)."""
    text = html.unescape(value)
    text = re.sub(r"[`\x00-\x20\x7f-\xa0\s]+", "", text)
    return re.sub(r"[^\x00-\x7f]", "", text).lower()


def _attribute_ok(tag: str, name: str, value: str, reserved: bool) -> bool:
    if name not in ALLOWED_ATTRIBUTES["*"] and name not in ALLOWED_ATTRIBUTES.get(tag, ()):
        return False
    if tag == "a" and name == "href":
        url = _normalized_url(value)
        return url.startswith("#") or url.startswith(LINK_SCHEMES)
    if tag == "img" and name == "src":
        return bool(_SAFE_IMAGE.match(value.strip()))
    if reserved and name in ("class", "id"):
        return not any(word.lower().startswith(RESERVED) for word in value.split())
    return True


@functools.lru_cache(maxsize=1)
def _css_sanitizer():
    from bleach.css_sanitizer import CSSSanitizer

    return CSSSanitizer(allowed_css_properties=ALLOWED_CSS, allowed_svg_properties=frozenset())


def _prune(markup: str) -> str:
    """Markup without the elements whose text should not show either (scripts, styles, frames, ...)
    and without images that bleach would leave without a picture. Only for a tidy page: bleach,
    which parses the result again, decides what is safe."""
    from bs4 import BeautifulSoup

    if "<" not in markup:
        return markup
    with warnings.catch_warnings():  # bs4's guesses (a URL, XML) about markup we only prune
        warnings.simplefilter("ignore")
        soup = BeautifulSoup(markup, "html.parser")
    found = soup.find_all(DROPPED_WITH_CONTENT)
    found += [img for img in soup.find_all("img") if not _SAFE_IMAGE.match(str(img.get("src", "")).strip())]
    if not found:
        return markup
    for element in found:
        if not element.decomposed:
            element.decompose()
    return str(soup)


def sanitize_html(markup: Any, reserved: bool = False) -> str:
    """HTML that holds only allowed tags and attributes (see above): safe to show in a browser.

    ``reserved``: also refuse the grader's own class and id prefix (for the student's content).
    """
    import bleach

    text = markup.decode("utf-8", "replace") if isinstance(markup, bytes) else str(markup)
    cleaner = bleach.Cleaner(
        tags=ALLOWED_TAGS,
        attributes=lambda tag, name, value: _attribute_ok(tag, name, value, reserved),
        protocols={"http", "https", "mailto", "data"},  # data: for images only (_attribute_ok)
        strip=True,
        strip_comments=True,
        css_sanitizer=_css_sanitizer(),
    )
    return cleaner.clean(_prune(text))


def clean_student_html(markup: Any) -> str:
    """The template's ``clean_html`` filter: the student's markdown and HTML outputs."""
    return sanitize_html(markup, reserved=True)


# ----------------------------------------------------------------------------------------------
# the grader's cells


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _number(value: Any) -> str:
    try:
        return format(float(value), "g")
    except (TypeError, ValueError):
        return str(value)


def _points(cell: Any) -> str:
    return f"{_number(cell.score)} / {_number(cell.max_score)}"


def _status(cell: Any) -> str:
    return f"{ICONS.get(cell.status, '?')} {cell.status}"


def _status_class(cell: Any) -> str:
    return f"{RESERVED}-status-{cell.status if cell.status in ICONS else 'other'}"


def verdict_anchor(grade_id: Any) -> str:
    return f"{RESERVED}-verdict-" + re.sub(r"[^A-Za-z0-9_.-]", "_", str(grade_id))


def verdict_html(cell: Any) -> str:
    head = f"Grader — {cell.grade_id}: {_status(cell)}, {_points(cell)} points"
    parts = [f'<div class="{RESERVED}-verdict {_status_class(cell)}" id="{_e(verdict_anchor(cell.grade_id))}">',
             f'<p class="{RESERVED}-verdict-head"><strong>{_e(head)}</strong></p>']
    message = str(cell.message or "")
    if cell.status != "passed" and message.strip():
        parts.append(f'<pre class="{RESERVED}-message" style="{MESSAGE_STYLE}">{_e(message)}</pre>')
    parts.append("</div>")
    return "\n".join(parts)


def summary_html(result: Any) -> str:
    rows = [f'<tr class="{_status_class(c)}">'
            f'<td><a href="#{_e(verdict_anchor(c.grade_id))}">{_e(c.grade_id)}</a></td>'
            f"<td>{_e(_status(c))}</td>"
            f'<td class="{RESERVED}-points">{_e(_points(c))}</td></tr>'
            for c in result.cells]
    parts = [f'<div class="{RESERVED}-summary">',
             f"<h1>Feedback: {_e(result.notebook)}</h1>",
             f"<p>Student <strong>{_e(result.student_id)}</strong>, score "
             f"<strong>{_e(_number(result.score))} / {_e(_number(result.max_score))}</strong>.</p>",
             f'<table class="{RESERVED}-verdicts">',
             "<thead><tr><th>graded cell</th><th>status</th><th>points</th></tr></thead>",
             "<tbody>", *rows, "</tbody>", "</table>"]
    if result.events:
        parts += ["<p>While the notebook ran:</p>", "<ul>", *[f"<li>{_e(e)}</li>" for e in result.events], "</ul>"]
    parts.append("</div>")
    return "\n".join(parts)


def _annotate(result: Any) -> tuple[Any, frozenset]:
    """The notebook to render, and the ids of the cells that are the grader's (their source is HTML)."""
    nb = copy.deepcopy(result.feedback) if result.feedback is not None else nbformat.v4.new_notebook()
    by_id = {c.grade_id: c for c in result.cells}
    ours: list[Any] = []

    def grader_cell(markup: str) -> Any:
        cell = nbformat.v4.new_markdown_cell(markup)
        ours.append(cell)
        return cell

    cells = [grader_cell(summary_html(result))]
    placed = set()
    for cell in nb.cells:
        _without_widgets(cell)
        cells.append(cell)
        grade_id = grade_id_of(cell)
        if grade_id in by_id and grade_id not in placed:
            placed.add(grade_id)
            cells.append(grader_cell(verdict_html(by_id[grade_id])))
    rest = [c for c in result.cells if c.grade_id not in placed]
    if rest and result.feedback is not None:
        cells.append(grader_cell(f'<h2 class="{RESERVED}-missing">Graded cells missing from this notebook</h2>'))
    cells += [grader_cell(verdict_html(c)) for c in rest]
    nb.cells = cells
    nb.nbformat, nb.nbformat_minor = 4, 5
    # nothing of the student's notebook metadata reaches the page (widgets, title, kernel)
    nb.metadata = nbformat.from_dict({"language_info": {"name": "python", "pygments_lexer": "ipython3"}})
    for i, cell in enumerate(nb.cells):  # ids that are the same on every run
        cell["id"] = f"cell-{i}"
    return nb, frozenset(cell["id"] for cell in ours)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "(an interactive widget: open this notebook in JupyterLab and run its cells to use it)"


def _without_widgets(cell: Any) -> None:
    """A widget's output shows as one line saying what it was, never as its text repr (VBox(children=...))."""
    outputs = cell.get("outputs") if isinstance(cell, dict) else None
    if not isinstance(outputs, list):
        return
    for output in outputs:
        data = output.get("data") if isinstance(output, dict) else None
        if isinstance(data, dict) and WIDGET_VIEW in data:
            output["data"] = {"text/plain": WIDGET_NOTE}


def annotated(result: Any) -> Any:
    """The notebook to render: the student's cells and outputs with the verdicts inserted
    (the grader's cells are markdown cells holding HTML)."""
    return _annotate(result)[0]


# ----------------------------------------------------------------------------------------------
# the page

#: what a cell may show, best first; what needs a script (JavaScript, widgets) last, and shown as nothing
DISPLAY_PRIORITY = ["text/html", "text/markdown", "image/svg+xml", "image/png", "image/jpeg", "text/plain",
                    "text/latex", "application/javascript", "application/vnd.jupyter.widget-view+json"]

#: the cells, in nbconvert's classic layout without prompts; the grader's cells as they are; code as
#: pygments escapes it (the whole body is sanitized afterwards: no need to parse each cell twice)
_CELLS_TEMPLATE = r"""
{%- extends 'base.html.j2' -%}

{% block markdowncell scoped %}
{%- if cell.id in resources.autograder_cells -%}
<div class="cell border-box-sizing text_cell rendered autograder-cell" id="{{ ('cell-id=' ~ cell.id) | escape_html }}">
<div class="inner_cell">
<div class="text_cell_render border-box-sizing rendered_html">
{{ cell.source }}
</div>
</div>
</div>
{%- else -%}
{{ super() }}
{%- endif -%}
{%- endblock markdowncell %}

{% block input %}
<div class="inner_cell">
<div class="input_area">
{{ cell.source | highlight_code(metadata=cell.metadata) }}
</div>
</div>
{%- endblock input %}

{% block data_html scoped -%}
<div class="output_html rendered_html output_subarea {{ extra_class }}">
{{ output.data['text/html'] | clean_html }}
</div>
{%- endblock data_html %}

{%- block data_javascript scoped %}
{%- endblock data_javascript -%}

{%- block data_widget_view scoped %}
{%- endblock data_widget_view -%}
"""

CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                           "base-uri 'none'; form-action 'none'")

_PAGE_CSS = """
body { overflow: visible; padding: 8px; }
div#notebook { overflow: visible; border-top: none; }
div#notebook-container { padding: 6ex 12ex 8ex 12ex; }
@media print {
  body { margin: 0; }
  div.cell, div.output_wrapper, div.output { display: block; page-break-inside: avoid; }
}
/* never break inside a word or a number: long lines scroll */
pre, code, kbd, samp { word-break: normal; overflow-wrap: normal; word-wrap: normal; }
.rendered_html pre, div.output_area pre { overflow-x: auto; }
/* the grader's cells */
.autograder-summary h1 { margin-top: 0; }
.rendered_html table.autograder-verdicts { margin: 1em 0; table-layout: auto; font-size: 13px; }
.rendered_html table.autograder-verdicts th,
.rendered_html table.autograder-verdicts td { text-align: left; border: 1px solid #ccc; padding: 0.3em 0.8em; }
.rendered_html table.autograder-verdicts td.autograder-points { text-align: right; white-space: nowrap; }
.rendered_html table.autograder-verdicts tbody tr:nth-child(odd),
.rendered_html table.autograder-verdicts tbody tr:hover { background: none; }
.autograder-verdict { margin: 0.5em 0 1em; padding: 0.5em 1em; border: 1px solid #ccc; border-left-width: 6px;
  border-radius: 3px; background: #f7f7f7; }
.rendered_html .autograder-verdict p.autograder-verdict-head { margin: 0; }
.rendered_html pre.autograder-message { margin: 0.5em 0 0; padding: 0.5em; background: #fff;
  border: 1px solid #ddd; font-size: 12px; line-height: 1.4; overflow-x: auto;
  white-space: pre-wrap; word-break: normal; overflow-wrap: normal; word-wrap: normal; }
.autograder-verdict.autograder-status-passed { border-color: #3c763d; background: #eef7ea; }
.autograder-verdict.autograder-status-partial { border-color: #8a6d3b; background: #fcf8e3; }
.autograder-verdict.autograder-status-failed,
.autograder-verdict.autograder-status-error,
.autograder-verdict.autograder-status-timeout,
.autograder-verdict.autograder-status-missing { border-color: #a94442; background: #f9ecec; }
tr.autograder-status-passed td:nth-child(2) { color: #3c763d; }
tr.autograder-status-partial td:nth-child(2) { color: #8a6d3b; }
tr.autograder-status-failed td:nth-child(2), tr.autograder-status-error td:nth-child(2),
tr.autograder-status-timeout td:nth-child(2), tr.autograder-status-missing td:nth-child(2) { color: #a94442; }
"""


@functools.lru_cache(maxsize=1)
def _exporter():
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    return HTMLExporter(
        config=Config({"NbConvertBase": {"display_data_priority": DISPLAY_PRIORITY}}),
        template_name="classic",
        raw_template=_CELLS_TEMPLATE,
        sanitize_html=True,  # the template's own switch: no script blocks, markdown and HTML through clean_html
        filters={"clean_html": clean_student_html},
        exclude_input_prompt=True,  # "In [ ]:" would be wrong: the feedback shows no execution counts
        exclude_output_prompt=True,
    )


@functools.lru_cache(maxsize=1)
def _stylesheets() -> tuple[str, ...]:
    from pygments.formatters import HtmlFormatter

    exporter = _exporter()
    env = exporter.environment
    classic = env.loader.get_source(env, "static/style.css")[0]
    # its web fonts (glyph icons) are blocked by the page's own policy: without the rules, no console errors
    classic = re.sub(r"@font-face\s*\{[^}]*\}", "", classic)
    return classic, HtmlFormatter(style="default").get_style_defs(".highlight"), _PAGE_CSS


def _style_blocks(sheets: Iterable[str]) -> str:
    # our own CSS only; a closing tag inside would end the block early
    return "\n".join("<style>\n" + sheet.replace("</", "<\\/") + "\n</style>" for sheet in sheets)


def _page(result: Any) -> str:
    nb, grader_cells = _annotate(result)
    cells, _ = _exporter().from_notebook_node(nb, resources={"autograder_cells": grader_cells})
    body = sanitize_html(cells)
    title = _e(f"Feedback: {result.notebook} — {result.student_id}")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CONTENT_SECURITY_POLICY)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">',
        f"<title>{title}</title>",
        _style_blocks(_stylesheets()),
        "</head>",
        "<body>",
        "<main>",
        '<div id="notebook" class="border-box-sizing">',
        '<div class="container" id="notebook-container">',
        body.strip(),
        "</div>",
        "</div>",
        "</main>",
        "</body>",
        "</html>",
        "",
    ])


def render_html(result: Any) -> str:
    """The feedback page; when the student's notebook cannot be shown (it is not a valid
    notebook), the page holds the verdicts alone and says why."""
    try:
        return _page(result)
    except Exception as exc:  # a notebook nbconvert refuses: the verdicts still reach the student
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        bare = copy.copy(result)
        bare.feedback = None
        bare.events = list(result.events) + [f"your notebook could not be shown here ({reason})"]
        return _page(bare)


def render_within(result: Any, seconds: float) -> str:
    """The feedback page, rendered in a child process given ``seconds``; when that is not enough (a
    student's markdown can drive nbconvert's regular expressions into minutes), the page holds the
    verdicts alone and says why. The child is forked: nothing is imported again."""
    import multiprocessing

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform: render here, unbounded
        return render_html(result)
    reader, writer = context.Pipe(duplex=False)

    def child() -> None:
        try:
            writer.send(render_html(result))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which falls back
            writer.send(exc if isinstance(exc, Exception) else RuntimeError(type(exc).__name__))
        finally:
            writer.close()

    process = context.Process(target=child, daemon=True)
    process.start()
    writer.close()
    page: Any = None
    if reader.poll(max(0.0, seconds)):
        try:
            page = reader.recv()
        except EOFError:
            page = None
    process.kill()
    process.join()
    reader.close()
    if isinstance(page, str):
        return page
    bare = copy.copy(result)
    bare.feedback = None
    why = ("it took longer than the time left for this notebook" if page is None
           else f"{type(page).__name__}: {str(page)[:300]}")
    bare.events = list(result.events) + [f"your notebook could not be shown here ({why}); the verdicts follow"]
    return render_html(bare)
