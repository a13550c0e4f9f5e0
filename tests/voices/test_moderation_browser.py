"""A moderator in a real browser: headless Chromium (Debian's package) driven by Playwright logs in
to the admin served by uvicorn, approves a pending public voice, and another account sees it over
the API. The screenshots are kept in `var/test-artifacts/` (`TEST_ARTIFACTS_DIR`)."""

import pytest
from django.contrib.auth.models import Group

from tests.browser import artifacts_dir
from tests.conftest import token_client
from tests.factories import UserFactory
from tests.voices.conftest import make_voice
from voices.models import Voice
from voices.moderators import MODERATORS_GROUP

PASSWORD = "moderate-with-care-42"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(autouse=True)
def moderators_group():
    """The group comes from a data migration, and a transactional test's flush removes such rows:
    make it again the way the migration does."""
    import importlib

    from django.apps import apps

    importlib.import_module("voices.migrations.0005_moderators_group").create_group(apps, None)


@pytest.fixture
def server_port(browser_server):
    return browser_server


def a_moderator(email: str):
    moderator = UserFactory(email=email, is_staff=True)
    moderator.set_password(PASSWORD)
    moderator.save()
    moderator.groups.add(Group.objects.get(name=MODERATORS_GROUP))
    return moderator


def log_in(page, base: str, email: str, *, then: str) -> None:
    """The admin's login form, as a person fills it in; waits for the page it leads to."""
    page.goto(f"{base}/admin/login/?next={then}")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}{then}")


def test_a_moderator_approves_a_pending_public_voice_in_the_browser(browser, server_port):
    moderator = a_moderator("moderator@example.com")
    owner, listener = UserFactory(email="storyteller@example.com"), UserFactory()
    voice = make_voice(owner, name="Grandma's story voice", visibility=Voice.Visibility.PUBLIC,
                       moderation_status=Voice.Moderation.PENDING, description="warm and slow")
    make_voice(owner, name="Bedtime voice", visibility=Voice.Visibility.PRIVATE)
    api = token_client(listener)

    def listed() -> set[str]:
        return {v["name"] for v in api.get("/api/v1/tts/voices").json()["results"]}

    assert "Grandma's story voice" not in listed()  # pending: only its owner sees it (and caches that)

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    base = f"http://127.0.0.1:{server_port}"
    log_in(page, base, moderator.email, then="/admin/voices/voice/")

    row = page.locator("#result_list tbody tr", has_text="Grandma's story voice")
    assert row.count() == 1
    # Pending review comes first.
    assert "Grandma's story voice" in page.locator("#result_list tbody tr").first.inner_text()
    page.screenshot(path=artifacts_dir() / "admin-voice-list.png", full_page=True)

    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "approve")
    page.click("button[name=index]")
    page.wait_for_load_state()
    assert "approved" in page.locator(".messagelist").inner_text().lower()
    page.screenshot(path=artifacts_dir() / "admin-voice-approved.png", full_page=True)

    # The change page: the moderation history names who decided.
    page.goto(f"{base}/admin/voices/voice/{voice.pk}/change/")
    assert moderator.email in page.content()
    page.screenshot(path=artifacts_dir() / "admin-voice-change.png", full_page=True)
    page.close()

    voice.refresh_from_db()
    assert (voice.moderation_status, voice.moderated_by) == (Voice.Moderation.APPROVED, moderator)
    assert "Grandma's story voice" in listed()  # read after write: the cached list was invalidated


def test_a_moderator_cannot_open_the_users_in_the_browser(browser, server_port):
    moderator = a_moderator("moderator2@example.com")
    page = browser.new_page()
    base = f"http://127.0.0.1:{server_port}"
    log_in(page, base, moderator.email, then="/admin/")
    assert "Users" not in page.locator("#content-main").inner_text()
    response = page.goto(f"{base}/admin/accounts/user/")
    assert response.status == 403
    page.close()

