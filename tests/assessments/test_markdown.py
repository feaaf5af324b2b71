"""Stems are Markdown, sanitised: formatting, tables, code, images and math survive; script does not."""

from __future__ import annotations

import pytest

from assessments.markdown import render_stem


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>Question",
        "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>Question",
        "<img src=https://example.com/a.png onerror=alert(1)>",
        "[click](javascript:alert(1))",
        '<a href="JaVaScRiPt:alert(1)">click</a>',
        '<a href="  javascript:alert(1)">click</a>',
        "<svg onload=alert(1)><circle r=1 /></svg>",
        "<style>body { display: none }</style><p style='color:red'>x</p>",
        '<iframe src="https://evil.example"></iframe>',
        '<p onclick="alert(1)" onmouseover="alert(2)">hover</p>',
        '<object data="https://evil.example/x.swf"></object><embed src="x">',
        '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
        '<form action="https://evil.example"><input name=a></form>',
        "![x](javascript:alert(1))",
    ],
)
def test_no_xss_vector_survives(source):
    html = render_stem(source).lower()
    for forbidden in (
        "<script",
        "javascript:",
        "onerror",
        "onload",
        "onclick",
        "onmouseover",
        "<svg",
        "<style",
        "style=",
        "<iframe",
        "<object",
        "<embed",
        "data:",
        "<form",
        "<input",
    ):
        assert forbidden not in html, (forbidden, html)


def test_script_content_is_dropped_not_shown():
    assert render_stem("<script>alert(1)</script>Question") == "\n<p>Question</p>"


def test_formatting_lists_and_code():
    assert render_stem("**Bold** and *it* and `x < 1`") == (
        "<p><strong>Bold</strong> and <em>it</em> and <code>x &lt; 1</code></p>"
    )
    assert render_stem("- a\n- b") == "<ul>\n<li>a</li>\n<li>b</li>\n</ul>"
    assert (
        render_stem("```python\nprint(1)\n```")
        == '<pre><code class="language-python">print(1)\n</code></pre>'
    )


def test_tables_keep_their_alignment():
    html = render_stem("| x | y |\n|:--|--:|\n| 1 | 2 |")
    assert '<th align="left">x</th>' in html
    assert '<td align="right">2</td>' in html


def test_images_only_with_http_or_https_sources():
    assert render_stem("![graph](https://example.com/g.png)") == (
        '<p><img alt="graph" src="https://example.com/g.png"></p>'
    )
    assert render_stem("![graph](/media/g.png)") == '<p><img alt="graph"></p>'


def test_links_get_a_safe_rel():
    assert render_stem("[doc](https://example.com)") == (
        '<p><a href="https://example.com" rel="noopener noreferrer nofollow">doc</a></p>'
    )


def test_math_is_left_as_text_for_the_client_renderer():
    source = r"Solve \(x_1 * y_2 < 3\) then $$\frac{a}{b}$$ and \[a_1 + b_1\]"
    assert render_stem(source) == (
        r"<p>Solve \(x_1 * y_2 &lt; 3\) then $$\frac{a}{b}$$ and \[a_1 + b_1\]</p>"
    )


def test_math_cannot_smuggle_markup():
    html = render_stem(r"\(<img src=x onerror=alert(1)>\)")
    assert "<img" not in html
    assert "&lt;img" in html
