import pytest

from competencies.embeds import embed_url_for


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.youtube.com/watch?v=HpdMJaKaXXc", "https://www.youtube-nocookie.com/embed/HpdMJaKaXXc"),
        ("https://youtu.be/HpdMJaKaXXc?t=30", "https://www.youtube-nocookie.com/embed/HpdMJaKaXXc"),
        ("https://m.youtube.com/shorts/HpdMJaKaXXc", "https://www.youtube-nocookie.com/embed/HpdMJaKaXXc"),
        ("https://www.youtube.com/embed/HpdMJaKaXXc", "https://www.youtube-nocookie.com/embed/HpdMJaKaXXc"),
        ("https://vimeo.com/76979871", "https://player.vimeo.com/video/76979871"),
        ("https://player.vimeo.com/video/76979871?h=abc", "https://player.vimeo.com/video/76979871"),
        ("https://www.youtube.com/watch?v=short", None),
        (
            "https://www.youtube.com/watch?v=HpdMJaKaXXc&v=x<script>",
            "https://www.youtube-nocookie.com/embed/HpdMJaKaXXc",
        ),
        ("https://example.org/video.mp4", None),
        ("https://evil.example/youtube.com/watch?v=HpdMJaKaXXc", None),
        ("not a url", None),
    ],
)
def test_embed_url_for(url, expected):
    assert embed_url_for(url) == expected
