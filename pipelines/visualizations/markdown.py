"""Markdown outputs as safe HTML: mistune with ``escape=True`` shows any raw HTML in the
text as text, and nh3 (ammonia) cleans the result again, in case the renderer ever lets
something through: no script, no event handler, no ``javascript:`` link."""

from __future__ import annotations

import mistune
import nh3

_render = mistune.create_markdown(escape=True, plugins=["table", "strikethrough", "url"])
URL_SCHEMES = {"http", "https", "mailto"}


def to_html(text: str) -> str:
    return nh3.clean(_render(text), url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer nofollow")
