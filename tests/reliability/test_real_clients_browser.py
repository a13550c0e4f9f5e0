"""The service in a real browser (headless Debian Chromium, Playwright): a session login on the
browsable API, the API pages and the docs render, and a page on the service's own origin opens
/ws/events/ with nothing but the session cookie and gets `hello`. Screenshots are kept in
`var/test-artifacts/`."""

import pytest

from tests.browser import artifacts_dir
from tests.factories import PASSWORD, UserFactory
from tests.voices.conftest import make_voice

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SAME_ORIGIN_SOCKET = """() => new Promise((resolve, reject) => {
    const socket = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws/events/");
    const timer = setTimeout(() => reject(new Error("no event in 10 s")), 10000);
    socket.onmessage = (message) => { clearTimeout(timer); socket.close(); resolve(JSON.parse(message.data)); };
    socket.onclose = (event) => { clearTimeout(timer); reject(new Error("closed with " + event.code)); };
})"""


def test_the_browsable_api_the_docs_and_a_same_origin_socket(browser, browser_server):
    base = f"http://127.0.0.1:{browser_server}"
    user = UserFactory(email="parent@example.com")
    make_voice(user, name="Grandma's voice")
    shots = artifacts_dir()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{base}/api-auth/login/?next=/api/v1/tts/voices")
        page.fill("#id_username", user.email)
        page.fill("#id_password", PASSWORD)
        page.press("#id_password", "Enter")
        page.wait_for_url(f"{base}/api/v1/tts/voices")
        assert "Grandma's voice" in page.content() and user.email in page.content()  # signed in, own voice listed
        page.screenshot(path=str(shots / "browsable-api-voices.png"), full_page=True)

        page.goto(f"{base}/api/v1/")
        assert page.locator("text=Api Root").count() or "api" in page.title().lower()
        page.screenshot(path=str(shots / "browsable-api-root.png"))

        page.goto(f"{base}/api/docs/")
        page.wait_for_selector(".opblock-tag", timeout=20000)  # Swagger UI rendered the schema
        tags = page.locator(".opblock-tag").all_inner_texts()
        assert any("voices" in tag.lower() for tag in tags) and any("storybook" in tag.lower() for tag in tags)
        page.screenshot(path=str(shots / "api-docs.png"))

        hello = page.evaluate(SAME_ORIGIN_SOCKET)  # the docs page is on the service's own origin
        assert hello["type"] == "hello" and hello["data"] == {"user_id": str(user.pk)}
    finally:
        page.close()
