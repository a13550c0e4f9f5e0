from django.core.management.base import BaseCommand

from voices.sync import voices_pending_reconcile


class Command(BaseCommand):
    help = "Put every processing voice back in the pending set (Redis may have lost it); `make run` runs it at start."

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"{voices_pending_reconcile()} processing voice(s) added to the pending set")
