"""Bring the voices a provider account already has into the library, each with an owner."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tts.providers import ProviderError, clone_provider_name, is_configured
from tts.providers.registry import PROVIDER_NAMES
from voices.imports import MappingFileError, provider_voices_import, read_owner_map


class Command(BaseCommand):
    help = ("Import the provider account's own voices into the library. Owners come from --map "
            "(CSV: provider_voice_id,owner_email) and/or --label KEY (the voice's label KEY holds the "
            "owner's email). Prints what it would do; --apply writes.")

    def add_arguments(self, parser):
        parser.add_argument("--map", dest="map_file", metavar="FILE",
                            help="CSV with the columns provider_voice_id,owner_email")
        parser.add_argument("--label", metavar="KEY", help="the provider label that holds the owner's email")
        parser.add_argument("--provider", choices=PROVIDER_NAMES,
                            help="the provider account to read (default: the one new clones use)")
        parser.add_argument("--apply", action="store_true", help="write the voices (without it: a dry run)")

    def handle(self, *args, map_file: str | None, label: str | None, provider: str | None, apply: bool,
               **options):
        if not map_file and not label:
            raise CommandError("Say who owns the voices: --map FILE and/or --label KEY.")
        provider = provider or clone_provider_name()
        if not is_configured(provider):
            raise CommandError(f"The {provider} provider is not configured.")
        owners = {}
        if map_file:
            try:
                owners = read_owner_map(Path(map_file).read_text(encoding="utf-8-sig"))
            except OSError as exc:
                raise CommandError(f"{map_file}: {exc.strerror}") from exc
            except (MappingFileError, UnicodeDecodeError) as exc:
                raise CommandError(f"{map_file}: {exc}") from exc
        try:
            report = provider_voices_import(provider_name=provider, owners=owners, label=label, apply=apply)
        except ProviderError as exc:
            raise CommandError(f"{provider} could not list the account's voices: {exc.code}: {exc}") from exc

        verb = "created" if apply else "would create"
        sections = [
            (verb, report.created, "owner"),
            ("skipped, already in the library", report.skipped, "status"),
            ("unmapped, no owner in the map or the label", report.unmapped, None),
            ("unknown owner, no active account has the email", report.unknown_owner, "owner"),
            ("mapped but not in the provider account", report.not_in_account, "owner"),
        ]
        for title, rows, extra in sections:
            if not rows:
                continue
            self.stdout.write(f"{title}:")
            for row in rows:
                shown = {"owner": row.owner_email, "status": row.status}.get(extra or "", "")
                self.stdout.write(f"  {row.provider_voice_id}  {row.name!r}" + (f"  {shown}" if shown else ""))
        counts = report.counts()
        self.stdout.write(
            ("" if apply else "Dry run, nothing written (--apply writes). ")
            + f"{provider}: {counts['created']} {verb}, {counts['skipped']} skipped, {counts['unmapped']} unmapped, "
            f"{counts['unknown_owner']} unknown owner, {counts['not_in_account']} not in the account."
        )
