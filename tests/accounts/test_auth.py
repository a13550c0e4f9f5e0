import re

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import DeviceToken, User
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-long-passphrase"


def _login(email: str, password: str = PASSWORD, device: str = "phone") -> dict:
    response = APIClient().post("/api/v1/auth/login", {"email": email, "password": password, "device_name": device})
    assert response.status_code == 200, response.content
    return response.json()


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.mark.smoke
def test_signup_returns_a_working_token():
    response = APIClient().post(
        "/api/v1/auth/signup",
        {"email": "Mom@Example.com", "password": PASSWORD, "display_name": "Mom", "device_name": "iPad"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user"]["email"] == "mom@example.com"
    assert body["device_name"] == "iPad"
    me = _client(body["token"]).get("/api/v1/user/me")
    assert me.status_code == 200
    assert me.json()["display_name"] == "Mom"
    # The key is stored hashed only.
    token = DeviceToken.objects.get(pk=body["token_id"])
    assert body["token"] not in (token.digest, token.token_key)


def test_signup_rejects_duplicate_email_case_insensitively(user):
    response = APIClient().post("/api/v1/auth/signup", {"email": user.email.upper(), "password": PASSWORD})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "email" in response.json()["error"]["details"]["fields"]


def test_signup_rejects_weak_password():
    response = APIClient().post("/api/v1/auth/signup", {"email": "x@example.com", "password": "123"})
    assert response.status_code == 400
    assert "password" in response.json()["error"]["details"]["fields"]
    assert not User.objects.filter(email="x@example.com").exists()


def test_login_wrong_password_is_401(user):
    response = APIClient().post("/api/v1/auth/login", {"email": user.email, "password": "nope", "device_name": "x"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_login_inactive_user_is_401(user):
    user.is_active = False
    user.save()
    response = APIClient().post("/api/v1/auth/login", {"email": user.email, "password": PASSWORD, "device_name": "x"})
    assert response.status_code == 401


def test_two_devices_are_independent_listed_and_revocable(user):
    phone = _login(user.email, device="phone")
    tablet = _login(user.email, device="tablet")
    phone_client, tablet_client = _client(phone["token"]), _client(tablet["token"])

    listed = phone_client.get("/api/v1/auth/tokens").json()
    assert sorted(t["device_name"] for t in listed) == ["phone", "tablet"]
    assert [t["current"] for t in listed if t["device_name"] == "phone"] == [True]
    assert all("token" not in t and "digest" not in t for t in listed)

    assert phone_client.delete(f"/api/v1/auth/tokens/{tablet['token_id']}").status_code == 204
    assert tablet_client.get("/api/v1/user/me").status_code == 401
    assert phone_client.get("/api/v1/user/me").status_code == 200
    assert [t["device_name"] for t in phone_client.get("/api/v1/auth/tokens").json()] == ["phone"]


def test_revoking_another_users_token_is_404(user):
    from tests.factories import UserFactory

    other = _login(UserFactory().email)
    mine = _client(_login(user.email)["token"])
    response = mine.delete(f"/api/v1/auth/tokens/{other['token_id']}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "token_not_found"
    assert _client(other["token"]).get("/api/v1/user/me").status_code == 200


def test_logout_revokes_only_this_device(user):
    phone, tablet = _login(user.email, device="phone"), _login(user.email, device="tablet")
    assert _client(phone["token"]).post("/api/v1/auth/logout").status_code == 204
    assert _client(phone["token"]).get("/api/v1/user/me").status_code == 401
    assert _client(tablet["token"]).get("/api/v1/user/me").status_code == 200


def test_logout_all_revokes_every_device(user):
    phone, tablet = _login(user.email, device="phone"), _login(user.email, device="tablet")
    assert _client(phone["token"]).post("/api/v1/auth/logout-all").status_code == 204
    assert _client(phone["token"]).get("/api/v1/user/me").status_code == 401
    assert _client(tablet["token"]).get("/api/v1/user/me").status_code == 401


def test_expired_token_is_401_and_purged_by_the_daily_task(user):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.tasks import purge_expired_tokens  # the daily schedule's entry point

    old, fresh = _login(user.email, device="old"), _login(user.email, device="fresh")
    DeviceToken.objects.filter(pk=old["token_id"]).update(expiry=timezone.now() - timedelta(seconds=1))
    assert _client(old["token"]).get("/api/v1/user/me").status_code == 401
    # Authentication itself does not sweep (that would cost a query per request)...
    assert DeviceToken.objects.filter(pk=old["token_id"]).exists()
    # ...the daily task does.
    assert purge_expired_tokens() == 1
    assert list(DeviceToken.objects.values_list("pk", flat=True)) == [DeviceToken.objects.get(pk=fresh["token_id"]).pk]


def test_token_limit_signs_out_the_oldest_device(user, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_LIMIT_PER_USER": 2}
    first = _login(user.email, device="first")
    _login(user.email, device="second")
    _login(user.email, device="third")
    assert sorted(DeviceToken.objects.values_list("device_name", flat=True)) == ["second", "third"]
    assert _client(first["token"]).get("/api/v1/user/me").status_code == 401


def test_password_change_keeps_this_device_and_signs_out_others(user):
    phone, tablet = _login(user.email, device="phone"), _login(user.email, device="tablet")
    client = _client(phone["token"])
    wrong = client.post("/api/v1/auth/password/change", {"old_password": "nope", "new_password": NEW_PASSWORD})
    assert wrong.status_code == 400 and "old_password" in wrong.json()["error"]["details"]["fields"]

    ok = client.post("/api/v1/auth/password/change", {"old_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert ok.status_code == 204
    assert client.get("/api/v1/user/me").status_code == 200
    assert _client(tablet["token"]).get("/api/v1/user/me").status_code == 401
    _login(user.email, password=NEW_PASSWORD)


def test_password_reset_by_email(user):
    device = _login(user.email)
    assert APIClient().post("/api/v1/auth/password/reset", {"email": "nobody@example.com"}).status_code == 202
    assert len(mail.outbox) == 0  # unknown address: same answer, no mail
    assert APIClient().post("/api/v1/auth/password/reset", {"email": user.email}).status_code == 202
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [user.email]
    uid = re.search(r"uid: (\S+)", mail.outbox[0].body).group(1)
    token = re.search(r"token: (\S+)", mail.outbox[0].body).group(1)

    bad = APIClient().post("/api/v1/auth/password/reset/confirm", {"uid": uid, "token": "bad-token", "new_password": NEW_PASSWORD})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_reset_token"

    ok = APIClient().post("/api/v1/auth/password/reset/confirm", {"uid": uid, "token": token, "new_password": NEW_PASSWORD})
    assert ok.status_code == 204
    assert _client(device["token"]).get("/api/v1/user/me").status_code == 401  # every device signed out
    _login(user.email, password=NEW_PASSWORD)
    # The link works once: the password hash it was made from has changed.
    again = APIClient().post("/api/v1/auth/password/reset/confirm", {"uid": uid, "token": token, "new_password": "yet-another-passphrase"})
    assert again.status_code == 400


def test_session_login_works_for_the_browsable_api(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.get("/api/v1/user/me", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<html" in response.content.lower() or b"<!doctype html" in response.content.lower()


def test_housekeeping_schedules_exist():
    from django_q.models import Schedule

    from accounts import tasks

    schedules = dict(Schedule.objects.values_list("name", "func"))
    assert schedules["purge-expired-tokens"] == "accounts.tasks.purge_expired_tokens"
    assert schedules["purge-idempotency-records"] == "accounts.tasks.purge_idempotency_records"
    assert schedules["sync-default-voices"] == "voices.tasks.sync_default_voices"
    assert tasks.purge_idempotency_records() == 0


def test_createsuperuser_and_admin_login_use_the_email(client, monkeypatch):
    from django.core.management import call_command

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "admin-long-passphrase")
    call_command("createsuperuser", "--noinput", "--email", "Admin@Example.com")
    admin = User.objects.get(email="admin@example.com")
    assert admin.is_staff and admin.is_superuser
    response = client.post("/admin/login/?next=/admin/", {"username": "admin@example.com",
                                                           "password": "admin-long-passphrase"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/accounts/user/").status_code == 200
    assert client.get(f"/admin/accounts/user/{admin.pk}/change/").status_code == 200
