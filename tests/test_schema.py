import pytest
from django.core.management import call_command


@pytest.mark.smoke
def test_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/v1/user/me" in text and "deviceToken" in text


@pytest.mark.smoke
@pytest.mark.django_db
def test_docs_page_is_served(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
