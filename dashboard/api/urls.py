from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from dashboard.api import views
from notebooks.api import views as notebook_views

urlpatterns = [
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("v1/whoami", views.WhoAmIView.as_view(), name="api-whoami"),
    path("v1/namespaces", views.NamespaceListView.as_view(), name="api-namespaces"),
    path("v1/namespaces/<str:namespace>", views.NamespaceDetailView.as_view(),
         name="api-namespace"),
    path("v1/namespaces/<str:namespace>/contributors", views.ContributorListView.as_view(),
         name="api-contributors"),
    path("v1/namespaces/<str:namespace>/contributors/<str:email>",
         views.ContributorDetailView.as_view(), name="api-contributor"),
    path("v1/namespaces/<str:namespace>/activities", views.ActivityListView.as_view(),
         name="api-activities"),
    path("v1/namespaces/<str:namespace>/notebooks", notebook_views.NotebookListView.as_view(),
         name="api-notebooks"),
    path("v1/namespaces/<str:namespace>/notebooks/<str:name>",
         notebook_views.NotebookDetailView.as_view(), name="api-notebook"),
    path("v1/namespaces/<str:namespace>/notebooks/<str:name>/start",
         notebook_views.NotebookActionView.as_view(action="start"), name="api-notebook-start"),
    path("v1/namespaces/<str:namespace>/notebooks/<str:name>/stop",
         notebook_views.NotebookActionView.as_view(action="stop"), name="api-notebook-stop"),
    path("v1/namespaces/<str:namespace>/volumes", notebook_views.VolumeListView.as_view(),
         name="api-volumes"),
    path("v1/namespaces/<str:namespace>/volumes/<str:volume>",
         notebook_views.VolumeDetailView.as_view(), name="api-volume"),
    path("v1/tokens", views.TokenListView.as_view(), name="api-tokens"),
    path("v1/tokens/<int:token_id>", views.TokenDetailView.as_view(), name="api-token"),
    # Anything else (a mistyped path, a token id that is not a number): a JSON 404.
    re_path(r"^[\s\S]*$", views.not_found, name="api-not-found"),
]
