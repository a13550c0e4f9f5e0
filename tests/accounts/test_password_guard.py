"""One brute-force guard (django-axes, database handler) behind every password door."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from tests.conftest import token_client
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

WRONG = "not-the-password"
ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.20"


@pytest.fixture(params=["redis up", "redis down"])
def redis_state(request, settings):
    if request.param == "redis down":
        # Nothing listens there: DRF throttles fail open, the guard must not.
        settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    return request.param


def api_login(password: str, email: str, addr: str = ATTACKER):
    return APIClient().post("/api/v1/auth/login", {"email": email, "password": password, "device_name": "x"},
                            REMOTE_ADDR=addr)


def form_login(path: str, password: str, email: str, addr: str = ATTACKER) -> Client:
    client = Client()
    client.last = client.post(path, {"username": email, "password": password}, REMOTE_ADDR=addr)
    return client


def password_change(user, old: str, addr: str = ATTACKER):
    client = token_client(user)
    return client.post("/api/v1/auth/password/change", {"old_password": old, "new_password": "a-new-long-passphrase"},
                       REMOTE_ADDR=addr)


def fail_once(door: str, user) -> int:
    if door == "api":
        return api_login(WRONG, user.email).status_code
    if door == "password_change":
        return password_change(user, WRONG).status_code
    path = {"browsable": "/api-auth/login/", "admin": "/admin/login/"}[door]
    return form_login(path, WRONG, user.email).last.status_code


def right_password_opens_a_session(door: str, user, addr: str = ATTACKER) -> tuple[int, bool]:
    """(status, whether the right password got the caller in)."""
    if door == "api":
        response = api_login(PASSWORD, user.email, addr)
        return response.status_code, response.status_code == 200 and "token" in response.json()
    if door == "password_change":
        response = password_change(user, PASSWORD, addr)
        changed = User.objects.get(pk=user.pk).check_password("a-new-long-passphrase")
        return response.status_code, changed
    path = {"browsable": "/api-auth/login/", "admin": "/admin/login/"}[door]
    client = form_login(path, PASSWORD, user.email, addr)
    return client.last.status_code, client.get("/api/v1/user/me").status_code == 200


DOORS = ["api", "browsable", "admin", "password_change"]


@pytest.mark.parametrize("door", DOORS)
def test_each_door_locks_the_pair_then_refuses_the_right_password(door, redis_state, settings):
    user = User.objects.create_user(email="mom@example.com", password=PASSWORD, is_staff=True)
    statuses = [fail_once(door, user) for _ in range(settings.AXES_FAILURE_LIMIT + 2)]
    assert 429 not in statuses[: settings.AXES_FAILURE_LIMIT - 1], statuses
    assert statuses[-1] == 429, statuses

    status, got_in = right_password_opens_a_session(door, user)
    assert status == 429
    assert not got_in


def test_api_lockout_is_a_json_429_with_retry_after(settings):
    user = User.objects.create_user(email="mom@example.com", password=PASSWORD)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        api_login(WRONG, user.email)
    response = api_login(PASSWORD, user.email)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "too_many_attempts"
    assert int(response["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())


def test_the_doors_share_one_counter(settings):
    """Failures on different doors add up: an attacker cannot get N tries per door."""
    user = User.objects.create_user(email="mom@example.com", password=PASSWORD, is_staff=True)
    doors = ["api", "browsable", "admin", "password_change"]
    for i in range(settings.AXES_FAILURE_LIMIT):
        fail_once(doors[i % len(doors)], user)
    assert api_login(PASSWORD, user.email).status_code == 429


def test_a_lockout_is_per_account_and_address(settings):
    """The attacker's address is locked out of this account; the family elsewhere is not, and
    the attacker's address can still sign in to other accounts."""
    mom = User.objects.create_user(email="mom@example.com", password=PASSWORD)
    dad = User.objects.create_user(email="dad@example.com", password=PASSWORD)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        api_login(WRONG, mom.email)
    assert api_login(PASSWORD, mom.email).status_code == 429
    assert api_login(PASSWORD, mom.email, addr=ELSEWHERE).status_code == 200
    assert api_login(PASSWORD, dad.email).status_code == 200


def test_email_case_does_not_give_fresh_tries(settings):
    user = User.objects.create_user(email="mom@example.com", password=PASSWORD)
    for i in range(settings.AXES_FAILURE_LIMIT):
        api_login(WRONG, "MOM@example.com" if i % 2 else " mom@Example.com")
    assert api_login(PASSWORD, user.email).status_code == 429


def test_email_change_password_check_counts_too(settings):
    user = User.objects.create_user(email="mom@example.com", password=PASSWORD)
    client = token_client(user)
    statuses = [
        client.patch("/api/v1/user/me", {"email": "thief@example.com", "current_password": WRONG},
                     REMOTE_ADDR=ATTACKER).status_code
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[0] == 400 and statuses[-1] == 429
    response = client.patch("/api/v1/user/me", {"email": "thief@example.com", "current_password": PASSWORD},
                            REMOTE_ADDR=ATTACKER)
    assert response.status_code == 429
    assert User.objects.get(pk=user.pk).email == "mom@example.com"


def test_a_success_resets_the_count(settings):
    user = User.objects.create_user(email="mom@example.com", password=PASSWORD)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        api_login(WRONG, user.email)
    assert api_login(PASSWORD, user.email).status_code == 200
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        api_login(WRONG, user.email)
    assert api_login(PASSWORD, user.email).status_code == 200


def test_forged_forwarded_for_does_not_change_the_address(settings):
    """Without NUM_PROXIES the socket's address counts, whatever X-Forwarded-For says."""
    user = User.objects.create_user(email="mom@example.com", password=PASSWORD)
    for i in range(settings.AXES_FAILURE_LIMIT):
        APIClient().post("/api/v1/auth/login", {"email": user.email, "password": WRONG, "device_name": "x"},
                         REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"10.9.9.{i}")
    response = APIClient().post("/api/v1/auth/login", {"email": user.email, "password": PASSWORD, "device_name": "x"},
                                REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR="10.9.9.200")
    assert response.status_code == 429
