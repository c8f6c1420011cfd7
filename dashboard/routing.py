"""Websocket URLs of kfdash."""

from django.urls import path

from dashboard.consumers import ActivityConsumer
from notebooks.consumers import NotebookConsumer, NotebookLogConsumer

websocket_urlpatterns = [
    path("ws/ns/<str:namespace>/activity/", ActivityConsumer.as_asgi()),
    path("ws/ns/<str:namespace>/notebooks/", NotebookConsumer.as_asgi()),
    path("ws/ns/<str:namespace>/notebooks/<str:name>/logs/", NotebookLogConsumer.as_asgi()),
]
