# Sphinx configuration of the Pepeunit documentation. Build with `npm run docs`
# (it first renders the REST API reference into api/ from the OpenAPI document).
import json
import pathlib

_package = json.loads((pathlib.Path(__file__).parent.parent / "package.json").read_text())

project = "Pepeunit"
author = "Pepeunit contributors"
version = release = _package["version"]

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
master_doc = "index"
exclude_patterns = ["_build", "scripts", "grafana"]

myst_enable_extensions = ["colon_fence", "deflist"]
# Headings up to ### get anchors, so pages can link to each other's sections.
myst_heading_anchors = 3

html_theme = "sphinx_rtd_theme"
html_static_path = ["_static"]
html_title = "Pepeunit documentation"
html_show_sourcelink = False
html_css_files = ["custom.css"]
