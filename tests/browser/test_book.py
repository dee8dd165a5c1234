"""The rendered book in a real browser (Chromium): math typeset, images loaded,
links resolved, Colab buttons pointing at notebooks."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
import yaml

from .conftest import HTML, ROOT


def _toc_pages() -> list[str]:
    """Every page in _toc.yml, as a path relative to the HTML root."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return [f"{f}.html" for f in files]


PAGES = _toc_pages()
CHAPTERS = sorted(f"chapters/{p.stem}.html" for p in (ROOT / "chapters").glob("*.md"))
SCREENSHOTS = ROOT / "_build" / "screenshots"


def _open(page, site: str, path: str) -> None:
    response = page.goto(f"{site}/{path}", wait_until="load")
    assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
    # Sphinx loads MathJax only on pages with math; MathJax 3 exposes a promise
    # that resolves once the page is typeset.
    if page.locator("script[src*='mathjax']").count():
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")


def test_every_chapter_is_in_the_toc():
    assert set(CHAPTERS) <= set(PAGES), "add the missing chapters to _toc.yml"


@pytest.mark.parametrize("path", PAGES)
def test_math_is_typeset(page, site, path):
    _open(page, site, path)
    errors = page.locator("mjx-merror").count()
    assert errors == 0, f"{path}: {errors} MathJax errors"
    # Every math node Sphinx wrote was turned into MathJax output.
    raw = page.evaluate(
        """() => [...document.querySelectorAll('.math')]
                .filter(el => !el.querySelector('mjx-container')).length"""
    )
    assert raw == 0, f"{path}: {raw} math nodes left untypeset"
    assert not page.external_requests, f"{path} reached off the machine: {page.external_requests}"


@pytest.mark.parametrize("path", PAGES)
def test_no_raw_markdown_tables(page, site, path):
    _open(page, site, path)
    raw = page.evaluate(
        """() => [...document.querySelectorAll('p')]
                .filter(p => p.textContent.includes('|---|')).length"""
    )
    assert raw == 0, f"{path}: {raw} Markdown tables rendered as text"


@pytest.mark.parametrize("path", PAGES)
def test_images_load(page, site, path):
    _open(page, site, path)
    broken = page.evaluate(
        """() => [...document.images]
                .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src)"""
    )
    assert not broken, f"{path}: images that did not load: {broken}"


@pytest.mark.parametrize("path", PAGES)
def test_internal_links_resolve(page, site, path):
    _open(page, site, path)
    hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
    own = {urldefrag(h) for h in hrefs if h.startswith(site)}
    assert own, f"{path}: no internal links at all"
    targets: dict[str, str] = {}
    for url, fragment in sorted(own):
        if url not in targets:
            response = page.request.get(url)
            assert response.ok, f"{path}: link to {url} gives HTTP {response.status}"
            targets[url] = response.text() if url.endswith(".html") else ""
        if fragment and url.endswith(".html"):
            assert re.search(rf'id="{re.escape(fragment)}"', targets[url]), (
                f"{path}: link to {url}#{fragment} has no such anchor"
            )


@pytest.mark.parametrize("path", CHAPTERS)
def test_chapter_has_figures_and_colab_notebook(page, site, path):
    _open(page, site, path)
    assert page.locator("mjx-container").count() > 0, f"{path}: no typeset math"
    figures = page.locator("figure img")
    assert figures.count() > 0, f"{path}: no figures"
    for alt in figures.evaluate_all("imgs => imgs.map(img => img.alt)"):
        assert alt and not alt.endswith(".png"), f"{path}: a figure has no alt text ({alt!r})"

    colab = page.locator("a[href^='https://colab.research.google.com/']")
    assert colab.count() == 1, f"{path}: expected one Colab button"
    href = colab.first.get_attribute("href")
    assert href.endswith(".ipynb"), f"{path}: Colab link {href} is not a notebook"
    published = href.split("/blob/", 1)[1].split("/", 1)[1]  # drop the branch
    assert (HTML / published).is_file(), (
        f"{path}: Colab points at {published}, which the build did not write"
    )

    for suffix in (".ipynb", ".md"):
        download = page.locator(f"a[href$='{suffix}']:not([href^='https://'])")
        assert download.count() >= 1, f"{path}: no {suffix} download button"
        url = urljoin(page.url, download.first.get_attribute("href"))
        assert page.request.get(url).ok, f"{path}: the {suffix} download {url} is missing"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(SCREENSHOTS / f"{Path(urlparse(page.url).path).stem}.png"), full_page=True
    )
