"""Every URL of kfdash. Namespaced pages live under /ns/<namespace>/."""

from django.urls import include, path

from dashboard.views import auth, contributors, health, namespaces, tokens
from notebooks import views as notebook_views
from pipelines.views import kfp_links

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("", namespaces.home, name="home"),
    path("register/", namespaces.register, name="register"),
    path("namespaces/", namespaces.memberships, name="memberships"),
    path("switch-namespace/", namespaces.switch_namespace, name="switch-namespace"),
    path("tokens/", tokens.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", tokens.revoke_token, name="revoke-token"),
    path("ns/<str:namespace>/", namespaces.namespace_home, name="ns-home"),
    path("ns/<str:namespace>/contributors/", contributors.contributors, name="ns-contributors"),
    path("ns/<str:namespace>/contributors/remove/", contributors.remove_contributor,
         name="ns-remove-contributor"),
    path("ns/<str:namespace>/notebooks/", include("notebooks.urls")),
    path("ns/<str:namespace>/volumes/", notebook_views.volume_list, name="volumes"),
    path("ns/<str:namespace>/volumes/<str:volume>/delete/", notebook_views.volume_delete,
         name="volume-delete"),
    path("ns/<str:namespace>/", include("pipelines.urls")),  # pipelines and experiments pages
    # The KFP UI's links the kfp SDK prints (#/runs/details/<id>...), as static/js/kfp-links.js
    # rewrites them: each finds its object and redirects to its namespaced page.
    path("go/runs/<uuid:run_id>/", kfp_links.go_run, name="go-run"),
    path("go/experiments/<uuid:experiment_id>/", kfp_links.go_experiment,
         name="go-experiment"),
    path("go/pipelines/<uuid:pipeline_id>/", kfp_links.go_pipeline, name="go-pipeline"),
    path("go/pipelines/<uuid:pipeline_id>/versions/<uuid:version_id>/", kfp_links.go_pipeline,
         name="go-pipeline-version"),
    path("api/", include("dashboard.api.urls")),
    path("apis/", include("pipelines.api.urls")),  # the Kubeflow Pipelines API
]

handler500 = "dashboard.database_errors.server_error"
