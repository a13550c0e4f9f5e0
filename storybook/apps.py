from django.apps import AppConfig


class StorybookConfig(AppConfig):
    name = "storybook"
    default_auto_field = "django.db.models.BigAutoField"
