"""Model output as markdown: rendered, and sanitised so that no corpus of XSS payloads
leaves anything executable (the browser test renders the same corpus in Chromium)."""

from html.parser import HTMLParser

import pytest

from labeling.rendering import render_markdown

XSS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '![x](x" onerror="alert(1))',
    '<div style="background:url(javascript:alert(1))">x</div>',
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    "<details open ontoggle=alert(1)>",
    '[x](https://example.com" onclick="alert(1))',
    "<<script>script>alert(1)<</script>/script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    "<form action=javascript:alert(1)><button>x</button></form>",
]
SAFE_TAGS = {"p", "br", "strong", "em", "code", "pre", "a", "ul", "ol", "li", "blockquote"}


class Elements(HTMLParser):
    """The real elements and attributes of a fragment (escaped text is not one)."""

    def __init__(self, html: str):
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


@pytest.mark.parametrize("payload", XSS)
def test_no_payload_in_model_output_leaves_anything_executable(payload):
    for tag, attrs in Elements(str(render_markdown(payload))).found:
        assert tag in SAFE_TAGS, tag
        assert not [name for name in attrs if name.startswith("on") or name == "style"]
        if "href" in attrs:
            assert attrs["href"].lower().startswith(("http://", "https://", "mailto:"))


def test_markdown_is_rendered_with_line_breaks_lists_code_and_safe_links():
    html = str(render_markdown("**Head-lying is Bad**\nnext\n\n1. one\n2. two\n\n`x<y`"))
    assert "<strong>Head-lying is Bad</strong><br>" in html
    assert "<ol>" in html and "<li>two</li>" in html and "<code>x&lt;y</code>" in html
    link = str(render_markdown("[docs](https://example.com)"))
    assert 'href="https://example.com"' in link and 'rel="nofollow noopener noreferrer"' in link
