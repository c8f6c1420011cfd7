"""Template filters shared by every page."""

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(moment: datetime | None) -> str:
    """'just now', '5 minutes ago', … — what a feed line says about its time."""
    if moment is None:
        return ""
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment)} ago"


@register.filter
def short_image(image: str) -> str:
    """An image reference without its registry and path: 'jupyter-scipy:v1.9.2'."""
    return (image or "").rsplit("/", 1)[-1]


@register.filter
def when(value) -> str:
    """An ISO 8601 time (as events carry them) shown as 'YYYY-MM-DD HH:MM:SS'."""
    from django.utils.dateparse import parse_datetime

    moment = parse_datetime(str(value or ""))
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else str(value or "")
