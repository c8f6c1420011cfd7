"""Search, sort and pages for the list pages, with a fixed number of queries per page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

PAGE_SIZE = 20
# Both lists sort by name or creation time; the first key of a column is its first click.
SORTS = {"-created": ["-created_at", "-pk"], "created": ["created_at", "pk"],
         "name": ["name", "pk"], "-name": ["-name", "-pk"]}


@dataclass
class Listing:
    page: Page
    query: str  # the search text
    sort: str  # one of the sort keys offered
    params: dict[str, str]  # what links to other pages or sorts keep (search, tab)
    sorts: list[str]  # the sort keys offered
    first: dict[str, str]  # per column, the sort a first click asks for

    def link(self, **changes) -> str:
        """A query string for this list with some parameters changed (or dropped: None)."""
        merged = {**self.params, "sort": self.sort, **changes}
        return "?" + urlencode({k: v for k, v in merged.items() if v not in (None, "")})

    @property
    def clear_link(self) -> str:
        return self.link(q=None, page=None)

    @property
    def previous_link(self) -> str:
        return self.link(page=self.page.previous_page_number()) if self.page.has_previous() \
            else ""

    @property
    def next_link(self) -> str:
        return self.link(page=self.page.next_page_number()) if self.page.has_next() else ""

    @property
    def headers(self) -> dict[str, dict]:
        """Per sortable column (``name``, ``created``): the link that sorts by it (the
        other way round when it is the current sort) and its ``aria-sort`` value."""
        columns = {}
        for key in self.sorts:
            base = key.lstrip("-")
            if base in columns:
                continue
            current = self.sort.lstrip("-") == base
            descending = self.sort.startswith("-")
            flip = (base if descending else f"-{base}") if current else self.first[base]
            columns[base] = {"href": self.link(sort=flip, page=None),
                             "aria": ("descending" if descending else "ascending")
                             if current else "none"}
        return columns


def paginate(request, queryset: QuerySet, sorts: dict[str, list], default: str,
             params: dict[str, str] | None = None,
             search: Callable[[QuerySet, str], QuerySet] | None = None,
             decorate: Callable[[list], list] | None = None,
             ids_first: bool = False) -> Listing:
    """Filter by ``?q=`` (name contains, or what ``search`` does with it), order by
    ``?sort=`` (a key of ``sorts``), and return ``?page=``: one COUNT and one page query
    (two with ``ids_first``), however many rows there are (plus what ``decorate`` does to
    the page's rows). Every
    ordering ends with the primary key, so pages never repeat or skip rows that tie."""
    query = request.GET.get("q", "").strip()
    if query:
        queryset = search(queryset, query) if search else queryset.filter(
            name__icontains=query)
    sort = request.GET.get("sort", default)
    if sort not in sorts:
        sort = default
    queryset = queryset.order_by(*sorts[sort])
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    if ids_first:
        # The page's ids first (the sort index alone can answer), then those rows: a far
        # page then skips index entries, not joined rows.
        ids = list(page.object_list.values_list("pk", flat=True))
        rows = {row.pk: row for row in queryset.order_by().filter(pk__in=ids)}
        page.object_list = [rows[pk] for pk in ids if pk in rows]
    if decorate is not None:
        page.object_list = decorate(list(page.object_list))
    first = {}
    for key in sorts:  # the first key offered for a column is its first click
        first.setdefault(key.lstrip("-"), key)
    return Listing(page=page, query=query, sort=sort, params={"q": query, **(params or {})},
                   sorts=list(sorts), first=first)
