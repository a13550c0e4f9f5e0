from collections.abc import Callable
from uuid import UUID

from django.conf import settings
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from config.api.cache import CachedPart, get_or_build_many
from config.api.errors import NotOwner, VoiceBlocked, VoiceNotFound, VoiceNotReady
from tts.providers import is_configured
from tts.providers.registry import PROVIDER_NAMES

from .cache import own_list_key, shared_list_key
from .models import Voice, VoiceShare


def shared_voices_q() -> Q:
    """Default voices, and approved public voices of active owners that still work (a deleted
    account's voices disappear the moment it is deactivated; a voice removed at the provider, the
    moment the sync fails it)."""
    return Q(visibility=Voice.Visibility.DEFAULT) | Q(
        visibility=Voice.Visibility.PUBLIC, moderation_status=Voice.Moderation.APPROVED, owner__is_active=True,
        status=Voice.Status.COMPLETED,
    )


def shared_with_q(user) -> Q:
    """Voices shared with the user (family sharing) that still work: completed, not blocked,
    their owner active. A subquery, so the OR around it adds no join."""
    return Q(pk__in=VoiceShare.objects.filter(user=user).values("voice_id"), status=Voice.Status.COMPLETED,
             owner__is_active=True) & ~Q(moderation_status=Voice.Moderation.BLOCKED)


def voice_visible_q(user) -> Q:
    """Own voices in any status, the voices shared with the user, and the default and approved
    public voices."""
    return Q(deleted_at__isnull=True) & (Q(owner=user) | shared_voices_q() | shared_with_q(user))


def _in_list_order(queryset: QuerySet[Voice], user=None) -> QuerySet[Voice]:
    """The list's order: own first, then defaults, then public; newest first within each."""
    groups = [When(owner=user, then=Value(0))] if user is not None else []
    groups.append(When(visibility=Voice.Visibility.DEFAULT, then=Value(1)))
    return queryset.annotate(group=Case(*groups, default=Value(2), output_field=IntegerField())).order_by(
        "group", "-created_at", "id"
    )


def voice_queryset_visible(*, user) -> QuerySet[Voice]:
    """What the cached list shows, as one query (used for filtered lists)."""
    return _in_list_order(Voice.objects.filter(voice_visible_q(user)), user)


def _shared_voices() -> QuerySet[Voice]:
    return _in_list_order(Voice.objects.filter(shared_voices_q(), deleted_at__isnull=True))


def _user_part(user, render: Callable[[list[Voice], bool], list[dict]]) -> list[dict]:
    """The per-user cached part, in one query: own voices (any status), then the voices shared
    with the user."""
    rows = list(Voice.objects.filter(Q(owner=user) | (shared_with_q(user) & ~Q(owner=user)), deleted_at__isnull=True)
                .annotate(mine=Case(When(owner=user, then=Value(0)), default=Value(1), output_field=IntegerField()))
                .order_by("mine", "-created_at", "id"))
    own = [voice for voice in rows if voice.owner_id == user.pk]
    shared = [voice for voice in rows if voice.owner_id != user.pk]
    return [*render(own, True), *({**item, "shared_with_me": True} for item in (render(shared, False) if shared else []))]


def voice_list_cache_keys(*, user) -> tuple[str, str | None]:
    """The list's versioned keys (own part, shared part); the shared one is None when Redis
    cannot be read (then nothing is cached and no 304 is answered)."""
    return own_list_key(user), shared_list_key()


def voice_list_etag_extra() -> tuple[str]:
    """What else the rendered list depends on: which providers this process can use."""
    return (",".join(name for name in PROVIDER_NAMES if is_configured(name)),)


class VoiceList:
    """The caller's voice list: own voices (any status) first, then the ones shared with the
    caller, then the shared ones (default and approved public) not already listed, as a lazy
    sequence the paginator slices.

    Both parts come from the cache in one round trip. The shared part caches only its first
    VOICES_SHARED_CACHE_ITEMS items and the total count, so it never grows with the library;
    a page past the cached items is read from the database. Availability depends on this
    process's provider settings, so it is added per page rather than cached.
    """

    def __init__(self, *, user, render: Callable[[list[Voice], bool], list[dict]],
                 keys: tuple[str, str | None]) -> None:
        self.user, self.render = user, render
        own_key, shared_key = keys
        self.own, self.shared = get_or_build_many([
            CachedPart(own_key, settings.VOICES_CACHE_TTL, lambda: _user_part(user, render)),
            CachedPart(shared_key, settings.VOICES_SHARED_CACHE_TTL, self._build_shared),
        ])
        self.own_ids = {item["id"] for item in self.own}
        # Own public voices that moderators approved are in the shared part too.
        self.own_shared = sum(1 for item in self.own if Voice.shared_state(item["visibility"], item["moderation_status"]))
        self.shared_cached = [item for item in self.shared["items"] if item["id"] not in self.own_ids]
        self._available: dict[str, bool] = {}

    def _build_shared(self) -> dict:
        limit = settings.VOICES_SHARED_CACHE_ITEMS
        rows = list(_shared_voices()[:limit])
        return {"items": self.render(rows, False),
                "total": len(rows) if len(rows) < limit else _shared_voices().count()}

    def __len__(self) -> int:
        return len(self.own) + self.shared["total"] - self.own_shared

    def _shared_slice(self, start: int, stop: int) -> list[dict]:
        complete = self.shared["total"] <= len(self.shared["items"])
        if complete or stop <= len(self.shared_cached):
            return self.shared_cached[start:stop]
        # Past the cached items: this page comes from the database.
        rows = list(_shared_voices().exclude(owner=self.user).exclude(pk__in=self.own_ids)[start:stop])
        return self.render(rows, False)

    def __iter__(self):
        return iter(self[0:len(self)])

    def __getitem__(self, index: slice) -> list[dict]:
        start, stop, _ = index.indices(len(self))
        own_count = len(self.own)
        items = self.own[start:stop] if start < own_count else []
        if stop > own_count:
            items = items + self._shared_slice(max(0, start - own_count), stop - own_count)
        return [{**item, "available": self._is_available(item["provider"])} for item in items]

    def _is_available(self, provider: str) -> bool:
        if provider not in self._available:
            self._available[provider] = is_configured(provider)
        return self._available[provider]


def voice_list(*, user, render: Callable[[list[Voice], bool], list[dict]],
               keys: tuple[str, str | None] | None = None) -> VoiceList:
    """The caller's voice list (see VoiceList); `keys` when the caller already read them."""
    return VoiceList(user=user, render=render, keys=keys or voice_list_cache_keys(user=user))


def voice_get_visible(*, user, voice_id: UUID) -> Voice:
    voice = Voice.objects.filter(voice_visible_q(user), pk=voice_id).prefetch_related("samples").first()
    if voice is None:
        raise VoiceNotFound()
    return voice


def voice_get_usable(*, user, voice_id: UUID) -> Voice:
    """A voice the caller may speak with: visible (404 otherwise), completed (409
    `voice_not_ready`), not blocked (409 `voice_blocked`)."""
    voice = Voice.objects.filter(voice_visible_q(user), pk=voice_id).first()
    if voice is None:
        raise VoiceNotFound()
    if voice.moderation_status == Voice.Moderation.BLOCKED:
        raise VoiceBlocked()
    if voice.status != Voice.Status.COMPLETED:
        raise VoiceNotReady(f"The voice is {voice.status}.", details={"status": voice.status})
    return voice


def _owned(voices, *, user, voice_id: UUID) -> Voice:
    voice = voices.filter(voice_visible_q(user), pk=voice_id).first()
    if voice is None:
        raise VoiceNotFound()
    if voice.owner_id != user.pk:
        raise NotOwner("Only the owner may change this voice.")
    return voice


def voice_get_for_write(*, user, voice_id: UUID) -> Voice:
    """The voice locked for update: 404 if the caller may not see it, 403 if it is not theirs."""
    # of=("self",): lock the voice only; the owner join (for shared visibility) is nullable.
    return _owned(Voice.objects.select_for_update(of=("self",)), user=user, voice_id=voice_id)


def voice_get_owned(*, user, voice_id: UUID) -> Voice:
    """The same answers as voice_get_for_write, without a lock: views ask it before judging a
    request's body, so another user's id answers 404 whatever the body holds."""
    return _owned(Voice.objects.all(), user=user, voice_id=voice_id)
