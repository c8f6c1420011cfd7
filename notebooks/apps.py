from django.apps import AppConfig


class NotebooksConfig(AppConfig):
    name = "notebooks"
    verbose_name = "Notebook servers"

    def ready(self) -> None:
        from dashboard import nav

        nav.register(nav.Section("Notebooks", "notebooks", "notebook", 10))
        nav.register(nav.Section("Volumes", "volumes", "volume", 15))
