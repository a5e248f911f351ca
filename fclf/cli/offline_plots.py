"""`fclf plots show|diff`: DVC's interactive plots as one self-contained HTML file.

`dvc plots show` writes an HTML page whose <script> tags load Vega, Vega-Lite
and Vega-Embed from a CDN, so every chart is blank on an offline machine. DVC
accepts an HTML template (`--html-template`); its `{scripts}` placeholder is
where those CDN tags go. The template built here leaves that placeholder out
and inlines the libraries instead, as bundled by vl-convert-python (a PyPI
package that ships them), so the page needs no network. Everything else —
which plots, revisions, templates — is DVC's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

VEGA_LITE_VERSION = "5.20"  # DVC's specs are Vega-Lite 5
TEMPLATE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot (offline)</title>
    <script type="text/javascript">
__BUNDLE__
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def offline_template() -> str:
    """A DVC HTML template with Vega, Vega-Lite and Vega-Embed inlined (no remote URL)."""
    import vl_convert  # a dependency: ships Vega, Vega-Lite and Vega-Embed

    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)
    for placeholder in ("{plot_divs}", "{scripts}", "{refresh_tag}"):
        if placeholder in bundle:  # DVC fills placeholders by plain text replacement
            bundle = bundle.replace(placeholder, placeholder.replace("{", "{ "))
    return TEMPLATE.replace("__BUNDLE__", bundle)


def run_dvc_plots(action: str, args: list[str]) -> int:
    """Run `dvc plots <action> ARGS --html-template <offline template>`; returns its exit code."""
    with tempfile.TemporaryDirectory() as folder:
        template = Path(folder) / "offline_template.html"
        template.write_text(offline_template(), encoding="utf8")
        env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_STUDIO_OFFLINE": "1"}
        command = [sys.executable, "-m", "dvc", "plots", action, *args,
                   "--html-template", str(template)]
        return subprocess.run(command, env=env).returncode
