"""Make an existing user a voice moderator (staff, in the Moderators group), or stop that."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from voices.moderators import MODERATORS_GROUP


class Command(BaseCommand):
    help = "Make an existing user a voice moderator (--remove: no longer one)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--remove", action="store_true", help="take the moderator role away")

    def handle(self, *args, email: str, remove: bool, **options):
        user = get_user_model().objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No user with the email {email!r}.")
        group = Group.objects.get(name=MODERATORS_GROUP)
        if remove:
            user.groups.remove(group)
            if not user.is_superuser and not user.groups.exists():
                user.is_staff = False  # staff only to moderate: no admin left for them
                user.save(update_fields=["is_staff"])
            self.stdout.write(f"{user.email} is no longer a moderator.")
            return
        user.groups.add(group)
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        self.stdout.write(f"{user.email} is a moderator: they can sign in at /admin/ and moderate voices.")
