from collections.abc import Callable
from uuid import UUID

from django.conf import settings
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from accounts.cache import etag_for, get_or_build_many
from accounts.errors import NotFound, NotOwner
from tts.providers import is_configured
from tts.providers.registry import PROVIDER_NAMES

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


def _in_list_order(queryset: QuerySet[Voice], user=None) -> QuerySet[Voice]:
    """The list's order: own first, then defaults, then public; newest first within each."""
    groups = [When(owner=user, then=Value(0))] if user is not None else []
    groups.append(When(visibility=Voice.Visibility.DEFAULT, then=Value(1)))
    return queryset.annotate(group=Case(*groups, default=Value(2), output_field=IntegerField())).order_by(
        "group", "-created_at", "id"
    )


def voices_visible_to(*, user) -> QuerySet[Voice]:
    """What the cached list shows, as one query (used for filtered lists)."""
    return _in_list_order(Voice.objects.filter(voice_visible_q(user)), user)


def _own_voices(user) -> QuerySet[Voice]:
    return Voice.objects.filter(owner=user, deleted_at__isnull=True).order_by("-created_at", "id")


def _shared_voices() -> QuerySet[Voice]:
    return _in_list_order(Voice.objects.filter(shared_voices_q(), deleted_at__isnull=True))


def voice_list_cache_keys(*, user) -> tuple[str, str | None]:
    return own_list_key(user), shared_list_key()


def voice_list_etag(*, keys: tuple[str, str | None], variant: tuple) -> str | None:
    """Tag of the cached list as `variant` (path, format) renders it; None when the shared
    version cannot be read (then nothing is cached and no 304 is ever answered)."""
    own_key, shared_key = keys
    if shared_key is None:
        return None
    configured = ",".join(name for name in PROVIDER_NAMES if is_configured(name))
    return etag_for(own_key, shared_key, *map(str, variant), configured)


def voice_list_for(*, user, render: Callable[[list[Voice], bool], list[dict]],
                   keys: tuple[str, str | None] | None = None) -> list[dict]:
    """The caller's voice list from the two cached parts (own; shared by everyone).

    `render(voices, mine)` turns rows into the cached item dicts; `keys` are the cache keys when
    the caller already read them (`voice_list_cache_keys`). Availability depends on this
    process's provider settings, so it is added per request rather than cached.
    """
    own_key, shared_key = keys or voice_list_cache_keys(user=user)
    own, shared = get_or_build_many([
        (own_key, settings.VOICES_CACHE_TTL, lambda: render(list(_own_voices(user)), True)),
        (shared_key, settings.VOICES_SHARED_CACHE_TTL, lambda: render(list(_shared_voices()), False)),
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
