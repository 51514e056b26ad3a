"""MkDocs hooks of the book: minires and the chapters' helpers importable, formulas as MathML.

The formulas are written in TeX between \\( \\) or \\[ \\] (pymdownx.arithmatex leaves them in
spans) and turned into MathML here, at build time, so a page needs no script and no network to
show them: the browser draws MathML itself.
"""
import html
import pathlib
import re
import sys

import latex2mathml.converter

TOOLS = pathlib.Path(__file__).resolve().parent
REPOSITORY = TOOLS.parents[1]

ARITHMATEX = re.compile(r'<(span|div) class="arithmatex">(.*?)</\1>', re.DOTALL)
DELIMITERS = {"span": (r"\(", r"\)"), "div": (r"\[", r"\]")}


def on_config(config):
    for path in (str(REPOSITORY), str(TOOLS)):
        if path not in sys.path:
            sys.path.insert(0, path)
    return config


def to_mathml(match):
    tag, tex = match.group(1), html.unescape(match.group(2)).strip()
    opening, closing = DELIMITERS[tag]
    if not (tex.startswith(opening) and tex.endswith(closing)):
        raise ValueError(f"a formula the book cannot read: {tex[:60]!r}")
    display = "block" if tag == "div" else "inline"
    return latex2mathml.converter.convert(tex[len(opening):-len(closing)], display=display)


def on_page_content(content, page, config, files):
    return ARITHMATEX.sub(to_mathml, content)
