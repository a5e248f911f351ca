"""`fclf plots`: DVC's plot page with Vega inlined, so it renders without network."""

from __future__ import annotations

import re

from dvc_render.html import render_html
from dvc_render.vega import VegaRenderer

from fclf.cli.offline_plots import offline_template

CDN = re.compile(r"<script[^>]*\bsrc\s*=", re.IGNORECASE)


def test_the_template_inlines_vega_and_keeps_dvcs_placeholders() -> None:
    page = offline_template()
    assert "{plot_divs}" in page and "{scripts}" not in page
    assert not CDN.search(page)
    assert "vegaEmbed" in page and len(page) > 100_000  # the libraries themselves


def test_a_rendered_page_references_no_remote_script(tmp_path) -> None:
    template = tmp_path / "template.html"
    template.write_text(offline_template(), encoding="utf8")
    renderer = VegaRenderer([{"step": 0, "loss": 1.0, "rev": "HEAD"},
                             {"step": 1, "loss": 0.5, "rev": "HEAD"}],
                            "loss", x="step", y="loss", template="linear")
    out = render_html([renderer], tmp_path / "index.html", html_template=template)
    page = (tmp_path / "index.html").read_text() if out else ""
    assert "vegaEmbed('#" in page  # DVC's plot div is there
    assert not CDN.search(page)
    assert "cdn.jsdelivr" not in page
    # DVC's default page would load Vega from a CDN: the check above is not vacuous
    default = tmp_path / "default.html"
    render_html([renderer], default)
    assert CDN.search(default.read_text())
