from django.core.management.base import BaseCommand

from voices.services import voice_defaults_sync_all


class Command(BaseCommand):
    help = "Mirror each configured provider's default voices into the voice library."

    def handle(self, *args, **options) -> None:
        for provider, result in voice_defaults_sync_all().items():
            self.stdout.write(f"{provider}: {result}")
