"""The left navigation: each app registers its sections when it is ready.

Sections appear only once an app provides them, so the menu never links to a
page that does not exist yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse


@dataclass(frozen=True)
class Section:
    label: str
    url_name: str
    icon: str  # a name from static/icons.svg
    order: int
    namespaced: bool = True  # its URL takes the namespace
    exact: bool = False  # current only on its own URL, not on the pages below it


_sections: dict[str, Section] = {}


def register(section: Section) -> None:
    _sections[section.url_name] = section


def sections() -> list[Section]:
    return sorted(_sections.values(), key=lambda s: s.order)


def links(namespace: str | None, path: str) -> list[dict]:
    """The menu for a page: label, href, icon, and whether it is the current section."""
    items = []
    for section in sections():
        if section.namespaced and not namespace:
            continue
        href = reverse(section.url_name, args=[namespace] if section.namespaced else [])
        active = path == href or (not section.exact and path.startswith(href))
        items.append({"label": section.label, "href": href, "icon": section.icon,
                      "active": active})
    return items
