"""Embeddable player URLs for lesson videos. Pure: no Django import."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_VIMEO_ID = re.compile(r"^\d+$")


def embed_url_for(url: str) -> str | None:
    """The privacy-friendly embed URL for a YouTube or Vimeo link, or None if it is not one."""
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower().removeprefix("www.").removeprefix("m.")
    path_parts = [part for part in parsed.path.split("/") if part]
    video_id = None
    if host in {"youtube.com", "youtube-nocookie.com"}:
        if parsed.path == "/watch":
            video_id = (parse_qs(parsed.query).get("v") or [None])[0]
        elif len(path_parts) >= 2 and path_parts[0] in {"embed", "shorts", "live", "v"}:
            video_id = path_parts[1]
        if video_id and _YOUTUBE_ID.match(video_id):
            return f"https://www.youtube-nocookie.com/embed/{video_id}"
    elif host == "youtu.be" and path_parts:
        if _YOUTUBE_ID.match(path_parts[0]):
            return f"https://www.youtube-nocookie.com/embed/{path_parts[0]}"
    elif host in {"vimeo.com", "player.vimeo.com"}:
        candidates = [part for part in path_parts if _VIMEO_ID.match(part)]
        if candidates:
            return f"https://player.vimeo.com/video/{candidates[0]}"
    return None
