from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The shared API plumbing as an app, so its OpenAPI extensions load at start."""

    name = "config.api"
    label = "api"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI extensions)
