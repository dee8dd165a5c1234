"""Sphinx extension for the selfsup book: Colab notebooks and offline MathJax.

Colab cannot open a jupytext Markdown chapter, so this extension

1. writes every chapter as a plain ``.ipynb`` (no outputs) under
   ``<html>/<colab_notebooks_dir>/``, and
2. points each page's Colab launch button at that notebook where the site is
   published: ``github/<org>/<repo>/blob/<colab_notebooks_branch>/<dir>/<page>.ipynb``
   (the GitHub Pages workflow pushes the built site, notebooks included, to that
   branch).

It draws the book's schematic figures that no chapter executes (the taxonomy of the
introduction) with ``selfsup.plotting`` into ``book/_static/figures/`` before any
page is read, so they come from code like every other figure.

It also copies MathJax 3, installed from the npm registry by ``make``, into
``_static/mathjax`` so that ``mathjax_path = "mathjax/tex-chtml.js"`` works offline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jupytext
import nbformat
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

COLAB = "https://colab.research.google.com"


def _colab_url(app: Sphinx, pagename: str) -> str:
    repo_url = app.config.html_theme_options.get("repository_url", "").rstrip("/")
    if "github.com/" not in repo_url:
        raise ExtensionError(
            f"repository.url must be a GitHub URL for Colab links, got {repo_url!r}"
        )
    org, repo = repo_url.split("github.com/")[1].split("/")[:2]
    path = f"{app.config.colab_notebooks_dir}/{pagename}.ipynb"
    return f"{COLAB}/github/{org}/{repo}/blob/{app.config.colab_notebooks_branch}/{path}"


def point_colab_at_notebook(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Rewrite the theme's Colab button (it points at the .md) to the .ipynb."""
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if button.get("text") == "Colab":
                button["url"] = _colab_url(app, pagename)


def write_notebooks_and_mathjax(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    chapters = [doc for doc in app.env.found_docs if "kernelspec" in app.env.metadata[doc]]
    for pagename in sorted(chapters):
        notebook = jupytext.read(app.env.doc2path(pagename))
        notebook.metadata.pop("jupytext", None)
        target = out / app.config.colab_notebooks_dir / f"{pagename}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)

    source = Path(app.confdir) / app.config.mathjax_source
    if not (source / "tex-chtml.js").exists():
        raise ExtensionError(
            f"MathJax not found at {source}; run `npm ci` in the repository root (make does this)"
        )
    shutil.copytree(source, out / "_static" / "mathjax", dirs_exist_ok=True)


def draw_figures(app: Sphinx) -> None:
    """Write the schematic figures the pages include (gitignored, redrawn each build)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from selfsup.book import drawings

    target = Path(app.confdir) / "book" / "_static" / "figures"
    target.mkdir(parents=True, exist_ok=True)
    fig = drawings.taxonomy()
    fig.savefig(target / "taxonomy.svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)


def setup(app: Sphinx) -> dict:
    app.add_config_value("colab_notebooks_branch", "gh-pages", "html")
    app.add_config_value("colab_notebooks_dir", "_notebooks", "html")
    app.add_config_value("mathjax_source", "node_modules/mathjax/es5", "html")
    # After sphinx-book-theme's launch buttons (priority 501).
    app.connect("html-page-context", point_colab_at_notebook, priority=502)
    app.connect("builder-inited", draw_figures)
    app.connect("build-finished", write_notebooks_and_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
