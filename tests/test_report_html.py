"""Structure checks on the HTML report: anchors and images per finding, nothing external, logs escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from test_report_model import read_fixture, sample_result, scrub

from summary_doctor.findings import AuditResult, Diagnosis
from summary_doctor.report import render
from summary_doctor.report.html import render_view
from summary_doctor.report.model import build_report


class Elements(HTMLParser):
    """Collect (tag, attributes) of every start tag and the text of <script> blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


@pytest.fixture(scope="module")
def page() -> str:
    return render("html", sample_result(runs=("healthy_mlp", "healthy_cnn"), cross=True))


@pytest.fixture(scope="module")
def parsed(page) -> Elements:
    parser = Elements()
    parser.feed(page)
    return parser


def test_every_finding_has_an_anchor_and_an_inline_png(parsed):
    articles = [a for t, a in parsed.elements if t == "article"]
    assert len(articles) == 7
    ids = [a["id"] for t, a in parsed.elements if "id" in a]
    assert len(ids) == len(set(ids))
    html_after = {a["id"] for a in articles}
    assert all(re.fullmatch(r"(run-\d+|across)-[a-z0-9-]+", i) for i in html_after)
    images = [a["src"] for t, a in parsed.elements if t == "img"]
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert len([s for s in images if s]) >= len(articles)


def test_each_article_holds_its_own_image(page):
    for article in re.findall(r"<article.*?</article>", page, flags=re.S):
        assert '<img src="data:image/png;base64,' in article


def test_links_point_inside_the_page(parsed):
    ids = {a["id"] for _, a in parsed.elements if "id" in a}
    hrefs = [a["href"] for t, a in parsed.elements if t == "a"]
    assert hrefs and all(h.startswith("#") and h[1:] in ids for h in hrefs)


def test_no_external_reference(page):
    for attribute in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page):
        assert attribute.startswith(("#", "data:")), attribute
    assert not re.search(r"url\(\s*['\"]?(?!data:)", page)
    assert "http://" not in page and "https://" not in page
    assert not re.search(r'(?:src|href)\s*=\s*"//', page)
    assert "<link" not in page and "@import" not in page


def test_hostile_tag_names_are_escaped(page, parsed):
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert all("alert(1)" not in script for script in parsed.scripts)
    assert '"onload=' not in page
    for _, attributes in parsed.elements:
        assert not any(name.startswith("on") for name in attributes)


def test_one_run_has_no_summary_table_and_no_script():
    html = render_view(build_report(sample_result(), plots=False))
    assert 'id="summary"' not in html and "<script" not in html
    assert html.count('class="verdict') == 1


def test_print_styles_and_no_javascript_needed(page):
    assert "@media print" in page
    assert page.count("<script") == 1  # the optional sort of the run table


def test_clean_run_says_so():
    html = render("html", AuditResult(".", [Diagnosis(read_fixture("healthy_cnn"))]))
    assert "No findings: every checkable item passed." in html


def test_report_size_stays_small(page):
    assert len(page) < 5_000_000


def test_html_skeleton_golden(golden):
    html = render_view(build_report(sample_result(runs=("healthy_mlp", "healthy_cnn"), cross=True), plots=False))
    golden("report.html", scrub(html))
