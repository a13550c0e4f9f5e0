"""`manage.py import_provider_voices`: the provider account's own voices, into the library with owners."""

import io

import pytest
from django.core.management import CommandError, call_command
from django_redis import get_redis_connection

from accounts.models import User
from tests.conftest import token_client
from tests.factories import UserFactory
from tts.models import SpeechJob
from voices.models import Voice
from voices.services import PENDING_SET

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("import_provider_voices", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def account(elevenlabs_settings):
    """An ElevenLabs account holding a premade voice and four of its own."""
    em = elevenlabs_settings
    em.add_voice("Rachel", category="premade")
    ids = {
        "labelled": em.add_voice("Mum's voice", labels={"owner": "Mum@Example.com", "language": "en"},
                                 description="bedtime"),
        "mapped": em.add_voice("Grandpa", category="generated"),
        "nobody": em.add_voice("Old test voice"),
        "stranger": em.add_voice("Who?", labels={"owner": "nobody@example.com"}),
    }
    return em, ids


def map_file(tmp_path, rows: list[tuple[str, str]]) -> str:
    path = tmp_path / "owners.csv"
    path.write_text("provider_voice_id,owner_email\n" + "".join(f"{a},{b}\n" for a, b in rows))
    return str(path)


def test_dry_run_reports_everything_and_writes_nothing(account, tmp_path):
    em, ids = account
    mum, grandpa = UserFactory(email="mum@example.com"), UserFactory(email="grandpa@example.com")
    version = (mum.cache_version, grandpa.cache_version)
    out = run("--label", "owner", "--map", map_file(tmp_path, [(ids["mapped"], "grandpa@example.com")]))
    assert "Dry run, nothing written" in out
    assert "2 would create, 0 skipped, 1 unmapped, 1 unknown owner" in out
    assert ids["nobody"] in out.split("unmapped")[1] and "nobody@example.com" in out
    assert not Voice.objects.exists()
    mum.refresh_from_db(), grandpa.refresh_from_db()
    assert (mum.cache_version, grandpa.cache_version) == version
    assert em.count("add_voice") == 0 and em.count("delete_voice") == 0  # the account is only read


def test_apply_by_label_and_by_file_and_the_owners_see_them_at_once(account, tmp_path,
                                                                   django_capture_on_commit_callbacks):
    _, ids = account
    mum, grandpa = UserFactory(email="mum@example.com"), UserFactory(email="grandpa@example.com")
    mum_client, grandpa_client = token_client(mum), token_client(grandpa)
    # Both lists cached before the import: the import must bump their versions.
    assert "Mum's voice" not in {v["name"] for v in mum_client.get("/api/v1/tts/voices").json()["results"]}
    grandpa_client.get("/api/v1/tts/voices")

    with django_capture_on_commit_callbacks(execute=True):
        out = run("--label", "owner", "--map", map_file(tmp_path, [(ids["mapped"], "grandpa@example.com")]),
                  "--apply")
    assert "2 created, 0 skipped, 1 unmapped, 1 unknown owner" in out

    mine = Voice.objects.get(provider_voice_id=ids["labelled"])
    assert (mine.owner, mine.name, mine.description, mine.language, mine.visibility, mine.status) == (
        mum, "Mum's voice", "bedtime", "en", "private", "completed")
    assert mine.consent_attested_by is None and "Imported" in mine.consent_statement
    grandpas = Voice.objects.get(provider_voice_id=ids["mapped"])
    assert (grandpas.owner, grandpas.category) == (grandpa, "generated")
    assert not Voice.objects.filter(provider_voice_id__in=[ids["nobody"], ids["stranger"]]).exists()
    # A ready voice gets its preview clip, as a clone does when it completes.
    assert set(SpeechJob.objects.filter(purpose="preview").values_list("voice_id", flat=True)) == {
        mine.pk, grandpas.pk}

    names = {v["name"]: v for v in mum_client.get("/api/v1/tts/voices").json()["results"]}
    assert names["Mum's voice"]["is_mine"] is True
    assert "Grandpa" not in names
    assert "Grandpa" in {v["name"] for v in grandpa_client.get("/api/v1/tts/voices").json()["results"]}


def test_a_second_run_creates_nothing(account, tmp_path):
    _, ids = account
    UserFactory(email="mum@example.com")
    run("--label", "owner", "--apply")
    assert "0 would create, 1 skipped" in run("--label", "owner")
    out = run("--label", "owner", "--apply")
    assert "0 created, 1 skipped" in out and ids["labelled"] in out.split("skipped")[1]
    assert Voice.objects.count() == 1


def test_a_voice_deleted_from_the_library_is_not_imported_again(account):
    _, ids = account
    UserFactory(email="mum@example.com")
    run("--label", "owner", "--apply")
    Voice.objects.update(deleted_at="2026-01-01T00:00:00Z")
    assert "0 created, 1 skipped" in run("--label", "owner", "--apply")


def test_the_map_wins_over_the_label_and_names_voices_the_account_lacks(account, tmp_path):
    _, ids = account
    UserFactory(email="mum@example.com")
    dad = UserFactory(email="dad@example.com")
    out = run("--label", "owner", "--apply",
              "--map", map_file(tmp_path, [(ids["labelled"], "DAD@example.com"), ("gone-voice-id", "dad@example.com")]))
    assert Voice.objects.get(provider_voice_id=ids["labelled"]).owner == dad
    assert "1 not in the account" in out and "gone-voice-id" in out


def test_a_voice_still_processing_at_the_provider_is_imported_processing_and_polled(
        elevenlabs_settings, django_capture_on_commit_callbacks):
    em = elevenlabs_settings
    pending = em.add_voice("New", labels={"owner": "mum@example.com"}, requires_verification=True)
    UserFactory(email="mum@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        run("--label", "owner", "--apply")
    voice = Voice.objects.get(provider_voice_id=pending)
    assert voice.status == "processing" and voice.sync_deadline is not None
    assert get_redis_connection("default").sismember(PENDING_SET, str(voice.pk))


def test_a_professional_voice_still_training_gets_the_professional_deadline(elevenlabs_settings):
    from datetime import timedelta

    from django.utils import timezone

    em = elevenlabs_settings
    training = em.add_voice("Pro", category="professional", labels={"owner": "mum@example.com"},
                            fine_tuning_state={})
    UserFactory(email="mum@example.com")
    run("--label", "owner", "--apply")
    voice = Voice.objects.get(provider_voice_id=training)
    assert voice.status == "processing"
    assert voice.sync_deadline > timezone.now() + timedelta(days=6)


def test_an_inactive_account_is_an_unknown_owner(account):
    UserFactory(email="mum@example.com", is_active=False)
    assert "0 created, 0 skipped, 2 unmapped, 2 unknown owner" in run("--label", "owner", "--apply")
    assert not Voice.objects.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ("voice,email\nabc,a@example.com\n", "first row must be provider_voice_id,owner_email"),
        ("provider_voice_id,owner_email\nabc\n", "line 2: expected 2 columns"),
        ("provider_voice_id,owner_email\nabc,not-an-email\n", "not an email address"),
        ("provider_voice_id,owner_email\nabc,a@example.com\nabc,b@example.com\n", "mapped to two owners"),
    ],
)
def test_a_bad_map_file_is_refused_before_anything_is_read(account, tmp_path, content, message):
    path = tmp_path / "map.csv"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("--map", str(path), "--apply")
    assert not Voice.objects.exists()


def test_an_owner_source_is_required_and_a_missing_file_is_named(account, tmp_path):
    with pytest.raises(CommandError, match="--map FILE and/or --label KEY"):
        run("--apply")
    with pytest.raises(CommandError, match="missing.csv"):
        run("--map", str(tmp_path / "missing.csv"))


def test_a_provider_outage_is_a_clear_command_error(account):
    em, _ = account
    em.fail("search_voices", 503, times=1)
    with pytest.raises(CommandError, match="could not list the account's voices"):
        run("--label", "owner", "--apply")
    assert not Voice.objects.exists()


def test_the_local_provider_account_can_be_imported_too(auth_client, user, settings):
    from tts.providers import SampleFile, get_provider
    from tests.audio_samples import speech_wav_bytes

    made = get_provider("local").clone_voice(name="Made elsewhere", samples=[
        SampleFile("a.wav", speech_wav_bytes(), "audio/wav")], labels={"language": "en"})
    with pytest.raises(CommandError):
        run("--provider", "local")
    path = settings.MEDIA_ROOT / "local-map.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"provider_voice_id,owner_email\n{made.provider_voice_id},{user.email}\n")
    assert "1 created" in run("--provider", "local", "--map", str(path), "--apply")
    assert User.objects.get(pk=user.pk).voices.get().provider == "local"
