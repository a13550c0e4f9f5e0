import logging
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from uuid import UUID

import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_redis import get_redis_connection

from config.api.errors import (
    InvalidAudio,
    NotAuthenticated,
    NotOwner,
    PermissionDenied,
    RequestTooLarge,
    TextTooLong,
    ValidationFailed,
    VoiceLimitReached,
    VoiceBlocked,
    VoiceNotFound,
    VoiceNotReady,
)
from accounts.cache import bump_user_cache_version
from accounts.events import notify_user
from tts.audio import ACCEPTED_FORMATS, DecodedAudio, UndecodableAudio, decode_audio
from tts.languages import language_base
from tts.providers import ProviderError, SampleFile, clone_provider_name, get_provider, is_configured
from tts.models import SpeechJob
from tts.runner import speech_jobs_fail_queued
from tts.services import speech_job_create

from . import quality
from .cache import invalidate_voices
from .quality import SampleQuality
from .models import WRITABLE_VISIBILITIES, Voice, VoiceModeration, VoiceSample, VoiceShare, VoiceSlotReservation
from .selectors import voice_get_for_write, voice_get_usable, voice_visible_q

logger = logging.getLogger(__name__)

PENDING_SET = "voices:sync:pending"


# --- Pending set (raw client: django-redis's IGNORE_EXCEPTIONS would hide failures) ------------

def _pending_update(command: str, voice_ids: Iterable[UUID]) -> None:
    ids = [str(v) for v in voice_ids]
    if not ids:
        return
    try:
        getattr(get_redis_connection("default"), command)(PENDING_SET, *ids)
    except (redis.RedisError, OSError):
        # Logged, not raised: the reconcile job re-adds processing voices missing from the set,
        # and the sync drops finished ones it still finds there.
        logger.warning("pending set %s of %s failed", command, ids, exc_info=True)


def voice_pending_add(*, voice_ids: Iterable[UUID]) -> None:
    _pending_update("sadd", voice_ids)


def voice_pending_remove(*, voice_ids: Iterable[UUID]) -> None:
    _pending_update("srem", voice_ids)


def voice_fresh_check_queue() -> None:
    """Queue the fast checker (`voices.sync.voices_check_fresh`) on the main cluster; a no-op
    there when one already runs. A window of 0 turns fast checks off (the schedule only), and so
    does `Q_SYNC`: inline, the checker's loop would hold the clone request."""
    from django_q.tasks import async_task

    if settings.VOICE_FAST_CHECK_WINDOW_SECONDS > 0 and not settings.Q_CLUSTER["sync"]:
        async_task("voices.tasks.check_fresh_voices")


# --- Clone -------------------------------------------------------------------------------------

def sample_storage_name(*, user_id: UUID, audio_format: str) -> str:
    """Stored names come from ids: a client's file name can be long, odd or hostile (the
    original is kept, cleaned, in `VoiceSample.original_name`)."""
    return f"voice-samples/{user_id}/{uuid.uuid4().hex}.{audio_format}"


def clean_file_name(name: str) -> str:
    """A client's file name as shown back: control characters (NUL included) removed, cut to
    the column."""
    cleaned = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip() or "sample"
    return cleaned[: VoiceSample._meta.get_field("original_name").max_length]


REFUSALS = {
    "no_speech": "no speech was found (silence, a tone, noise or music)",
    "clipped": "the recording is heavily clipped (too loud when it was made)",
    "too_quiet": "the voice is too quiet",
}


def _invalid_audio(upload: SampleFile, reason: str, message: str) -> InvalidAudio:
    return InvalidAudio(
        f"{upload.filename}: {message}.",
        details={"file": upload.filename, "reason": reason, "accepted_formats": list(ACCEPTED_FORMATS)},
    )


@dataclass(frozen=True)
class ValidatedSamples:
    decoded: list[DecodedAudio]  # without PCM
    quality: list[SampleQuality]
    warnings: list[dict]


def voice_samples_validate(*, samples: Sequence[SampleFile], remove_background_noise: bool = False) -> ValidatedSamples:
    """Decode every sample (a renamed text file or a lying header fails), apply the caps and the
    quality gate (`voices.quality`); what passes with a caveat comes back as warnings."""
    if not samples:
        raise ValidationFailed("At least one audio sample is required.", details={"fields": {"samples": ["Required."]}})
    if len(samples) > settings.VOICE_SAMPLE_MAX_COUNT:
        raise ValidationFailed(
            f"At most {settings.VOICE_SAMPLE_MAX_COUNT} samples are accepted.",
            details={"fields": {"samples": [f"At most {settings.VOICE_SAMPLE_MAX_COUNT} files."]},
                     "max_count": settings.VOICE_SAMPLE_MAX_COUNT},
        )
    decoded, judged = [], []
    for upload in samples:
        if len(upload.data) > settings.VOICE_SAMPLE_MAX_BYTES:
            raise RequestTooLarge(
                f"{upload.filename} is larger than {settings.VOICE_SAMPLE_MAX_BYTES} bytes.",
                details={"file": upload.filename, "max_bytes": settings.VOICE_SAMPLE_MAX_BYTES},
            )
        try:
            # Decoding stops past the cap: a small file of compressed silence cannot hold a worker.
            audio = decode_audio(upload.data, pcm_rate=quality.RATE, max_seconds=settings.VOICE_SAMPLE_MAX_SECONDS)
        except UndecodableAudio as exc:
            raise _invalid_audio(upload, exc.reason, str(exc)) from exc
        if audio.duration_seconds < settings.VOICE_SAMPLE_MIN_SECONDS:
            raise _invalid_audio(upload, "too_short", f"shorter than {settings.VOICE_SAMPLE_MIN_SECONDS:g} s")
        judged.append(quality.sample_quality(audio.pcm))
        if judged[-1].refusal:
            raise _invalid_audio(upload, judged[-1].refusal, REFUSALS[judged[-1].refusal])
        decoded.append(replace(audio, pcm=None))
    total = sum(a.duration_seconds for a in decoded)
    if total > settings.VOICE_SAMPLES_MAX_TOTAL_SECONDS:
        raise InvalidAudio(
            f"The samples last {total:.0f} s; at most {settings.VOICE_SAMPLES_MAX_TOTAL_SECONDS:g} s in all.",
            details={"reason": "too_long", "total_seconds": round(total, 1),
                     "accepted_formats": list(ACCEPTED_FORMATS)},
        )
    return ValidatedSamples(decoded=decoded, quality=judged, warnings=_sample_warnings(
        samples=samples, judged=judged, remove_background_noise=remove_background_noise))


def _sample_warnings(*, samples: Sequence[SampleFile], judged: Sequence[SampleQuality],
                     remove_background_noise: bool) -> list[dict]:
    warnings = []
    speech = sum(q.speech_seconds for q in judged)
    if speech < settings.VOICE_SPEECH_RECOMMENDED_SECONDS:
        warnings.append({
            "code": "little_speech",
            "message": (f"The samples hold about {speech:.0f} s of speech; a clone sounds more like the speaker "
                        "with one to two minutes."),
            "speech_seconds": round(speech, 1),
            "recommended_seconds": settings.VOICE_SPEECH_RECOMMENDED_SECONDS,
        })
    noisy = [s.filename for s, q in zip(samples, judged) if q.snr_db is not None and q.snr_db < quality.NOISY_SNR_DB]
    if noisy and not remove_background_noise:
        warnings.append({
            "code": "background_noise",
            "message": ("Background noise was heard; record somewhere quieter, or clone again with "
                        "remove_background_noise."),
            "files": noisy,
        })
    return warnings


def _reserve_slot(*, user) -> VoiceSlotReservation:
    """Hold one of the user's voice slots; the user row lock serialises their concurrent clones."""
    from accounts.models import User

    with transaction.atomic():
        User.objects.select_for_update().only("pk").get(pk=user.pk)
        now = timezone.now()
        used = Voice.objects.filter(owner=user, deleted_at__isnull=True).exclude(status=Voice.Status.FAILED).count()
        held = VoiceSlotReservation.objects.filter(owner=user, expires_at__gt=now).count()
        if used + held >= settings.VOICE_MAX_PER_USER:
            raise VoiceLimitReached(
                f"You already have {settings.VOICE_MAX_PER_USER} voices; delete one to clone another.",
                details={"limit": settings.VOICE_MAX_PER_USER},
            )
        return VoiceSlotReservation.objects.create(
            owner=user, expires_at=now + timedelta(seconds=settings.VOICE_SLOT_RESERVATION_SECONDS)
        )


@dataclass(frozen=True)
class ClonedVoice:
    voice: Voice  # in `processing`
    warnings: list[dict]  # what passed the quality gate with a caveat (`_sample_warnings`)


def voice_clone_create(*, user, name: str, samples: Sequence[SampleFile], consent: bool, language: str = "",
                       gender: str = "", description: str = "", visibility: str = Voice.Visibility.PRIVATE,
                       remove_background_noise: bool = False) -> ClonedVoice:
    """Clone a voice from audio samples that pass the quality gate.

    The provider call runs outside any transaction; if saving fails afterwards, the provider
    voice is deleted again so no slot leaks at the provider.
    """
    if not consent:
        raise ValidationFailed(
            "Confirm that the speaker consented to having their voice cloned.",
            details={"fields": {"consent": ["Consent is required."]}},
        )
    _check_writable_visibility(visibility)
    samples = [replace(s, filename=clean_file_name(s.filename)) for s in samples]
    checked = voice_samples_validate(samples=samples, remove_background_noise=remove_background_noise)
    provider_name = clone_provider_name()
    provider = get_provider(provider_name)
    reservation = _reserve_slot(user=user)
    try:
        result = provider.clone_voice(
            name=name,
            samples=samples,
            description=description,
            labels={k: v for k, v in (("language", language), ("gender", gender)) if v},
            remove_background_noise=remove_background_noise,
        )
    except BaseException:
        reservation.delete()
        raise

    stored: list[str] = []
    try:
        for upload, audio in zip(samples, checked.decoded):
            path = sample_storage_name(user_id=user.pk, audio_format=audio.format)
            stored.append(default_storage.save(path, ContentFile(upload.data)))
        voice = _voice_clone_save(
            user=user, reservation=reservation, provider_name=provider_name,
            provider_voice_id=result.provider_voice_id, name=name, language=language, gender=gender,
            description=description, visibility=visibility, samples=samples, checked=checked, stored=stored,
        )
        return ClonedVoice(voice=voice, warnings=checked.warnings)
    except BaseException:
        reservation.delete()
        for path in stored:
            default_storage.delete(path)
        try:
            provider.delete_voice(result.provider_voice_id)
        except ProviderError:
            logger.error("saving voice failed and provider voice %s could not be deleted", result.provider_voice_id,
                         exc_info=True)
        raise


@transaction.atomic
def _voice_clone_save(*, user, reservation: VoiceSlotReservation, provider_name: str, provider_voice_id: str,
                      name: str, language: str, gender: str, description: str, visibility: str,
                      samples: Sequence[SampleFile], checked: ValidatedSamples, stored: Sequence[str]) -> Voice:
    from accounts.models import User

    # An account deactivated while the provider call ran must not get a voice afterwards (its
    # cleanup may already have run): refusing here rolls back and deletes the provider voice.
    if not User.objects.select_for_update().filter(pk=user.pk, is_active=True).exists():
        raise NotAuthenticated("This account is being deleted.")
    now = timezone.now()
    voice = Voice.objects.create(
        owner=user, provider=provider_name, provider_voice_id=provider_voice_id, name=name,
        description=description, language=language, gender=gender, category=Voice.Category.CLONED,
        visibility=visibility, status=Voice.Status.PROCESSING,
        moderation_status=(Voice.Moderation.PENDING if visibility == Voice.Visibility.PUBLIC
                           else Voice.Moderation.NOT_REQUIRED),
        consent_attested_by=user, consent_attested_at=now,
        consent_statement="The uploader attested that the speaker consented to this voice clone.",
        sync_deadline=now + timedelta(minutes=settings.VOICE_SYNC_DEADLINE_MINUTES[Voice.Category.CLONED]),
    )
    VoiceSample.objects.bulk_create(
        VoiceSample(voice=voice, file=path, original_name=upload.filename, format=audio.format,
                    duration_seconds=audio.duration_seconds, speech_seconds=judged.speech_seconds,
                    size_bytes=len(upload.data))
        for upload, audio, judged, path in zip(samples, checked.decoded, checked.quality, stored)
    )
    reservation.delete()
    transaction.on_commit(lambda: voice_pending_add(voice_ids=[voice.pk]))
    transaction.on_commit(voice_fresh_check_queue)
    return voice


# --- Update, delete, moderation -------------------------------------------------------------------

def _check_writable_visibility(visibility: str) -> None:
    if visibility not in WRITABLE_VISIBILITIES:
        raise ValidationFailed(details={"fields": {"visibility": [f"Choose one of {', '.join(WRITABLE_VISIBILITIES)}."]}})


@transaction.atomic
def voice_update(*, user, voice_id: UUID, name: str | None = None, description: str | None = None,
                 visibility: str | None = None) -> Voice:
    """Owner edits. Making a voice public, or changing the name or description of a public one,
    sends it to moderation: others see it only once approved."""
    voice = voice_get_for_write(user=user, voice_id=voice_id)
    changed: list[str] = []
    for field, value in (("name", name), ("description", description), ("visibility", visibility)):
        if value is not None and getattr(voice, field) != value:
            setattr(voice, field, value)
            changed.append(field)
    if not changed:
        return voice
    _check_writable_visibility(voice.visibility)
    if voice.moderation_status == Voice.Moderation.BLOCKED and voice.visibility == Voice.Visibility.PUBLIC:
        raise PermissionDenied("A moderator blocked this voice; it cannot be made public.")
    if voice.moderation_status != Voice.Moderation.BLOCKED:
        if voice.visibility == Voice.Visibility.PUBLIC:
            voice.moderation_status = Voice.Moderation.PENDING
            voice.moderation_note = ""
            voice.moderated_by = None
            voice.moderated_at = None
        else:
            voice.moderation_status = Voice.Moderation.NOT_REQUIRED
        changed += ["moderation_status", "moderation_note", "moderated_by", "moderated_at"]
    voice.save(update_fields=[*changed, "updated_at"])
    return voice


def voice_delete(*, user, voice_id: UUID) -> None:
    """Owner only: delete at the provider (already gone there counts as deleted), then locally."""
    with transaction.atomic():
        voice = voice_get_for_write(user=user, voice_id=voice_id)
    _voice_remove(voice)


def _voice_remove(voice: Voice) -> None:
    """Delete the provider voice and the sample files; keep the row, marked deleted."""
    provider = get_provider(voice.provider)  # an unconfigured provider's voice is never touched
    try:
        provider.delete_voice(voice.provider_voice_id)
    except ProviderError as exc:
        if exc.code != VoiceNotFound.code:
            raise
    with transaction.atomic():
        locked = Voice.objects.select_for_update().get(pk=voice.pk)
        if locked.deleted_at is None:
            locked.deleted_at = timezone.now()
            locked.save(update_fields=["deleted_at", "updated_at"])
        paths = [p for p in VoiceSample.objects.filter(voice=locked).values_list("file", flat=True) if p]
        VoiceSample.objects.filter(voice=locked).update(file="")
        transaction.on_commit(lambda: voice_pending_remove(voice_ids=[locked.pk]))
        transaction.on_commit(lambda: [default_storage.delete(path) for path in paths])


def voice_remove_as_admin(*, voice: Voice) -> None:
    """The admin's delete: what the owner's delete does (the provider voice and the samples go,
    the row stays marked deleted, every list drops it). The provider's default voices are
    mirrored, not owned: they are left alone."""
    if voice.owner_id is None:
        raise PermissionDenied("Default voices come from the provider; they cannot be deleted here.")
    _voice_remove(voice)


def voice_delete_all_for_account(*, user) -> None:
    """Account cleanup step: every provider voice of the user is deleted (raises while the
    provider refuses, so the cleanup retries), then the rows go, so the user can be deleted."""
    for voice in Voice.objects.filter(owner=user, deleted_at__isnull=True):
        _voice_remove(voice)
    Voice.objects.filter(owner=user).delete()  # post_delete invalidates the lists per row


# --- Family sharing ---------------------------------------------------------------------------------

def _own_voice_for_sharing(*, user, voice_id: UUID) -> Voice:
    """The caller's own voice, locked (404 if not visible, 403 `not_owner` if visible and not theirs)."""
    return voice_get_for_write(user=user, voice_id=voice_id)


@transaction.atomic
def voice_share_create(*, user, voice_id: UUID, email: str) -> tuple[VoiceShare, bool]:
    """Share the owner's completed voice with the account of `email`: it shows in that account's
    list and may be spoken with, never changed. The answer is the same whether or not such an
    account exists (an email with none gets a share that grants nothing). Returns (share, created)."""
    voice = _own_voice_for_sharing(user=user, voice_id=voice_id)
    if voice.moderation_status == Voice.Moderation.BLOCKED:
        raise VoiceBlocked("A moderator blocked this voice; it cannot be shared.")
    if voice.status != Voice.Status.COMPLETED:
        raise VoiceNotReady(f"The voice is {voice.status}; only a completed voice can be shared.",
                            details={"status": voice.status})
    email = email.strip().lower()
    if email == user.email.lower():
        raise ValidationFailed("This is your own voice.", details={"fields": {"email": ["Your own email."]}})
    from accounts.models import User

    recipient = User.objects.filter(email__iexact=email, is_active=True).first()
    share = VoiceShare.objects.filter(voice=voice, email=email).first()
    if share is None:
        if VoiceShare.objects.filter(voice=voice).count() >= settings.VOICE_MAX_SHARES:
            raise ValidationFailed(f"A voice can be shared with at most {settings.VOICE_MAX_SHARES} accounts.")
        share = VoiceShare.objects.create(voice=voice, email=email, user=recipient)
        created = True
    else:
        created = False
        if share.user_id is None and recipient is not None:  # they have signed up since
            share.user = recipient
            share.save(update_fields=["user"])
    if share.user_id is not None:
        bump_user_cache_version([share.user_id])  # in this transaction: their next read has it
    return share, created


def voice_shares_list(*, user, voice_id: UUID) -> list[VoiceShare]:
    """The owner's shares of a voice (404 for anyone else: who it is shared with is theirs to know)."""
    voice = Voice.objects.filter(pk=voice_id, owner=user, deleted_at__isnull=True).first()
    if voice is None:
        raise VoiceNotFound()
    return list(VoiceShare.objects.filter(voice=voice).order_by("created_at"))


@transaction.atomic
def voice_share_delete(*, user, voice_id: UUID, share_id: int) -> None:
    """The owner revokes a share, or its recipient leaves it: at once, the voice is 404 for the
    recipient (their cached lists are invalidated in this transaction); their audio stays."""
    # A share id past the column's range names nothing (and must not reach the database).
    share = (VoiceShare.objects.select_for_update().select_related("voice")
             .filter(pk=share_id, voice_id=voice_id, voice__deleted_at__isnull=True).first()
             if 0 < share_id < 2 ** 63 else None)
    if share is None or user.pk not in (share.voice.owner_id, share.user_id):
        if share is not None and Voice.objects.filter(voice_visible_q(user), pk=voice_id).exists():
            raise NotOwner("Only the voice's owner may change its shares.")
        raise VoiceNotFound("No such share of this voice.")
    recipient = share.user_id
    share.delete()
    bump_user_cache_version([recipient])


MODERATION_DECISIONS = {
    VoiceModeration.Decision.APPROVED, VoiceModeration.Decision.REJECTED, VoiceModeration.Decision.BLOCKED,
    VoiceModeration.Decision.UNBLOCKED,
}


def _after_unblock(voice: Voice) -> str:
    # Back to where the owner's choice puts it: a public voice waits for review again.
    return Voice.Moderation.PENDING if voice.visibility == Voice.Visibility.PUBLIC else Voice.Moderation.NOT_REQUIRED


@transaction.atomic
def voice_moderate(*, moderator, voice_ids: Sequence[UUID], decision: str, note: str = "") -> int:
    """Approve, reject, block or unblock voices (the admin's actions). Each change is recorded in
    the voice's moderation history, invalidates every list it shows in, and sends
    `voice.moderated` to its owner; blocking also fails the voice's queued jobs (`voice_blocked`).
    Only a completed voice can be approved. Returns how many voices changed."""
    if decision not in MODERATION_DECISIONS:
        raise ValidationFailed(f"decision must be one of {sorted(MODERATION_DECISIONS)}")
    now = timezone.now()
    voices = list(Voice.objects.select_for_update().filter(pk__in=voice_ids, deleted_at__isnull=True,
                                                            owner__isnull=False))
    if decision == VoiceModeration.Decision.UNBLOCKED:
        voices = [v for v in voices if v.moderation_status == Voice.Moderation.BLOCKED]
    else:
        voices = [v for v in voices if v.moderation_status != decision]
    if decision == VoiceModeration.Decision.APPROVED:
        unfinished = [v for v in voices if v.status != Voice.Status.COMPLETED]
        if unfinished:
            raise VoiceNotReady(f"Only completed voices can be approved; not yet: {', '.join(v.name for v in unfinished)}.",
                                details={"voices": [str(v.pk) for v in unfinished]})
    for voice in voices:
        voice._loaded_shared = voice.is_shared
        voice.moderation_status = _after_unblock(voice) if decision == VoiceModeration.Decision.UNBLOCKED else decision
        voice.moderation_note = note
        voice.moderated_by = moderator
        voice.moderated_at = now
    Voice.objects.bulk_update(voices, ["moderation_status", "moderation_note", "moderated_by", "moderated_at"])
    VoiceModeration.objects.bulk_create(
        VoiceModeration(voice=voice, decision=decision, note=note, moderator=moderator) for voice in voices)
    invalidate_voices(voices, shared=True)
    if decision == VoiceModeration.Decision.BLOCKED:
        queued = SpeechJob.objects.filter(voice__in=voices, status=SpeechJob.Status.QUEUED).values_list("pk", flat=True)
        speech_jobs_fail_queued(job_ids=list(queued), error=VoiceBlocked())
    for voice in voices:
        data = {"voice_id": str(voice.pk), "decision": decision, "moderation_status": voice.moderation_status,
                "note": note}
        transaction.on_commit(lambda owner=voice.owner_id, d=data: notify_user(owner, "voice.moderated", d))
    return len(voices)


# --- Default voices -----------------------------------------------------------------------------

def voice_defaults_sync(*, provider_name: str) -> dict[str, int]:
    """Mirror a provider's default voices as `visibility='default'` rows (no owner). Safe to run
    concurrently; `created` counts the rows this run tried to add."""
    remote = {v.provider_voice_id: v for v in get_provider(provider_name).list_default_voices()}
    now = timezone.now()
    with transaction.atomic():
        existing = {v.provider_voice_id: v for v in Voice.objects.select_for_update()
                    .filter(provider=provider_name, visibility=Voice.Visibility.DEFAULT)}
        created = [
            Voice(provider=provider_name, provider_voice_id=pid, name=rv.name[:100], description=rv.description[:500],
                  language=rv.language, gender=rv.gender, category=rv.category or Voice.Category.PREMADE,
                  visibility=Voice.Visibility.DEFAULT, status=Voice.Status.COMPLETED, completed_at=now)
            for pid, rv in remote.items() if pid not in existing
        ]
        # ON CONFLICT DO NOTHING: a concurrent run (two hosts starting, or start plus the daily
        # schedule) may insert the same voices first; theirs stand and this run goes on.
        Voice.objects.bulk_create(created, ignore_conflicts=True)
        updated = []
        for pid, voice in existing.items():
            rv = remote.get(pid)
            fields = ({"deleted_at": now} if rv is None else
                      {"name": rv.name[:100], "description": rv.description[:500], "language": rv.language,
                       "gender": rv.gender, "deleted_at": None})
            if rv is None and voice.deleted_at is not None:
                continue
            if any(getattr(voice, k) != v for k, v in fields.items()):
                for k, v in fields.items():
                    setattr(voice, k, v)
                updated.append(voice)
        Voice.objects.bulk_update(updated, ["name", "description", "language", "gender", "deleted_at"])
        if created or updated:
            invalidate_voices(created + updated, shared=True)
    return {"created": len(created), "updated": len(updated)}


def voice_defaults_sync_all() -> dict[str, dict[str, int] | str]:
    """Every configured provider; one provider's outage does not stop the others."""
    from tts.providers.registry import PROVIDER_NAMES

    results: dict[str, dict[str, int] | str] = {}
    for name in PROVIDER_NAMES:
        if not is_configured(name):
            continue
        try:
            results[name] = voice_defaults_sync(provider_name=name)
        except ProviderError as exc:
            logger.warning("default voices of %s not synced: %s", name, exc)
            results[name] = f"failed: {exc.code}"
    return results


# --- Speech ---------------------------------------------------------------------------------------

def voice_speech_inputs(*, voice: Voice, text: str, model_id: str = "", language: str = "",
                        output_format: str = "mp3_44100_128") -> dict:
    """The engine's inputs for `text` in a usable voice (`speech_job_create` keyword arguments):
    the provider's default model, its text limit (400 `text_too_long`), its output formats."""
    provider = get_provider(voice.provider)
    model_id = model_id or provider.default_model_id()
    if provider.model_ids and model_id not in provider.model_ids:
        raise ValidationFailed(details={"fields": {"model_id": [f"One of {', '.join(sorted(provider.model_ids))}."]}})
    if not provider.model_ids:
        model_id = ""  # the offline provider has no models: one spelling keeps clips shared
    limit = provider.text_limit(model_id)
    if len(text) > limit:
        raise TextTooLong(f"The text has {len(text)} characters; {model_id or voice.provider} takes at most {limit}.",
                          details={"limit": limit, "characters": len(text), "model_id": model_id})
    if output_format not in provider.output_formats:
        raise ValidationFailed(details={"fields": {"output_format": [
            f"{voice.provider} voices render {', '.join(sorted(provider.output_formats))}."]}})
    return {
        "voice_id": voice.pk, "provider": voice.provider, "provider_voice_id": voice.provider_voice_id,
        "text": text, "model_id": model_id, "language": language or voice.language, "output_format": output_format,
        "pronunciation_locators": settings.ELEVENLABS_PRONUNCIATION_LOCATORS if voice.provider == "elevenlabs" else (),
    }


def speech_generate(*, user, voice_id: UUID, text: str, model_id: str = "", language: str = "",
                    output_format: str = "mp3_44100_128", voice_settings: dict | None = None,
                    previous_text: str = "", next_text: str = "", idempotency_key: str = ""):
    """Queue a clip in a voice the caller may use. The voice library decides who may use which
    voice; the engine gets only the provider's ids."""
    voice = voice_get_usable(user=user, voice_id=voice_id)
    inputs = voice_speech_inputs(voice=voice, text=text, model_id=model_id, language=language,
                                 output_format=output_format)
    return speech_job_create(owner=user, voice_settings=voice_settings, previous_text=previous_text,
                             next_text=next_text, idempotency_key=idempotency_key, **inputs)


def voice_count_use(*, job) -> None:
    """A speech job in this voice succeeded (called by the engine in its transaction)."""
    if job.voice_id is not None:
        Voice.objects.filter(pk=job.voice_id).update(usage_count=F("usage_count") + 1)


# A short sentence per language for previews (the base language of the voice's tag).
PREVIEW_SENTENCES = {
    "en": "Once upon a time, in a house by the forest, a little fox curled up to hear a story.",
    "ko": "옛날 옛적에 숲속 작은 집에 아기 여우가 이야기를 들으려고 동그랗게 누웠어요.",
    "ja": "むかしむかし、もりの ちいさな いえで、こぎつねが おはなしを ききました。",
}


def voice_preview_render(*, voice: Voice):
    """Queue a preview clip of a voice (a short sentence in its language) on the speech engine;
    the voice's `preview_url` is its latest succeeded preview. Not charged to the owner."""
    if voice.owner_id is None:
        raise ValidationFailed("Default voices come with the provider's own preview.")
    if voice.status != Voice.Status.COMPLETED or voice.deleted_at is not None:
        raise VoiceNotReady(f"The voice is {voice.status}.")
    provider = get_provider(voice.provider)
    output_format = "mp3_44100_128" if "mp3_44100_128" in provider.output_formats else sorted(provider.output_formats)[0]
    return speech_job_create(
        owner=voice.owner, voice_id=voice.pk, purpose="preview", provider=voice.provider,
        provider_voice_id=voice.provider_voice_id, model_id=provider.default_model_id(),
        text=PREVIEW_SENTENCES.get(language_base(voice.language or "en"), PREVIEW_SENTENCES["en"]),
        language=voice.language, output_format=output_format, charge=False)
