"""Model output as a page shows it: markdown rendered, then sanitised.

Model text is untrusted. Two fences: markdown-it renders with raw HTML off (a `<script>`
in the text becomes visible text), then nh3 (a maintained HTML sanitiser) keeps only the
tags and attributes below, so a bug or a new syntax in the renderer still cannot let
script, styles, event handlers, images or `javascript:` links through."""

from __future__ import annotations

from functools import lru_cache

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    # breaks: a single newline is a line break, as in a chat; no images (no requests to
    # hosts the model names), no raw HTML.
    return (
        MarkdownIt("commonmark", {"html": False, "breaks": True}).enable("table").disable("image")
    )


# A response is shown many times (the stream's end, each reload, the page after a pick) and
# never changes once done: each process keeps the last RENDERED_KEPT renderings.
RENDERED_KEPT = 2048


@lru_cache(maxsize=RENDERED_KEPT)
def render_markdown(text: str) -> SafeString:
    html = _renderer().render(text)
    return mark_safe(  # noqa: S308 - sanitised on the line above by nh3
        nh3.clean(
            html,
            tags=TAGS,
            attributes=ATTRIBUTES,
            url_schemes=URL_SCHEMES,
            link_rel="nofollow noopener noreferrer",
        )
    )
