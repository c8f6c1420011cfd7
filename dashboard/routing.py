"""Websocket URLs of kfdash."""

from django.urls import path

from dashboard.consumers import ActivityConsumer

websocket_urlpatterns = [
    path("ws/ns/<str:namespace>/activity/", ActivityConsumer.as_asgi()),
]
