from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = "Pipelines"

    def ready(self) -> None:
        from dashboard import nav

        nav.register(nav.Section("Pipelines", "pipelines", "pipeline", 20))
        nav.register(nav.Section("Experiments", "experiments", "experiment", 30))
        nav.register(nav.Section("Runs", "runs", "run", 40))
        nav.register(nav.Section("Recurring runs", "recurring", "schedule", 42))
        nav.register(nav.Section("Artifacts", "artifacts", "artifact", 45))
