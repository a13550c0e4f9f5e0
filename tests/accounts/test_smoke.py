import pytest


@pytest.mark.smoke
def test_user_me_roundtrip(auth_client, user):
    response = auth_client.get("/api/v1/user/me")
    assert response.status_code == 200, response.content
    assert response.json()["email"] == user.email
