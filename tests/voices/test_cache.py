"""Per-user voice list caching: one SQL query on a hit, never stale after a write, ETags."""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from tests.voices.conftest import clone, make_voice
from voices import selectors
from voices.cache import invalidate_voices
from voices.models import Voice
from voices.serializers import render_voice_items
from voices.services import voice_moderate

pytestmark = pytest.mark.django_db


def names(client) -> set[str]:
    response = client.get("/api/v1/tts/voices")
    assert response.status_code == 200
    return {item["name"] for item in response.json()["results"]}


@pytest.fixture
def moderator(db):
    return User.objects.create_superuser(email="mod@example.com", password="x-long-password-1")


@pytest.mark.smoke
def test_cache_hit_costs_one_sql_query(auth_client, user, other_user):
    for i in range(3):
        make_voice(user, name=f"own {i}")
        make_voice(None, name=f"default {i}")
    make_voice(other_user, name="theirs", visibility="public", moderation_status="approved")
    auth_client.get("/api/v1/tts/voices")  # warm both parts
    with CaptureQueriesContext(connection) as queries:
        response = auth_client.get("/api/v1/tts/voices")
    assert response.status_code == 200 and response.json()["count"] == 7
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert "accounts_devicetoken" in queries[0]["sql"]


def test_uncached_list_matches_the_cached_one(auth_client, user, settings):
    make_voice(user, name="own")
    make_voice(None, name="default")
    cached = auth_client.get("/api/v1/tts/voices").json()
    settings.API_CACHE_ENABLED = False
    with CaptureQueriesContext(connection) as queries:
        uncached = auth_client.get("/api/v1/tts/voices").json()
    assert uncached == cached
    assert len(queries) == 3  # authentication, own voices, shared voices


def test_etag_and_304(auth_client, user):
    make_voice(user, name="own")
    first = auth_client.get("/api/v1/tts/voices")
    etag = first["ETag"]
    assert etag and first["Cache-Control"] == "private, no-cache"
    assert {"Authorization", "Cookie"} <= {v.strip() for v in first["Vary"].split(",")}

    with CaptureQueriesContext(connection) as queries:
        not_modified = auth_client.get("/api/v1/tts/voices", HTTP_IF_NONE_MATCH=etag)
    assert not_modified.status_code == 304 and not_modified["ETag"] == etag
    assert not_modified.content == b""
    assert len(queries) == 1

    auth_client.patch(f"/api/v1/tts/voices/{Voice.objects.get().pk}", {"name": "renamed"})
    changed = auth_client.get("/api/v1/tts/voices", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert auth_client.get("/api/v1/tts/voices?page=1", HTTP_IF_NONE_MATCH=changed["ETag"]).status_code == 200


def test_each_users_list_is_their_own(auth_client, user, other_user):
    from tests.conftest import token_client

    make_voice(user, name="mine")
    make_voice(other_user, name="theirs")
    other = token_client(other_user)
    assert names(auth_client) == {"mine"}
    assert names(other) == {"theirs"}
    assert auth_client.get("/api/v1/tts/voices")["ETag"] != other.get("/api/v1/tts/voices")["ETag"]


def test_fresh_after_every_mutation(auth_client, user, other_user, moderator, elevenlabs_settings,
                                    django_capture_on_commit_callbacks):
    from django.core.management import call_command

    from tests.conftest import token_client

    other = token_client(other_user)
    theirs = make_voice(other_user, name="theirs", visibility="public", moderation_status="pending")
    assert names(auth_client) == set() and names(other) == {"theirs"}

    with django_capture_on_commit_callbacks(execute=True):
        voice_id = clone(auth_client, name="cloned").json()["id"]
    assert names(auth_client) == {"cloned"}

    auth_client.patch(f"/api/v1/tts/voices/{voice_id}", {"name": "renamed"})
    assert names(auth_client) == {"renamed"}

    with django_capture_on_commit_callbacks(execute=True):  # bulk_update path
        voice_moderate(moderator=moderator, voice_ids=[theirs.pk], decision="approved")
    assert names(auth_client) == {"renamed", "theirs"}
    assert names(other) == {"theirs"}

    with django_capture_on_commit_callbacks(execute=True):  # bulk_create + bulk_update path
        call_command("sync_default_voices")
    defaults = set(Voice.objects.filter(visibility="default").values_list("name", flat=True))
    assert names(auth_client) == {"renamed", "theirs"} | defaults

    with django_capture_on_commit_callbacks(execute=True):
        other.patch(f"/api/v1/tts/voices/{theirs.pk}", {"visibility": "private"})
    assert "theirs" not in names(auth_client)

    with django_capture_on_commit_callbacks(execute=True):  # a direct update() + the shared invalidation
        Voice.objects.filter(pk=voice_id).update(status="completed")
        invalidate_voices(Voice.objects.filter(pk=voice_id))
    items = {i["name"]: i for i in auth_client.get("/api/v1/tts/voices").json()["results"]}
    assert items["renamed"]["status"] == "completed"

    with django_capture_on_commit_callbacks(execute=True):
        auth_client.delete(f"/api/v1/tts/voices/{voice_id}")
    assert "renamed" not in names(auth_client)


def _race(read, write, *, part_mine: bool) -> None:
    """`read` computes one part from the database, then `write` commits, then `read` stores it."""
    computed, written = threading.Event(), threading.Event()

    def slow_render(voices, mine):
        rows = render_voice_items(voices, mine)
        if mine == part_mine:
            computed.set()
            written.wait(5)
        return rows

    def reader():
        try:
            read(slow_render)
        finally:
            connection.close()

    thread = threading.Thread(target=reader)
    thread.start()
    assert computed.wait(5)
    write()
    written.set()
    thread.join(5)


@pytest.mark.django_db(transaction=True)
def test_racing_reader_cannot_leave_a_stale_shared_list(user, other_user, moderator):
    theirs = make_voice(other_user, name="theirs", visibility="public", moderation_status="pending")
    make_voice(None, name="default")
    stale_user = User.objects.get(pk=user.pk)
    old_key = selectors.voice_list_cache_keys(user=stale_user)[1]
    _race(lambda render: selectors.voice_list(user=stale_user, render=render),
          lambda: voice_moderate(moderator=moderator, voice_ids=[theirs.pk], decision="approved"), part_mine=False)
    fresh = selectors.voice_list(user=User.objects.get(pk=user.pk), render=render_voice_items)
    assert "theirs" in {item["name"] for item in fresh}
    # The racing reader did store its stale list, under the version nobody reads any more.
    from django.core.cache import cache

    assert "theirs" not in {item["name"] for item in cache.get(old_key)["items"]}


@pytest.mark.django_db(transaction=True)
def test_racing_reader_cannot_leave_a_stale_own_list(user):
    from voices.services import voice_update

    voice = make_voice(user, name="before")
    stale_user = User.objects.get(pk=user.pk)
    _race(lambda render: selectors.voice_list(user=stale_user, render=render),
          lambda: voice_update(user=User.objects.get(pk=user.pk), voice_id=voice.pk, name="after"), part_mine=True)
    fresh = selectors.voice_list(user=User.objects.get(pk=user.pk), render=render_voice_items)
    assert {item["name"] for item in fresh} == {"after"}


def test_redis_unreachable_still_lists_from_the_database(auth_client, user, settings):
    make_voice(user, name="mine")
    make_voice(None, name="default")
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    response = auth_client.get("/api/v1/tts/voices")
    assert response.status_code == 200
    assert {i["name"] for i in response.json()["results"]} == {"mine", "default"}
    assert "ETag" not in response  # no version to tag with: never a stale 304


@pytest.mark.django_db(transaction=True)
def test_reader_during_an_open_write_transaction_does_not_poison_the_new_version(user, other_user, moderator):
    """The shared version is bumped after commit: a reader that runs while the write is still
    uncommitted must not be able to store pre-commit rows under the version readers use next."""
    from django.db import transaction

    theirs = make_voice(other_user, name="theirs", visibility="public", moderation_status="pending")
    in_transaction, read_done = threading.Event(), threading.Event()

    def writer():
        try:
            with transaction.atomic():
                voice_moderate(moderator=moderator, voice_ids=[theirs.pk], decision="approved")
                in_transaction.set()
                read_done.wait(5)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert in_transaction.wait(5)
    during = selectors.voice_list(user=User.objects.get(pk=user.pk), render=render_voice_items)
    assert "theirs" not in {item["name"] for item in during}  # not committed yet
    read_done.set()
    thread.join(5)
    after = selectors.voice_list(user=User.objects.get(pk=user.pk), render=render_voice_items)
    assert "theirs" in {item["name"] for item in after}


@pytest.fixture
def redis_refusing_writes():
    """The real Redis refuses every write (NOREPLICAS) while reads still work."""
    from django_redis import get_redis_connection

    raw = get_redis_connection("default")

    class Switch:
        def on(self) -> None:
            raw.config_set("min-replicas-to-write", 1)

        def off(self) -> None:
            raw.config_set("min-replicas-to-write", 0)

    switch = Switch()
    yield switch
    switch.off()


@pytest.mark.django_db(transaction=True)
def test_a_block_reaches_every_list_after_a_failed_version_bump(auth_client, user, other_user, moderator, settings,
                                                                 redis_refusing_writes):
    """Redis refuses writes while a moderator blocks a public voice: the bump fails, a task
    keeps retrying it, and once Redis takes writes again every list drops the voice."""
    from django_q.models import Schedule

    from voices import tasks

    settings.SHARED_VERSION_BUMP_TRIES = 2
    settings.SHARED_VERSION_BUMP_PAUSE_SECONDS = 0.01
    make_voice(other_user, name="theirs", visibility="public", moderation_status="approved")
    assert "theirs" in names(auth_client)  # the shared part is cached now

    redis_refusing_writes.on()
    voice_moderate(moderator=moderator, voice_ids=[Voice.objects.get(name="theirs").pk], decision="blocked")
    retry = Schedule.objects.get(func="voices.tasks.retry_shared_version_bump")  # the inline try failed too

    redis_refusing_writes.off()
    assert tasks.retry_shared_version_bump(*eval(retry.args)) is True  # what the scheduler runs
    assert "theirs" not in names(auth_client)


def test_the_shared_part_lives_no_longer_than_its_bound(auth_client, user, settings):
    from django.core.cache import cache

    make_voice(None, name="default")
    names(auth_client)
    shared_key = selectors.voice_list_cache_keys(user=user)[1]
    assert 0 < cache.ttl(shared_key) <= settings.VOICES_SHARED_CACHE_TTL < settings.VOICES_CACHE_TTL


@pytest.mark.parametrize("header", ['W/{etag}', '"nope", {etag}', '{etag}, "nope"', "*"])
def test_if_none_match_is_parsed_like_http_says(auth_client, user, header):
    make_voice(user, name="own")
    etag = auth_client.get("/api/v1/tts/voices")["ETag"]
    response = auth_client.get("/api/v1/tts/voices", HTTP_IF_NONE_MATCH=header.format(etag=etag))
    assert response.status_code == 304


def test_an_unrelated_tag_gets_the_list(auth_client, user):
    make_voice(user, name="own")
    assert auth_client.get("/api/v1/tts/voices", HTTP_IF_NONE_MATCH='"nope", W/"other"').status_code == 200


def test_the_shared_part_is_capped_in_the_cache_and_deep_pages_come_from_the_database(
        auth_client, user, other_user, settings):
    """Only the first VOICES_SHARED_CACHE_ITEMS shared voices are cached (with the total); pages
    past them are read from the database, and every page matches the uncached list."""
    from django.core.cache import cache

    settings.VOICES_SHARED_CACHE_ITEMS = 3
    make_voice(user, name="own-private")
    make_voice(user, name="own-public", visibility="public", moderation_status="approved")  # in both parts
    for i in range(7):
        make_voice(other_user, name=f"public-{i}", visibility="public", moderation_status="approved")
    make_voice(None, name="default")

    def all_pages(size: int) -> list[str]:
        names, page = [], 1
        while True:
            body = auth_client.get(f"/api/v1/tts/voices?page_size={size}&page={page}").json()
            names += [item["name"] for item in body["results"]]
            if not body["next"]:
                return names
            page += 1

    paged = all_pages(2)
    expected = list(selectors.voice_queryset_visible(user=user).values_list("name", flat=True))
    assert paged == expected and len(paged) == 10 and paged[:2] == ["own-public", "own-private"]
    assert auth_client.get("/api/v1/tts/voices?page_size=2").json()["count"] == 10

    shared = cache.get(selectors.voice_list_cache_keys(user=user)[1])
    assert len(shared["items"]) == 3 and shared["total"] == 9  # 7 public of others + own public + default
    with CaptureQueriesContext(connection) as queries:
        deep = auth_client.get("/api/v1/tts/voices?page_size=2&page=5").json()
    assert [item["name"] for item in deep["results"]] == expected[8:10]
    assert len(queries) == 2  # authentication + the page itself


def test_a_shared_part_of_another_shape_is_never_read(auth_client, user, other_user):
    """The part's key names its format: a value an older release stored (a plain list) under
    the old key cannot break the list."""
    from django.core.cache import cache
    from django_redis import get_redis_connection

    make_voice(other_user, name="theirs", visibility="public", moderation_status="approved")
    version = int(get_redis_connection("default").get("tts:voices:shared:version") or 0)
    cache.set(f"tts:voices:shared:v{version}", [{"id": "x", "name": "old format"}], 60)
    assert names(auth_client) == {"theirs"}


def test_a_lost_version_counter_never_repeats_a_version(auth_client, user):
    """Redis keeps nothing on disk: after a restart the counter starts from the clock, so an
    ETag a client kept from before can never match different data."""
    from django_redis import get_redis_connection

    raw = get_redis_connection("default")
    make_voice(None, name="default")
    before = auth_client.get("/api/v1/tts/voices")["ETag"]
    raw.delete("tts:voices:shared:version")
    after = auth_client.get("/api/v1/tts/voices")
    assert after["ETag"] != before
    assert auth_client.get("/api/v1/tts/voices", HTTP_IF_NONE_MATCH=before).status_code == 200


@pytest.mark.parametrize("headers", [{"HTTP_IF_MATCH": '"x"'}, {"HTTP_IF_UNMODIFIED_SINCE": "Mon, 01 Jan 2024 00:00:00 GMT"}])
def test_other_preconditions_do_not_turn_into_304(auth_client, user, headers):
    make_voice(user, name="own")
    assert auth_client.get("/api/v1/tts/voices", **headers).status_code == 200


def test_star_on_a_page_past_the_end_is_still_404(auth_client, user):
    make_voice(user, name="own")
    assert auth_client.get("/api/v1/tts/voices?page=9", HTTP_IF_NONE_MATCH="*").status_code == 404


def test_own_shared_voices_inside_the_cached_prefix_are_listed_once(auth_client, user, other_user, settings):
    settings.VOICES_SHARED_CACHE_ITEMS = 4
    for i in range(3):
        make_voice(other_user, name=f"public-{i}", visibility="public", moderation_status="approved")
    make_voice(user, name="own-public", visibility="public", moderation_status="approved")  # newest: cached prefix
    for i in range(3):
        make_voice(user, name=f"own-{i}")
    body = auth_client.get("/api/v1/tts/voices?page_size=100").json()
    listed = [item["name"] for item in body["results"]]
    assert listed == list(selectors.voice_queryset_visible(user=user).values_list("name", flat=True))
    assert listed.count("own-public") == 1 and body["count"] == len(listed) == 7
    small_pages = [item["name"] for page in (1, 2, 3, 4)
                   for item in auth_client.get(f"/api/v1/tts/voices?page_size=2&page={page}").json()["results"]]
    assert small_pages == listed
