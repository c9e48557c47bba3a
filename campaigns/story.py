"""A maker's story and updates: Markdown in, HTML that is safe to put on any page out.

markdown-it renders (raw HTML allowed, every link accepted), then nh3 keeps only an allow-list of tags, attributes and
URL schemes. Sanitising after rendering means one place decides what survives, whatever Markdown produced.
"""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

_ALLOWED_TAGS = frozenset(
    {
        "h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote", "pre", "code",
        "em", "strong", "del", "s", "sub", "sup", "ul", "ol", "li", "a", "img",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "code": {"class"},
    "th": {"align"},
    "td": {"align"},
}
_URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Tags whose content goes with them: the text of a script is never a story.
_DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "noscript", "template", "svg", "math"}
)
_LANGUAGE_CLASS = re.compile(r"^language-[A-Za-z0-9_+#.-]{1,40}$")


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    # Every link is rendered as a link, so that nh3 (not markdown-it's blocklist) decides which schemes survive:
    # a refused `javascript:` link then disappears instead of staying on the page as text.
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


_MD = _markdown()


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "code" and attribute == "class":
        return value if _LANGUAGE_CLASS.match(value) else None
    return value


def sanitise_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(_ALLOWED_TAGS),
        clean_content_tags=set(_DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in _ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_keep_attribute,
        url_schemes=set(_URL_SCHEMES),
        link_rel="noopener noreferrer nofollow ugc",
        strip_comments=True,
    )


def render_story(markdown: str) -> str:
    """Markdown (a campaign's description or an update) as sanitised HTML."""
    if not markdown.strip():
        return ""
    return sanitise_html(_MD.render(markdown))
