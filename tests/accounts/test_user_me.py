import threading

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import selectors
from accounts.models import DeviceToken, User
from accounts.serializers import render_user_me
from tests.conftest import token_client
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_get_profile_with_usage(auth_client, user):
    body = auth_client.get("/api/v1/user/me").json()
    assert body["id"] == str(user.pk)
    assert body["email"] == user.email
    assert body["monthly_character_quota"] == user.monthly_character_quota
    assert set(body["usage"]) == {"characters_used_this_month", "voices", "books"}


def test_cached_hit_costs_exactly_one_query(auth_client, user):
    auth_client.get("/api/v1/user/me")  # warm
    assert cache.get(selectors.user_info_key(User.objects.get(pk=user.pk))) is not None
    with CaptureQueriesContext(connection) as queries:
        response = auth_client.get("/api/v1/user/me")
    assert response.status_code == 200
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert "accounts_devicetoken" in queries[0]["sql"] and "accounts_user" in queries[0]["sql"]


def test_cache_serves_usage_without_recounting(auth_client, user, settings):
    calls = []

    def count_devices(u):
        calls.append(u.pk)
        return DeviceToken.objects.filter(user=u).count()

    previous = selectors._usage_counters.get("voices")
    selectors.register_usage_counter("voices", count_devices)
    try:
        with CaptureQueriesContext(connection) as miss:
            assert auth_client.get("/api/v1/user/me").json()["usage"]["voices"] == 1
        with CaptureQueriesContext(connection) as hit:
            assert auth_client.get("/api/v1/user/me").json()["usage"]["voices"] == 1
        # A miss: authentication plus one query per usage counter; a hit: authentication only.
        assert (len(miss), len(hit), len(calls)) == (1 + len(selectors._usage_counters), 1, 1)
        settings.API_CACHE_ENABLED = False
        auth_client.get("/api/v1/user/me")
        assert len(calls) == 2
    finally:
        selectors.register_usage_counter("voices", previous)


def test_patch_invalidates_the_cached_profile(auth_client, user):
    assert auth_client.get("/api/v1/user/me").json()["display_name"] == user.display_name
    response = auth_client.patch("/api/v1/user/me", {"display_name": "Papa Bear"})
    assert response.status_code == 200 and response.json()["display_name"] == "Papa Bear"
    assert auth_client.get("/api/v1/user/me").json()["display_name"] == "Papa Bear"


def test_put_requires_every_field_and_invalidates(auth_client):
    auth_client.get("/api/v1/user/me")
    missing = auth_client.put("/api/v1/user/me", {"display_name": "Only name"})
    assert missing.status_code == 400 and "email" in missing.json()["error"]["details"]["fields"]
    no_password = auth_client.put("/api/v1/user/me", {"display_name": "Nana", "email": "nana@example.com"})
    assert no_password.status_code == 400
    assert "current_password" in no_password.json()["error"]["details"]["fields"]
    ok = auth_client.put("/api/v1/user/me", {"display_name": "Nana", "email": "nana@example.com",
                                             "current_password": PASSWORD})
    assert ok.status_code == 200
    body = auth_client.get("/api/v1/user/me").json()
    assert (body["display_name"], body["email"]) == ("Nana", "nana@example.com")


def test_email_change_to_a_taken_address_is_rejected(auth_client):
    from tests.factories import UserFactory

    other = UserFactory()
    response = auth_client.patch("/api/v1/user/me", {"email": other.email, "current_password": PASSWORD})
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"


def test_admin_edit_through_save_invalidates(auth_client, user):
    auth_client.get("/api/v1/user/me")
    fresh = User.objects.get(pk=user.pk)
    fresh.monthly_character_quota = 777
    fresh.save()
    assert auth_client.get("/api/v1/user/me").json()["monthly_character_quota"] == 777


def test_a_full_save_of_a_stale_instance_never_reuses_a_cache_version(auth_client, user):
    """An admin form saves the whole row; its copy of cache_version must not be written back."""
    stale = User.objects.get(pk=user.pk)  # loaded before another write
    auth_client.patch("/api/v1/user/me", {"display_name": "First"})
    used = User.objects.get(pk=user.pk).cache_version
    auth_client.get("/api/v1/user/me")  # cached under `used`
    stale.monthly_character_quota = 555
    stale.save()
    assert User.objects.get(pk=user.pk).cache_version > used
    body = auth_client.get("/api/v1/user/me").json()
    row = User.objects.get(pk=user.pk)  # the stale save wrote its whole copy: the read shows the row
    assert (body["monthly_character_quota"], body["display_name"]) == (555, row.display_name)


def test_delete_deactivates_at_once_and_cleanup_removes_the_user(auth_client, user, django_capture_on_commit_callbacks):
    other_device = token_client(user, "tablet")
    auth_client.get("/api/v1/user/me")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = auth_client.delete("/api/v1/user/me")
    assert response.status_code == 202
    # Signed out everywhere at once, before the cleanup has run.
    assert auth_client.get("/api/v1/user/me").status_code == 401
    assert other_device.get("/api/v1/user/me").status_code == 401
    assert User.objects.filter(pk=user.pk, is_active=False).exists()
    for callback in queued:  # the cleanup task (Q_SYNC runs it inline in tests)
        callback()
    assert not User.objects.filter(pk=user.pk).exists()
    assert not DeviceToken.objects.filter(user_id=user.pk).exists()


def test_cleanup_retries_until_every_step_succeeds(user, settings, django_capture_on_commit_callbacks):
    from django_q.models import Schedule

    from accounts import services

    calls = {"n": 0}

    def flaky_step(*, user):
        calls["n"] += 1
        if calls["n"] < 3:
            raise RuntimeError("provider down")

    services.register_account_cleanup_step(flaky_step)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.user_deactivate(user=user)
        # First run failed: the user stays (inactive) and a retry is scheduled with backoff.
        assert User.objects.filter(pk=user.pk, is_active=False).exists()
        retry = Schedule.objects.get(func="accounts.tasks.account_cleanup")
        assert retry.next_run is not None and "2)" in retry.args
        assert services.account_cleanup(user_id=user.pk, attempt=2) is False
        assert services.account_cleanup(user_id=user.pk, attempt=3) is True
        assert not User.objects.filter(pk=user.pk).exists()
        assert calls["n"] == 3
    finally:
        services._cleanup_steps.remove(flaky_step)


def test_racing_reader_cannot_leave_a_stale_entry(user):
    """A reader computes the profile from the old row, a writer commits, then the reader stores
    its stale value. The next read must still see the new value (versioned keys)."""
    reader_user = User.objects.get(pk=user.pk)  # what authentication loaded before the write
    computed = threading.Event()
    written = threading.Event()

    def slow_render(u, usage):
        data = render_user_me(u, usage)
        computed.set()
        written.wait(5)  # the write commits while this reader holds its stale value
        return data

    def reader():
        selectors.user_info(user=reader_user, render=slow_render)
        connection.close()

    thread = threading.Thread(target=reader)
    thread.start()
    assert computed.wait(5)
    from accounts.services import user_update

    user_update(user=User.objects.get(pk=user.pk), display_name="Fresh Name")
    written.set()
    thread.join(5)

    after = User.objects.get(pk=user.pk)  # what the next request's authentication loads
    assert selectors.user_info(user=after, render=render_user_me)["display_name"] == "Fresh Name"
    # The stale value went to the old version's key, which no reader uses any more.
    assert cache.get(selectors.user_info_key(reader_user))["display_name"] != "Fresh Name"


def test_redis_unreachable_still_answers_from_the_database(auth_client, user, settings):
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    response = auth_client.get("/api/v1/user/me")
    assert response.status_code == 200
    assert response.json()["email"] == user.email
    assert auth_client.patch("/api/v1/user/me", {"display_name": "Offline"}).status_code == 200
    assert auth_client.get("/api/v1/user/me").json()["display_name"] == "Offline"
