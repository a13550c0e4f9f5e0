"""Production settings: `check --deploy` passes with the README's env; plain HTTP works by default."""

import secrets
import subprocess
import sys

import pytest

from tests.live import ROOT

PRODUCTION = {
    "DEBUG": "false", "ENV_FILE": "", "SECRET_KEY": secrets.token_urlsafe(60),
    "ALLOWED_HOSTS": "stories.example.com", "CSRF_TRUSTED_ORIGINS": "https://stories.example.com",
    "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.com:587", "NUM_PROXIES": "1",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000", "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true", "SECURE_HSTS_PRELOAD": "true",
    "SESSION_COOKIE_SECURE": "true", "CSRF_COOKIE_SECURE": "true",
}


def check_deploy(env: dict) -> subprocess.CompletedProcess:
    import os

    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DATABASE_URL", "REDIS_URL", "VAR_DIR")}
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                          env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_passes_with_the_production_settings():
    result = check_deploy(PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_names_what_is_missing_without_them():
    result = check_deploy({k: v for k, v in PRODUCTION.items() if not k.startswith(("SECURE_", "SESSION_", "CSRF_C"))})
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout  # HSTS
    assert "security.W008" in result.stderr + result.stdout  # SSL redirect


@pytest.mark.django_db
def test_plain_http_is_served_by_default_and_probes_are_never_redirected(settings):
    from django.test import Client

    assert Client().get("/api/v1/").status_code != 301
    settings.SECURE_SSL_REDIRECT = True
    client = Client()  # SecurityMiddleware reads its settings when the handler is built
    assert client.get("/api/v1/").status_code == 301
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/", headers={"X-Forwarded-Proto": "https"}).status_code == 301  # header not trusted
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert Client().get("/api/v1/", headers={"X-Forwarded-Proto": "https"}).status_code != 301
