"""The documentation site (issue 27): it builds strict, every page in its navigation is there,
and what a page loads (scripts, styles, fonts, images) comes from the site itself, so that it
reads offline and tells no other host that someone is reading."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 200


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


class _Loads(HTMLParser):
    """What a page fetches by itself (not the links a reader may follow)."""

    def __init__(self):
        super().__init__()
        self.loads: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "data-src", "poster"):
            if attrs.get(name):
                self.loads.append(attrs[name])
        if attrs.get("srcset"):
            self.loads += [part.split()[0] for part in attrs["srcset"].split(",") if part.strip()]
        if tag == "link" and attrs.get("href"):
            self.loads.append(attrs["href"])


def _external(reference: str) -> bool:
    return bool(re.match(r"^(https?:)?//", reference.strip(), re.IGNORECASE))


def test_every_page_of_the_navigation_is_built(site):
    nav = re.findall(r"^\s+- [^:]+: (\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)
    assert len(nav) >= 12
    for page in nav:
        assert (site / page.replace(".md", ".html")).is_file(), page
        assert (ROOT / "docs" / page).is_file(), page


def test_the_site_loads_nothing_from_other_hosts(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 12
    for page in pages:
        found = _Loads()
        found.feed(page.read_text(encoding="utf-8"))
        outside = [ref for ref in found.loads if _external(ref)]
        assert outside == [], f"{page.relative_to(site)} loads {outside}"
        for ref in found.loads:  # and what it loads from here is there
            path = ref.split("#")[0].split("?")[0]
            target = site / path.lstrip("/") if path.startswith("/") else page.parent / path
            assert ref.startswith("data:") or target.exists(), f"{page.name}: {ref}"
    for sheet in site.rglob("*.css"):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        imports = re.findall(r"@import\s+(?:url\()?['\"]?([^'\")\s;]+)", text)
        urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", text)
        outside = [ref for ref in imports + urls if _external(ref)]
        assert outside == [], f"{sheet.relative_to(site)} loads {outside}"
    fonts = "fonts.googleapis.com", "fonts.gstatic.com"
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not any(host in text for host in fonts), page
        links = re.findall(r'href="(https?://[^"/]+)', text)  # nor does it send readers away
        assert set(links) <= {"http://127.0.0.1:8000", "http://127.0.0.1:8001"}, (page, links)


def test_the_api_page_is_made_from_the_docstrings(site):
    page = (site / "python-api.html").read_text(encoding="utf-8")
    for name in ("train", "evaluate", "sweep", "Run", "Classifier", "load_dataset"):
        assert re.search(rf'id="mnist_cnn\.[\w.]*\b{name}"', page), name
    assert page.count("doc-section-title") >= 8  # Args and Returns as sections, not as text
    assert "The finished run (tested once on the test set)" in page  # train's own docstring


def test_the_readme_is_short_and_points_into_the_docs():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)", text))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert pages <= linked, f"pages the README does not link: {sorted(pages - linked)}"
