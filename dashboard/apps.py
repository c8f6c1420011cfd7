from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "kfdash"

    def ready(self) -> None:
        from dashboard import nav
        from dashboard.api import schema  # noqa: F401  (registers the OpenAPI auth schemes)

        nav.register(nav.Section("Home", "ns-home", "home", 0, exact=True))
        nav.register(nav.Section("Contributors", "ns-contributors", "people", 80))
        nav.register(nav.Section("API tokens", "tokens", "key", 90, namespaced=False))
