"""Bringing voices that already live in the provider account into the library, each with an owner.

The owner of a provider voice comes from a mapping (`provider_voice_id -> email`, from a CSV file)
or from one of the voice's labels holding the email; the mapping wins where both say something.
A provider voice is imported at most once: a row for it (even a deleted one) means "skipped", and
the (provider, provider_voice_id) constraint stops two concurrent runs from both adding it.
"""

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from accounts.models import normalize_email
from tts.providers import get_provider
from tts.providers.base import VOICE_FAILED, VOICE_READY, ProviderVoice

from .cache import invalidate_voices
from .models import Voice
from .services import voice_fresh_check_queue, voice_pending_add, voice_preview_render

IMPORT_STATEMENT = "Imported from the provider account by an operator; consent was not attested in this app."
MAP_COLUMNS = ("provider_voice_id", "owner_email")


class MappingFileError(ValueError):
    pass


@dataclass(frozen=True)
class ImportRow:
    provider_voice_id: str
    name: str
    owner_email: str = ""
    status: str = ""  # the status the library row gets (created) or has (skipped)


@dataclass
class ImportReport:
    created: list[ImportRow] = field(default_factory=list)
    skipped: list[ImportRow] = field(default_factory=list)  # already in the library
    unmapped: list[ImportRow] = field(default_factory=list)  # no owner in the map or the label
    unknown_owner: list[ImportRow] = field(default_factory=list)  # no active account has that email
    not_in_account: list[ImportRow] = field(default_factory=list)  # mapped, but the provider has no such voice

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in vars(self).items()}


def read_owner_map(text: str) -> dict[str, str]:
    """`provider_voice_id,owner_email` rows (a header row first) -> {provider_voice_id: email}."""
    reader = csv.reader(io.StringIO(text))
    header = [c.strip().lower() for c in next(reader, [])]
    if tuple(header) != MAP_COLUMNS:
        raise MappingFileError(f"the first row must be {','.join(MAP_COLUMNS)}, not {','.join(header) or 'empty'}")
    owners: dict[str, str] = {}
    for line, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != 2:
            raise MappingFileError(f"line {line}: expected 2 columns, found {len(row)}")
        voice_id, email = row[0].strip(), row[1].strip()
        try:
            validate_email(email)
        except ValidationError:
            raise MappingFileError(f"line {line}: {email!r} is not an email address") from None
        if normalize_email(owners.get(voice_id, email)) != normalize_email(email):
            raise MappingFileError(f"line {line}: {voice_id} is mapped to two owners")
        owners[voice_id] = email
    return owners


def _owner_email(remote: ProviderVoice, owners: Mapping[str, str], label: str | None) -> str:
    if remote.provider_voice_id in owners:
        return owners[remote.provider_voice_id]
    return str(remote.labels.get(label) or "").strip() if label else ""


def _library_status(remote: ProviderVoice) -> str:
    return {VOICE_READY: Voice.Status.COMPLETED, VOICE_FAILED: Voice.Status.FAILED}.get(
        remote.status, Voice.Status.PROCESSING)


def provider_voices_import(*, provider_name: str, owners: Mapping[str, str] | None = None,
                           label: str | None = None, apply: bool = False) -> ImportReport:
    """Plan (and with `apply`, do) the import of the account's own voices. Without `apply`
    nothing is written; the report says what would happen."""
    owners = dict(owners or {})
    remote_voices = get_provider(provider_name).list_account_voices()
    report = ImportReport()
    known = set(Voice.objects.filter(provider=provider_name, provider_voice_id__in=[
        v.provider_voice_id for v in remote_voices]).values_list("provider_voice_id", flat=True))
    # Accounts store emails normalised (as logging in compares them).
    emails = {normalize_email(_owner_email(v, owners, label)) for v in remote_voices} - {""}
    users = {u.email: u for u in get_user_model().objects.filter(is_active=True, email__in=emails).only("pk", "email")}

    planned: list[tuple[ProviderVoice, object]] = []
    for remote in remote_voices:
        email = _owner_email(remote, owners, label)
        row = ImportRow(remote.provider_voice_id, remote.name, email, _library_status(remote))
        if remote.provider_voice_id in known:
            report.skipped.append(row)
        elif not email:
            report.unmapped.append(row)
        elif normalize_email(email) not in users:
            report.unknown_owner.append(row)
        else:
            planned.append((remote, users[normalize_email(email)]))
            report.created.append(row)
    present = {v.provider_voice_id for v in remote_voices}
    report.not_in_account = [ImportRow(pid, "", email) for pid, email in owners.items() if pid not in present]
    if apply and planned:
        report.created = _create(provider_name=provider_name, planned=planned, report=report)
    return report


@transaction.atomic
def _create(*, provider_name: str, planned: list[tuple[ProviderVoice, object]],
            report: ImportReport) -> list[ImportRow]:
    now = timezone.now()
    def category(remote: ProviderVoice) -> str:
        return remote.category if remote.category in Voice.Category.values else Voice.Category.CLONED

    deadlines = settings.VOICE_SYNC_DEADLINE_MINUTES
    rows = [
        Voice(owner=owner, provider=provider_name, provider_voice_id=remote.provider_voice_id,
              name=(remote.name or remote.provider_voice_id)[:100], description=remote.description[:500],
              language=remote.language[:16], gender=remote.gender[:16], category=category(remote),
              visibility=Voice.Visibility.PRIVATE, status=_library_status(remote),
              failure_reason=remote.failure_reason[:300], consent_statement=IMPORT_STATEMENT,
              completed_at=now if remote.status == VOICE_READY else None,
              # A professional clone still training gets its days, as one cloned here would.
              sync_deadline=now + timedelta(minutes=deadlines.get(category(remote), deadlines[Voice.Category.CLONED])))
        for remote, owner in planned
    ]
    Voice.objects.bulk_create(rows, ignore_conflicts=True)
    # A concurrent run may have added some first: ignore_conflicts does not say which rows went in,
    # so read back the ids this run made (set before the insert: the primary key is a uuid4).
    ours = {v.provider_voice_id: v for v in Voice.objects.filter(
        provider=provider_name, pk__in=[r.pk for r in rows])}
    created = [r for r in report.created if r.provider_voice_id in ours]
    report.skipped.extend(r for r in report.created if r.provider_voice_id not in ours)
    voices = list(ours.values())
    invalidate_voices(voices, shared=False)  # bumps each owner's cache version
    processing = [v.pk for v in voices if v.status == Voice.Status.PROCESSING]
    if processing:
        transaction.on_commit(lambda: voice_pending_add(voice_ids=processing))
        transaction.on_commit(voice_fresh_check_queue)
    for voice in voices:
        if voice.status == Voice.Status.COMPLETED:
            transaction.on_commit(lambda v=voice: voice_preview_render(voice=v), robust=True)
    return created
