"""Markdown stems and teachers' notes cannot inject script: a test per known XSS vector class.

Stems go through ``assessments.markdown.render_stem`` (Markdown, then nh3); the output is parsed and
every element and attribute checked against what may run script: only allowed tags, no ``on*`` or
``style`` attributes, ``href``/``src`` only http(s)/mailto once entities and blanks are decoded the
way a browser decodes them. A property test then mixes fragments of every vector at random. Notes
(flag resolutions, mastery overrides) are plain text: the teacher's pages must show them escaped.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from assessments.markdown import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, render_stem
from progress import flag_services, services
from progress.models import InterventionFlag
from tests.faults.hostile import TRIED
from tests.progress.flag_helpers import classroom

pytestmark = pytest.mark.fuzz

VECTORS: dict[str, list[str]] = {
    "script tags": [
        "<script>alert(1)</script>",
        "<ScRiPt>alert(1)</sCrIpT>",
        "<script src=//evil.example/x.js></script>",
        "<script>alert(1)",
        "<script\n>alert(1)</script\n>",
        "<<script>script>alert(1)<</script>/script>",
        "```\n</code></pre><script>alert(1)</script>\n```",
    ],
    "event handlers": [
        "<img src=https://example.com/a.png onerror=alert(1)>",
        "<p onmouseover=alert(1)>x</p>",
        '<a href="https://example.com" onclick="alert(1)">x</a>',
        "<body onload=alert(1)>",
        "<input autofocus onfocus=alert(1)>",
        "<details open ontoggle=alert(1)>",
        "<div onanimationstart=alert(1)>x</div>",
        '<img src="https://example.com/a.png"/onerror=alert(1)>',
        "<img src=x: onerror\t=\talert(1)>",
    ],
    "javascript: URLs": [
        "[x](javascript:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x][r]\n\n[r]: javascript:alert(1)",
        "<javascript:alert(1)>",
        '<a href="java\tscript:alert(1)">x</a>',
        '<a href="java&#x09;script:alert(1)">x</a>',
        '<a href=" &#14; javascript:alert(1)">x</a>',
        "![x](javascript:alert(1))",
        '<a href="vbscript:msgbox(1)">x</a>',
    ],
    "data: URLs": [
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
        "![x](data:image/svg+xml,<svg onload=alert(1)>)",
        '<object data="data:text/html,<script>alert(1)</script>"></object>',
    ],
    "SVG": [
        "<svg onload=alert(1)>",
        "<svg><script>alert(1)</script></svg>",
        '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
        "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
        '<svg><use href="data:image/svg+xml,<svg id=x onload=alert(1)>#x"/></svg>',
        "![x](https://evil.example/x.svg)",  # an http(s) image is allowed; an <img> SVG runs no script
    ],
    "CSS expression": [
        '<p style="width: expression(alert(1))">x</p>',
        "<div style=\"background:url('javascript:alert(1)')\">x</div>",
        "<style>@import 'https://evil.example/x.css';</style>",
        "<style>*{behavior:url(x.htc)}</style>",
        '<link rel=stylesheet href="https://evil.example/x.css">',
        '<span style="-moz-binding:url(https://evil.example/x.xml#x)">x</span>',
    ],
    "entity-encoded": [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&#60;script&#62;alert(1)&#60;/script&#62;",
        '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
        '<a href="&#x6A;avascript&colon;alert(1)">x</a>',
        '<img src=x onerror="&#97;lert(1)">',
        "[x](&#106;avascript:alert(1))",
        "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;",
        '<a href="javascript&#58;alert(1)">x</a>',
    ],
    "nested and mutation": [
        "<scr<script>ipt>alert(1)</scr</script>ipt>",
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">',
        "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
        '<textarea><img title="</textarea><img src=x onerror=alert(1)>">',
        '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
        "<!--><img src=x onerror=alert(1)>-->",
        "<![CDATA[<img src=x onerror=alert(1)>]]>",
        "\\(<img src=x onerror=alert(1)>\\)",
        "$$</span><script>alert(1)</script>$$",
        "<template><img src=x onerror=alert(1)></template>",
    ],
}

SAFE_SCHEMES = ("http:", "https:", "mailto:")
_TABS_AND_NEWLINES = re.compile(r"[\t\n\r]")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")
_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))


class Elements(HTMLParser):
    """Every start tag and its attributes, entities decoded as a browser decodes them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))

    def handle_startendtag(self, tag, attrs):
        self.found.append((tag, attrs))

    def handle_comment(self, data):
        self.comments.append(data)


def assert_inert(output: str) -> None:
    parser = Elements()
    parser.feed(output)
    parser.close()
    assert parser.comments == [], output
    for tag, attributes in parser.found:
        assert tag in ALLOWED_TAGS, (tag, output)
        for name, value in attributes:
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()) or (tag == "a" and name == "rel"), (
                tag,
                name,
                output,
            )
            assert not name.startswith("on") and name != "style", (name, output)
            if name in ("href", "src") and value is not None:
                # The URL standard: tabs and newlines are removed anywhere, C0 controls and spaces trimmed
                url = _TABS_AND_NEWLINES.sub("", html.unescape(value)).strip(_C0_AND_SPACE).lower()
                scheme = _SCHEME.match(url)  # none: a relative URL, which cannot name a script scheme
                assert scheme is None or url.startswith(SAFE_SCHEMES), (url, output)
                if name == "src":
                    assert url.startswith(("http:", "https:")), (url, output)


@pytest.mark.parametrize(
    "vector",
    [
        pytest.param(vector, id=f"{kind}-{index}")
        for kind, vectors in VECTORS.items()
        for index, vector in enumerate(vectors)
    ],
)
def test_no_vector_of_any_class_survives_the_stem_renderer(vector):
    for source in (
        vector,
        f"Question: {vector} what is 2 + 2?",
        f"> {vector}",
        f"* {vector}",
        f"| a |\n|---|\n| {vector} |",
    ):
        output = render_stem(source)
        assert_inert(output)
        assert "<script" not in output.lower()  # as (escaped) text a vector is harmless
        TRIED[("stem markdown (known vectors)", "inert")] += 1


def test_every_vector_class_is_covered():
    assert sorted(VECTORS) == sorted(
        [
            "script tags", "event handlers", "javascript: URLs", "data: URLs", "SVG", "CSS expression",
            "entity-encoded", "nested and mutation",
        ]
    )  # fmt: skip
    assert sum(len(vectors) for vectors in VECTORS.values()) == 62


FRAGMENTS = [fragment for vectors in VECTORS.values() for fragment in vectors] + [
    "<", ">", '"', "'", "=", "&", "#", ";", "`", "\\(", "\\)", "$$", "[", "](", ")", "\n", "*", "_", "javascript:",
    "on", "error", "src", "href", "<a ", "<img ", "<svg", "</", "-->", "<!--",
]  # fmt: skip


@given(parts=st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=10), max_size=12))
def test_random_mixes_of_vector_fragments_stay_inert(parts):
    assert_inert(render_stem("".join(parts)))
    TRIED[("stem markdown (random mixes)", "inert")] += 1


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(VECTORS))
def test_notes_are_shown_escaped_on_the_teachers_pages(client, kind):
    """Every vector of the class as a flag's resolution note and an override's note: the teacher's
    student page shows each as text, never as markup."""
    room = classroom(1)
    student, teacher = room.students[0], room.teacher
    payloads = VECTORS[kind]
    for index, payload in enumerate(payloads):
        flag = InterventionFlag.objects.create(
            student=student, competency=room.competencies[index % 4], kind="stuck", reason=f"reason {payload}",
            suggestion=f"suggestion {payload}", opened_at="2027-03-01T10:00:00Z",
        )  # fmt: skip
        flag_services.flag_resolve(flag=flag, user=teacher, note=f"note {index}: {payload}")
    services.mastery_override(
        student=student, competency=room.competencies[0], state="mastered", author=teacher, note=payloads[0]
    )
    client.force_login(teacher)
    page = client.get(reverse("progress:student", args=[room.section.pk, student.pk]))
    assert page.status_code == 200
    content = page.content.decode()
    for index, payload in enumerate(payloads):
        escaped = html.escape(f"note {index}: {payload}", quote=False)
        assert escaped in content or html.escape(f"note {index}: {payload}") in content, payload
        TRIED[("notes (known vectors)", "escaped")] += 1
    body = content.split("<body", 1)[1]
    for payload in payloads:
        if "<" in payload:
            assert payload not in body, payload
