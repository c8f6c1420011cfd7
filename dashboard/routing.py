"""Websocket URLs of kfdash."""

from django.urls import path

from dashboard.consumers import ActivityConsumer
from notebooks.consumers import NotebookConsumer, NotebookLogConsumer
from pipelines.consumers import RunConsumer, RunListConsumer, RunTaskLogConsumer

websocket_urlpatterns = [
    path("ws/ns/<str:namespace>/activity/", ActivityConsumer.as_asgi()),
    path("ws/ns/<str:namespace>/notebooks/", NotebookConsumer.as_asgi()),
    path("ws/ns/<str:namespace>/notebooks/<str:name>/logs/", NotebookLogConsumer.as_asgi()),
    path("ws/ns/<str:namespace>/runs/", RunListConsumer.as_asgi()),
    path("ws/ns/<str:namespace>/runs/<uuid:run_id>/", RunConsumer.as_asgi()),
    path("ws/ns/<str:namespace>/runs/<uuid:run_id>/tasks/<path:node_id>/log/",
         RunTaskLogConsumer.as_asgi()),
]
