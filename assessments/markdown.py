"""Item stems: Markdown rendered to HTML, then sanitised with nh3 (ammonia) before any browser sees it.

Allowed: text formatting, lists, tables, code, links (http, https, mailto) and images with an
absolute http/https ``src``. Never: scripts, styles, frames, SVG, ``on*`` attributes or
``javascript:`` URLs. Math is left as text for a client-side renderer (KaTeX, MathJax): ``\\( \\)``,
``\\[ \\]`` and ``$$ $$`` spans are cut out before Markdown runs (which would otherwise eat the
backslashes and read ``*`` and ``_`` as emphasis) and put back verbatim, HTML-escaped.
"""

from __future__ import annotations

import html
import re
import secrets

import markdown as markdown_lib
import nh3

ALLOWED_TAGS = {
    "a",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align"},
    "th": {"align"},
    "code": {"class"},
}
URL_SCHEMES = {"http", "https", "mailto"}

_MATH = re.compile(r"\\\(.+?\\\)|\\\[.+?\\\]|\$\$.+?\$\$", re.DOTALL)


def _keep_safe_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        return value if value.lower().startswith(("http://", "https://")) else None
    if tag == "code" and attribute == "class":
        # Only fenced-code language hints ("language-python").
        return value if re.fullmatch(r"language-[\w+-]+", value) else None
    return value


def render_stem(text: str) -> str:
    """Markdown to sanitised HTML, math spans kept verbatim."""
    nonce = secrets.token_hex(4)
    spans: list[str] = []

    def cut(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"MATH{nonce}N{len(spans) - 1}E"

    protected = _MATH.sub(cut, text or "")
    rendered = markdown_lib.markdown(
        protected,
        extensions=["tables", "fenced_code", "sane_lists"],
        extension_configs={"tables": {"use_align_attribute": True}},
        output_format="html",
    )
    for index, span in enumerate(spans):
        rendered = rendered.replace(f"MATH{nonce}N{index}E", html.escape(span, quote=False))
    return nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        attribute_filter=_keep_safe_attribute,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
