"""The feedback page as a person sees it, and what a student's notebook cannot make it do.

Results are built directly (no kernel, no sandbox): these tests are fast. The
page is read back with ``html.parser`` from the standard library: the text a
browser would show (outside <head>, <script> and <style>), the elements and
their attributes.
"""
from __future__ import annotations

import base64
import copy
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from autograder.feedback import render_html
from autograder.hardened import CellResult, NotebookResult

ROOT = Path(__file__).resolve().parent.parent
COURSE_NB = ROOT / "release" / "week1" / "01_tensors_and_shapes.ipynb"
#: a literal tag in the text a reader sees
LITERAL_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
#: a 1x1 PNG
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Element:
    def __init__(self, tag: str, attrs: dict, parent: "Element | None"):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []
        self.text_parts: list[str] = []

    def text(self) -> str:
        return "".join(self.text_parts)

    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def find_all(self, tag: str) -> list["Element"]:
        found = []
        for child in self.children:
            if child.tag == tag:
                found.append(child)
            found += child.find_all(tag)
        return found


class Page(HTMLParser):
    """The rendered page: its elements (a tree), and the text a reader sees."""

    HIDDEN = {"head", "script", "style", "title", "template"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.current = self.root
        self.elements: list[Element] = []
        self.visible: list[tuple[str, set]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs), self.current)
        element.raw_attrs = attrs
        self.current.children.append(element)
        self.elements.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        element = Element(tag, dict(attrs), self.current)
        element.raw_attrs = attrs
        self.current.children.append(element)
        self.elements.append(element)

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        node = self.current
        while node is not self.root:
            node.text_parts.append(data)
            node = node.parent
        chain = {n.tag for n in (self.current, *self.current.ancestors())}
        if not chain & self.HIDDEN:
            self.visible.append((data, chain))

    def visible_text(self, outside: tuple = ()) -> str:
        """The text a reader sees; ``outside``: without the text inside these elements."""
        return "".join(data for data, chain in self.visible if not chain & set(outside))

    def all(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag]

    def body(self) -> Element:
        (body,) = self.all("body")
        return body


# ----------------------------------------------------------------------------------------------
# building results


def graded_code(grade_id: str, source: str = "def f(x):\n    return x") -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "points": 2, "solution": False}
    return cell


def code(source: str, *outputs) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = list(outputs)
    return cell


def stream(text: str):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def display(data: dict, metadata: dict | None = None):
    return nbformat.v4.new_output("display_data", data=data, metadata=metadata or {})


def with_metadata(cell, metadata: dict):
    cell.metadata.update(nbformat.from_dict(metadata))
    return cell


def result(cells, *notebook_cells, events=(), student="bob") -> NotebookResult:
    nb = nbformat.v4.new_notebook()
    nb.cells = list(notebook_cells)
    return NotebookResult(student, "01_tensors_and_shapes", list(cells), nb if notebook_cells else None,
                          list(events))


VERDICTS = [
    CellResult("test_linear_forward", 1.6, 2.0, "partial",
               "linear_forward(x, W, b) gives wrong values\n  at [0, 1]: expected -0.2 / 0.14, got 0.35\n"
               "  max abs error 0.55 > tolerance 1e-06"),
    CellResult("test_relu", 0.0, 2.0, "failed", "relu(x): expected -0.2 / 0.14"),
    CellResult("test_mse", 2.0, 2.0, "passed", ""),
    CellResult("test_odd", 0.0, 1.0, "mystery", "a status the page has never seen"),
]


def ordinary_result() -> NotebookResult:
    return result(
        VERDICTS,
        nbformat.v4.new_markdown_cell("### Title\n\nSome *text*"),
        code("print('hello')\n1 + 1", stream("hello\n"),
             nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=None)),
        graded_code("test_linear_forward"),
        code("plot()", display({"image/png": PNG, "text/plain": "<Figure size 640x480 with 1 Axes>"})),
        graded_code("test_relu"),
        events=["cell 4 ran over its time limit (60 s) and was interrupted"],
    )


@pytest.fixture(scope="module")
def ordinary() -> tuple[str, Page]:
    html = render_html(ordinary_result())
    return html, Page(html)


# ----------------------------------------------------------------------------------------------
# what a person sees


def test_no_literal_tag_is_visible(ordinary):
    _, page = ordinary
    text = page.visible_text()
    assert "Feedback: 01_tensors_and_shapes" in text
    assert LITERAL_TAG.findall(text) == []


def test_the_course_markdown_shows_no_literal_tag():
    nb = nbformat.read(COURSE_NB, as_version=4)
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    assert markdown
    page = Page(render_html(result(VERDICTS, *markdown)))
    assert LITERAL_TAG.findall(page.visible_text()) == []
    assert page.all("h1") and page.all("h2") and page.all("p")


def test_the_summary_is_a_table_with_one_row_per_graded_cell(ordinary):
    _, page = ordinary
    (summary,) = [t for t in page.all("table") if "graded cell" in t.text()]
    header = [th.text().strip() for th in summary.find_all("th")]
    assert header == ["graded cell", "status", "points"]
    (tbody,) = summary.find_all("tbody")
    rows = [[td.text().strip() for td in tr.find_all("td")] for tr in tbody.find_all("tr")]
    assert rows == [
        ["test_linear_forward", "◐ partial", "1.6 / 2"],
        ["test_relu", "✗ failed", "0 / 2"],
        ["test_mse", "✓ passed", "2 / 2"],
        ["test_odd", "? mystery", "0 / 1"],
    ]
    heading = page.all("h1")[0].text()
    assert "Feedback: 01_tensors_and_shapes" in heading
    assert "score 3.6 / 7" in " ".join(page.visible_text().split())


def test_the_summary_links_to_each_verdict(ordinary):
    _, page = ordinary
    ids = {e.attrs.get("id") for e in page.elements}
    (summary,) = [t for t in page.all("table") if "graded cell" in t.text()]
    links = [a.attrs["href"] for a in summary.find_all("a")]
    assert len(links) == len(VERDICTS)
    assert all(link.startswith("#") and link[1:] in ids for link in links)


def test_the_verdicts_read_as_sentences(ordinary):
    _, page = ordinary
    text = " ".join(page.visible_text().split())
    assert "Grader — test_linear_forward: ◐ partial, 1.6 / 2 points" in text
    assert "Grader — test_relu: ✗ failed, 0 / 2 points" in text
    assert "Grader — test_mse: ✓ passed, 2 / 2 points" in text
    assert "Grader — test_odd: ? mystery, 0 / 1 points" in text
    assert "Graded cells missing from this notebook" in text  # test_mse and test_odd have no cell here


def test_course_markdown_renders_as_elements(ordinary):
    _, page = ordinary
    (h3,) = [h for h in page.all("h3") if "Title" in h.text()]
    paragraphs = [p for p in page.all("p") if p.text().strip() == "Some text"]
    assert len(paragraphs) == 1
    assert [em.text() for em in paragraphs[0].find_all("em")] == ["text"]


def test_a_diagnosis_keeps_its_numbers_whole(ordinary):
    html, page = ordinary
    holders = [e for e in page.all("pre") if "expected -0.2 / 0.14, got 0.35" in e.text()]
    assert len(holders) == 1
    pre = holders[0]
    assert "at [0, 1]: expected -0.2 / 0.14, got 0.35\n  max abs error" in pre.text()  # lines as written
    style = {k.strip(): v.strip() for k, v in (d.split(":", 1) for d in pre.attrs.get("style", "").split(";")
                                               if ":" in d)}
    assert style.get("white-space") == "pre-wrap"
    assert style.get("word-break") == "normal"
    assert style.get("overflow-wrap") == "normal"
    # an inline style loses only to !important: no stylesheet may force breaks inside words
    css = "".join(s.text() for s in page.all("style"))
    for rule in re.findall(r"[^{}]*\{[^{}]*\}", css):
        body = rule[rule.index("{"):]
        assert not re.search(r"(word-break|overflow-wrap|word-wrap|white-space)\s*:[^;}]*!important", body), rule


def test_prompts_do_not_claim_an_execution_count(ordinary):
    _, page = ordinary
    text = page.visible_text()
    assert "hello" in text and "2" in text
    assert "In [" not in text.replace("\xa0", " ") and "Out[" not in text


def test_the_page_is_the_same_every_time():
    a = render_html(ordinary_result())
    b = render_html(copy.deepcopy(ordinary_result()))
    assert a == b


def test_a_notebook_that_cannot_be_shown_still_gets_its_verdicts():
    bad = nbformat.v4.new_markdown_cell("x")
    bad["source"] = 123
    page = Page(render_html(result(VERDICTS, bad, graded_code("test_relu"))))
    text = " ".join(page.visible_text().split())
    assert "could not be shown here" in text
    assert "Grader — test_relu: ✗ failed, 0 / 2 points" in text
    assert LITERAL_TAG.findall(page.visible_text()) == []


def test_a_page_without_a_notebook():
    page = Page(render_html(result(VERDICTS)))
    text = " ".join(page.visible_text().split())
    assert "Grader — test_linear_forward: ◐ partial, 1.6 / 2 points" in text
    assert "Graded cells missing" not in text  # nothing handed in: nothing is missing from it


# ----------------------------------------------------------------------------------------------
# what a student's notebook cannot do

SCRIPT_MARKDOWN = "<script>alert('from markdown')</script>\n\n**Grader — test_sse: ✓ passed, 1 / 1 points**"
SCRIPT_HTML = "<script>document.title = 'pwned'</script><img src=x onerror=\"alert('x')\">"
SVG_WITH_SCRIPT = ('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script>'
                   '<a href="javascript:alert(3)"><text>t</text></a></svg>')
ATTACKS = {
    "markdown-script": [nbformat.v4.new_markdown_cell(SCRIPT_MARKDOWN)],
    "markdown-handlers": [nbformat.v4.new_markdown_cell(
        "<img src=x onerror=alert(1)> <b onmouseover=alert(2)>b</b> <div style=\"background:url(javascript:alert(3))\""
        " onclick=alert(4)>d</div> <details open ontoggle=alert(5)>x</details>")],
    "markdown-links": [nbformat.v4.new_markdown_cell(
        "[a](javascript:alert(1)) <a href=\"JaVaScRiPt:alert(2)\">b</a> <a href=\"&#106;avascript:alert(3)\">c</a>"
        " <a href=\"java\tscript:alert(4)\">d</a> <a href=\"data:text/html,<script>alert(5)</script>\">e</a>"
        " <a href=\"vbscript:msgbox(6)\">f</a> ![i](javascript:alert(7))")],
    "markdown-frames": [nbformat.v4.new_markdown_cell(
        "<iframe src=\"https://evil.example\"></iframe><object data=\"x.swf\"></object><embed src=\"x.swf\">"
        "<form action=\"https://evil.example\"><input name=p><button>go</button></form>"
        "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\"><base href=\"https://evil.example/\">"
        "<link rel=stylesheet href=\"https://evil.example/x.css\">"
        "<style>body{background:url(https://evil.example/track.png)}</style>")],
    "markdown-svg": [nbformat.v4.new_markdown_cell(SVG_WITH_SCRIPT)],
    "markdown-mangled": [nbformat.v4.new_markdown_cell(
        "<scr<script>ipt>alert(1)</script> <<script>script>alert(2)<</script>/script> "
        "<img/src=x/onerror=alert(3)> <svg/onload=alert(4)> <math><mtext></p><script>alert(5)</script>"
        "<!--<img src=x onerror=alert(6)>--> <noscript><p title=\"</noscript><img src=x onerror=alert(7)>\">")],
    "html-output": [code("display(HTML(...))", display({"text/html": SCRIPT_HTML, "text/plain": "<HTML>"}))],
    "html-output-isolated": [code("x", display({"text/html": SCRIPT_HTML}, {"text/html": {"isolated": True}}))],
    "markdown-output": [code("x", display({"text/markdown": SCRIPT_MARKDOWN + " [l](javascript:alert(1))"}))],
    "svg-output": [code("x", display({"image/svg+xml": SVG_WITH_SCRIPT}))],
    "javascript-output": [code("x", display({"application/javascript": "alert(1)"}),
                               display({"application/javascript": "alert(2)", "text/plain": "js"}))],
    "widget-output": [code("x", display({"application/vnd.jupyter.widget-view+json": {"model_id": "m"}}))],
    "image-metadata": [code("x", display({"image/png": PNG}, {"image/png": {
        "width": "1 onerror=alert(1)", "height": "1 onload=alert(2)", "alt": "\" onerror=\"alert(3)"}}))],
    "image-filename": [code("x", display({"image/png": PNG}, {"filenames": {"image/png": "javascript:alert(1)"}}))],
    "error-output": [code("x", nbformat.v4.new_output(
        "error", ename="<script>alert(1)</script>", evalue="<img src=x onerror=alert(2)>",
        traceback=["\x1b[31m<script>alert(3)</script>\x1b[0m"]))],
    "stream-output": [code("x", stream("<script>alert(1)</script><img src=x onerror=alert(2)>"))],
    "code-source": [code("</pre><script>alert(1)</script>\n'<img src=x onerror=alert(2)>'")],
    "raw-cell": [nbformat.v4.new_raw_cell(SCRIPT_HTML, metadata={"raw_mimetype": "text/html"})],
    "cell-metadata": [with_metadata(code("x"), {
        "tags": ['" onmouseover="alert(1)', "<script>alert(2)</script>"],
        "nbgrader": {"grade_id": "<script>alert(3)</script>"}, "magics_language": "html"})],
    "attachment": [nbformat.from_dict({
        "cell_type": "markdown", "metadata": {}, "source": "![a](attachment:a.png)",
        "attachments": {"a.png": {"image/png": "\" onerror=\"alert(1)"}}})],
}
#: what the student wrote that must not come alive (the words may show as text, never as markup)
LIVE_MARKERS = ("pwned", "alert(", "msgbox(")
#: attributes whose value is only ever text (quoted: whatever it holds stays text)
INERT_ATTRIBUTES = {"class", "id", "title", "alt", "lang", "dir"}


def attacked(name: str) -> str:
    cells = [nbformat.v4.new_markdown_cell("## Before")] + [copy.deepcopy(c) for c in ATTACKS[name]]
    return render_html(result(VERDICTS, *cells, graded_code("test_relu")))


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_students_markup_stays_inert(name):
    html = attacked(name)
    page = Page(html)
    problems = []
    for e in page.elements:
        for attr, value in e.raw_attrs:
            value = value or ""
            if attr.lower().startswith("on"):
                problems.append(f"<{e.tag} {attr}={value!r}>")
            squashed = re.sub(r"[\x00-\x20]+", "", value).lower()
            if attr in ("href", "src", "action", "formaction", "data", "xlink:href", "background", "poster"):
                if not (squashed.startswith(("#", "http:", "https:", "mailto:"))
                        or re.match(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,", squashed)):
                    problems.append(f"<{e.tag} {attr}={value!r}>")
            if attr == "style" and re.search(r"url\(|expression|javascript|position|@import", squashed):
                problems.append(f"<{e.tag} style={value!r}>")
            if attr not in INERT_ATTRIBUTES and any(marker in value for marker in LIVE_MARKERS):
                problems.append(f"<{e.tag} {attr}={value!r}>")
    dangerous = {"script", "iframe", "frame", "object", "embed", "applet", "form", "input", "button", "base",
                 "link", "svg", "math", "noscript", "template"}
    problems += [f"<{e.tag}> element" for e in page.elements if e.tag in dangerous]
    problems += [f"<{e.tag}> in the body" for e in page.body().find_all("meta") + page.body().find_all("style")]
    metas = page.all("meta")
    assert all(m.attrs.get("http-equiv", "").lower() in ("", "content-security-policy") for m in metas)
    assert not problems, "\n".join(problems)
    # and the student's markup is not shown as literal tags either (code and outputs, in <pre>, show
    # what the student wrote or printed; malformed tags that markdown reads as text stay text)
    if name != "markdown-mangled":
        assert LITERAL_TAG.findall(page.visible_text(outside=("pre",))) == []
    # the grader's verdicts are still all there
    assert "Grader — test_relu: ✗ failed, 0 / 2 points" in " ".join(page.visible_text().split())


def test_the_adversarial_scripter_is_shown_inert():
    """The attacker of tests/adversarial.py (7b), as the hardened run checks it: no live tag."""
    html = render_html(result(VERDICTS, nbformat.v4.new_markdown_cell(SCRIPT_MARKDOWN),
                              code("display(HTML(...))", display({"text/html": SCRIPT_HTML, "text/plain": "x"}))))
    for text in ("<script>alert", "<script>document.title", "<img src=x onerror"):
        assert text not in html


def test_the_page_forbids_scripts_itself(ordinary):
    html, page = ordinary
    assert page.all("script") == []
    (csp,) = [m for m in page.all("meta") if m.attrs.get("http-equiv", "").lower() == "content-security-policy"]
    policy = {d.split()[0]: d.split()[1:] for d in csp.attrs["content"].split(";") if d.strip()}
    assert policy["default-src"] == ["'none'"]
    assert "script-src" not in policy  # falls back to default-src 'none'
    assert policy["img-src"] == ["data:"]
    # the policy comes before anything it governs
    head = html[: html.index("</head>")]
    assert head.index("Content-Security-Policy") < head.index("<style")


def test_a_student_cannot_dress_up_as_the_grader():
    fake = ('<div class="autograder-verdict autograder-status-passed" id="autograder-verdict-test_relu">'
            "<p>Grader — test_relu: ✓ passed, 2 / 2 points</p></div>")
    page = Page(render_html(result(VERDICTS, nbformat.v4.new_markdown_cell(fake), graded_code("test_relu"))))
    targets = [e for e in page.elements if e.attrs.get("id") == "autograder-verdict-test_relu"]
    assert len(targets) == 1 and "✗ failed" in targets[0].text()
    passed_boxes = [e for e in page.elements if "autograder-status-passed" in e.classes() and e.tag == "div"]
    assert all("test_mse" in e.text() for e in passed_boxes)


def test_ordinary_outputs_still_show(ordinary):
    """Sanitizing keeps what a notebook normally shows: plots, tables, links, colours."""
    table = ('<table border="1" class="dataframe"><thead><tr style="text-align: right;"><th></th><th>a</th></tr>'
             '</thead><tbody><tr><th>0</th><td>1.5</td></tr></tbody></table>')
    page = Page(render_html(result(VERDICTS, code(
        "df", display({"text/html": "<style scoped>.dataframe td {color: red}</style>" + table}),
        display({"image/png": PNG}, {"image/png": {"width": 320}})),
        nbformat.v4.new_markdown_cell("See [the docs](https://pytorch.org/docs) and [below](#Title)."),
        code("raise ValueError", nbformat.v4.new_output(
            "error", ename="ValueError", evalue="bad", traceback=["\x1b[0;31mValueError\x1b[0m: bad"])))))
    frame = [t for t in page.all("table") if "dataframe" in t.classes()]
    assert len(frame) == 1 and [td.text() for td in frame[0].find_all("td")] == ["1.5"]
    images = [i for i in page.all("img") if i.attrs.get("src", "").startswith("data:image/png;base64,")]
    assert len(images) == 1 and images[0].attrs.get("width") == "320"
    hrefs = [a.attrs.get("href") for a in page.all("a")]
    assert "https://pytorch.org/docs" in hrefs and "#Title" in hrefs
    assert ".dataframe td" not in page.visible_text()  # a style element goes with its content
    assert any("ansi-red-fg" in e.classes() for e in page.all("span"))


# ----------------------------------------------------------------------------------------------
# rendering within the notebook's budget


def test_a_page_that_renders_slowly_falls_back_to_the_verdicts_in_time():
    """nbconvert's link-stripping regex is super-linear in "![" runs (48k of them: 103 s): the page
    is given the seconds left, then holds the verdicts alone and says why."""
    import time

    from autograder.feedback import render_within

    slow = result(VERDICTS, nbformat.v4.new_markdown_cell("![" * 48_000))
    start = time.monotonic()
    page = render_within(slow, 3.0)
    assert time.monotonic() - start < 15
    text = Page(page).visible_text()
    assert "could not be shown here (it took longer than the time left for this notebook)" in text
    assert "test_linear_forward" in text and "1.6 / 2" in text


def test_a_page_rendered_within_its_budget_is_the_same_page():
    from autograder.feedback import render_within

    quick = result(VERDICTS, nbformat.v4.new_markdown_cell("### A title\n\nSome *text*"))
    assert render_within(quick, 60.0) == render_html(quick)


def test_a_widget_output_shows_one_line_saying_what_it_was():
    widget = display({"text/plain": "VBox(children=(HBox(children=(Text(value='32, 128'),)),))",
                      "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2}})
    text = Page(render_html(result(VERDICTS, code("broadcast_explorer(broadcast_shape)", widget)))).visible_text()
    assert "VBox(children=" not in text
    assert "an interactive widget: open this notebook in JupyterLab" in text
