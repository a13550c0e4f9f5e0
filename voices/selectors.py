from collections.abc import Callable
from uuid import UUID

from django.conf import settings
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from accounts.cache import get_or_build_many
from accounts.errors import NotFound, NotOwner
from tts.providers import is_configured

from .cache import own_list_key, shared_list_key
from .models import Voice


def shared_voices_q() -> Q:
    """Default voices, and approved public voices of active owners (a deleted account's voices
    disappear the moment it is deactivated)."""
    return Q(visibility=Voice.Visibility.DEFAULT) | Q(
        visibility=Voice.Visibility.PUBLIC, moderation_status=Voice.Moderation.APPROVED, owner__is_active=True
    )


def voice_visible_q(user) -> Q:
    """Own voices in any status, plus the default and approved public voices."""
    return Q(deleted_at__isnull=True) & (Q(owner=user) | shared_voices_q())


def voices_visible_to(*, user) -> QuerySet[Voice]:
    """Ordered like the cached list: own first (newest first), then defaults, then public."""
    return (
        Voice.objects.filter(voice_visible_q(user))
        .annotate(
            group=Case(
                When(owner=user, then=Value(0)),
                When(visibility=Voice.Visibility.DEFAULT, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        .order_by("group", "-created_at", "id")
    )


def _own_voices(user) -> QuerySet[Voice]:
    return Voice.objects.filter(owner=user, deleted_at__isnull=True).order_by("-created_at", "id")


def _shared_voices() -> QuerySet[Voice]:
    return (
        Voice.objects.filter(shared_voices_q(), deleted_at__isnull=True)
        .annotate(group=Case(When(visibility=Voice.Visibility.DEFAULT, then=Value(1)), default=Value(2),
                             output_field=IntegerField()))
        .order_by("group", "-created_at", "id")
    )


def voice_list_cache_keys(*, user) -> tuple[str, str | None]:
    return own_list_key(user), shared_list_key()


def voice_list_for(*, user, render: Callable[[list[Voice], bool], list[dict]]) -> list[dict]:
    """The caller's voice list from the two cached parts (own; shared by everyone).

    `render(voices, mine)` turns rows into the cached item dicts. Availability depends on this
    process's provider settings, so it is added per request rather than cached.
    """
    own_key, shared_key = voice_list_cache_keys(user=user)
    ttl = settings.VOICES_CACHE_TTL
    own, shared = get_or_build_many([
        (own_key, ttl, lambda: render(list(_own_voices(user)), True)),
        (shared_key, ttl, lambda: render(list(_shared_voices()), False)),
    ])
    own_ids = {item["id"] for item in own}
    available = {}
    items = []
    for item in own + [s for s in shared if s["id"] not in own_ids]:  # own public voices are in both parts
        provider = item["provider"]
        if provider not in available:
            available[provider] = is_configured(provider)
        items.append({**item, "available": available[provider]})
    return items


def voice_get_visible(*, user, voice_id: UUID) -> Voice:
    voice = Voice.objects.filter(voice_visible_q(user), pk=voice_id).prefetch_related("samples").first()
    if voice is None:
        raise NotFound("Voice not found.", code="voice_not_found")
    return voice


def voice_get_for_write(*, user, voice_id: UUID) -> Voice:
    """The voice locked for update: 404 if the caller may not see it, 403 if it is not theirs."""
    # of=("self",): lock the voice only; the owner join (for shared visibility) is nullable.
    voice = Voice.objects.select_for_update(of=("self",)).filter(voice_visible_q(user), pk=voice_id).first()
    if voice is None:
        raise NotFound("Voice not found.", code="voice_not_found")
    if voice.owner_id != user.pk:
        raise NotOwner("Only the owner may change this voice.")
    return voice
