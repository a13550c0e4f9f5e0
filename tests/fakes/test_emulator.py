"""The ElevenLabs emulator itself: the contract's behaviour, its traps, the test controls, and
every JSON body checked against ElevenLabs' official response schemas."""

import base64
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import httpx
import pytest

from tests.fakes import elevenlabs as el
from tests.fakes.elevenlabs import ElevenLabsEmulator
from tests.fakes.fixtures import SUCCESS_SCHEMAS, schema_violations

pytestmark = pytest.mark.usefixtures("elevenlabs_validated")

ROOT = Path(__file__).resolve().parents[2]
RACHEL = "21m00Tcm4TlvDq8ikWAM"


@pytest.fixture
def emulator(elevenlabs_validated: ElevenLabsEmulator) -> ElevenLabsEmulator:
    return elevenlabs_validated


@pytest.fixture
def http(emulator: ElevenLabsEmulator):
    with httpx.Client(base_url=emulator.base_url, headers={"xi-api-key": emulator.api_key}, timeout=5) as client:
        yield client


def tts(http: httpx.Client, voice_id: str = RACHEL, timestamps: bool = False, output_format: str | None = None,
        **body) -> httpx.Response:
    path = f"/v1/text-to-speech/{voice_id}" + ("/with-timestamps" if timestamps else "")
    params = {"output_format": output_format} if output_format else None
    return http.post(path, params=params, json={"text": "Hello", **body})


def detail(response: httpx.Response) -> dict:
    return response.json()["detail"]


def decoded_seconds(audio: bytes) -> float:
    with av.open(io.BytesIO(audio)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


# --- the official schemas -------------------------------------------------------------------------
def test_every_endpoint_and_error_body_matches_the_official_schemas(emulator, http):
    emulator.account.clone_requires_verification = True
    clone = http.post("/v1/voices/add", data={"name": "Mom", "labels": '{"language": "ko"}'},
                      files=[("files", ("a.wav", b"RIFF....", "audio/wav"))])
    voice_id = clone.json()["voice_id"]
    emulator.set_category(voice_id, "professional")
    emulator.set_fine_tuning_state(voice_id, "eleven_multilingual_v2", "fine_tuning")
    http.get(f"/v1/voices/{voice_id}")
    http.get(f"/v1/voices/{RACHEL}")
    http.get("/v2/voices")
    http.get("/v2/voices", params={"voice_type": "default", "page_size": 100, "include_total_count": "false"})
    http.get("/v1/voices")
    http.get("/v1/user/subscription")
    tts(http)
    tts(http, timestamps=True)
    http.delete(f"/v1/voices/{voice_id}")
    # Errors: auth, not found, validation, limits, faults, routing.
    http.get("/v1/voices/nope", headers={"xi-api-key": "wrong"})
    http.get("/v1/user/subscription", headers={"xi-api-key": ""})
    http.get("/v1/voices/nope")
    http.delete("/v1/voices/nope")
    http.post("/v1/voices/add", files=[("files", ("a.wav", b"x", "audio/wav"))])
    http.get("/v2/voices", params={"page_size": 101})
    tts(http, "nope")
    tts(http, text="x" * 10_001)
    tts(http, language_code="ko")
    tts(http, timestamps=True, output_format="mp3_1_1")
    emulator.account.voice_limit = 0
    http.post("/v1/voices/add", data={"name": "Dad"}, files=[("files", ("a.wav", b"x", "audio/wav"))])
    emulator.account.character_limit = 0
    tts(http)
    emulator.fail(el.TTS, 429, code="too_many_concurrent_requests", retry_after=1)
    tts(http)
    emulator.fail(el.SEARCH_VOICES, 503)
    http.get("/v2/voices")
    emulator.fail(el.GET_VOICE, 422, message="bad")
    http.get(f"/v1/voices/{RACHEL}")
    http.get("/v9/nowhere")
    http.put("/v1/voices/add")

    answered = {(r.endpoint, r.status) for r in emulator.requests}
    assert {(endpoint, 200) for endpoint in SUCCESS_SCHEMAS} <= answered
    assert {401, 404, 400, 422, 429, 503, 405}.issubset({status for _, status in answered})
    assert schema_violations(emulator) == []


def test_schemas_catch_a_wrong_body(emulator, http):
    http.get("/v1/user/subscription")
    emulator.requests[-1].response_json.pop("tier")
    assert schema_violations(emulator) == ["GET /v1/user/subscription -> 200 (subscription_response): "
                                           ": 'tier' is a required property"]
    emulator.reset()


def test_error_bodies_carry_code_and_legacy_status(http):
    body = detail(http.get("/v1/voices/nope"))
    assert body["code"] == body["status"] == "voice_not_found"
    assert body["type"] and body["request_id"] and "nope" in body["message"]


# --- auth and routing ----------------------------------------------------------------------------
def test_api_key_is_checked(http):
    wrong = http.get("/v1/user/subscription", headers={"xi-api-key": "sk_wrong"})
    missing = http.get("/v1/user/subscription", headers={"xi-api-key": ""})
    assert (wrong.status_code, detail(wrong)["code"]) == (401, "invalid_api_key")
    assert (missing.status_code, detail(missing)["code"]) == (401, "needs_authorization")


def test_unknown_routes_answer_like_fastapi(http):
    assert (http.get("/v1/nothing").status_code, http.get("/v1/nothing").json()) == (404, {"detail": "Not Found"})
    assert http.patch("/v1/user/subscription").json() == {"detail": "Method Not Allowed"}


# --- clone -----------------------------------------------------------------------------------------
def test_clone_stores_fields_and_samples(emulator, http):
    wav = b"RIFF" + bytes(range(256)) * 4
    response = http.post(
        "/v1/voices/add",
        data={"name": "Mom", "description": "bedtime", "labels": '{"gender": "female"}',
              "remove_background_noise": "true"},
        files=[("files", ("a.wav", wav, "audio/wav")), ("files", ("b.mp3", b"\r\n--x\r\n", "audio/mpeg"))],
    )
    assert response.status_code == 200
    assert response.json()["requires_verification"] is False
    voice = emulator.voice(response.json()["voice_id"])
    assert (voice["name"], voice["description"], voice["labels"], voice["category"]) == (
        "Mom", "bedtime", {"gender": "female"}, "cloned")
    assert [(s["file_name"], s["mime_type"], s["size_bytes"]) for s in voice["samples"]] == [
        ("a.wav", "audio/wav", len(wav)), ("b.mp3", "audio/mpeg", 7)]


def test_a_clone_can_pass_verification_a_while_after_it_was_added(emulator, http):
    emulator.account.clone_ready_after = 0.3
    response = http.post("/v1/voices/add", data={"name": "Mom"}, files=[("files", ("a.wav", b"RIFF", "audio/wav"))])
    assert response.json()["requires_verification"] is True
    voice_id = response.json()["voice_id"]
    assert http.get(f"/v1/voices/{voice_id}").json()["voice_verification"]["is_verified"] is False
    time.sleep(0.35)
    assert http.get(f"/v1/voices/{voice_id}").json()["voice_verification"]["is_verified"] is True


def test_clone_without_form_fields_is_a_fastapi_422(http):
    # What the SDK's own retry sends: the files again, but not the name.
    response = http.post("/v1/voices/add", files=[("files", ("a.wav", b"x", "audio/wav"))])
    assert response.status_code == 422
    assert response.json() == {"detail": [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}]}


def test_clone_needs_files_and_valid_labels(http):
    response = http.post("/v1/voices/add", data={"name": "Mom", "labels": "not json"})
    assert [e["loc"] for e in detail(response)] == [["body", "files"], ["body", "labels"]]


def test_clone_respects_the_voice_limit_and_the_plan(emulator, http):
    emulator.account.voice_limit = 1
    emulator.add_voice("Existing")
    files = [("files", ("a.wav", b"x", "audio/wav"))]
    full = http.post("/v1/voices/add", data={"name": "Mom"}, files=files)
    assert (full.status_code, detail(full)["code"]) == (400, "voice_limit_reached")
    emulator.account.can_clone = False
    denied = http.post("/v1/voices/add", data={"name": "Mom"}, files=files)
    assert (denied.status_code, detail(denied)["code"]) == (403, "can_not_use_instant_voice_cloning")


# --- voices ----------------------------------------------------------------------------------------
def test_get_and_delete_voice(emulator, http):
    voice_id = emulator.add_voice("Mom")
    assert http.get(f"/v1/voices/{voice_id}").json()["name"] == "Mom"
    assert http.delete(f"/v1/voices/{voice_id}").json() == {"status": "ok"}
    gone = http.get(f"/v1/voices/{voice_id}")
    assert (gone.status_code, detail(gone)["code"]) == (404, "voice_not_found")


def test_v2_voices_pages_at_10_by_default(emulator, http):
    for i in range(15):
        emulator.add_voice(f"Voice {i}")
    seen, token, pages = [], None, 0
    while True:
        page = http.get("/v2/voices", params={"next_page_token": token} if token else None).json()
        pages += 1
        assert len(page["voices"]) <= 10 and page["total_count"] == 27
        seen += [v["voice_id"] for v in page["voices"]]
        if not page["has_more"]:
            assert page["next_page_token"] is None
            break
        token = page["next_page_token"]
    assert pages == 3 and len(seen) == len(set(seen)) == 27


def test_v2_voices_filters(emulator, http):
    ids = [emulator.add_voice(f"Kid {i}", labels={"accent": "busan"}) for i in range(3)]
    pro = emulator.add_voice("Pro", category="professional")

    def listed(**params) -> list[str]:
        return [v["voice_id"] for v in http.get("/v2/voices", params={"page_size": 100, **params}).json()["voices"]]

    assert listed(voice_ids=[ids[0], pro, "nope"]) == [ids[0], pro]
    assert len(listed(voice_type="default")) == 12
    assert listed(voice_type="personal") == [*ids, pro]
    assert listed(category="professional") == [pro]
    assert listed(search="BUSAN") == ids
    assert listed(voice_type="community") == []
    names = [v["name"] for v in http.get("/v2/voices", params={"page_size": 100, "sort": "name"}).json()["voices"]]
    assert names == sorted(names, key=str.lower)


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"page_size": 101}, ["query", "page_size"]),
        ({"page_size": 0}, ["query", "page_size"]),
        ({"page_size": "ten"}, ["query", "page_size"]),
        ({"voice_ids": [f"v{i}" for i in range(101)]}, ["query", "voice_ids"]),
        ({"voice_type": "famous"}, ["query", "voice_type"]),
        ({"next_page_token": "garbage"}, ["query", "next_page_token"]),
    ],
)
def test_v2_voices_validation(http, params, loc):
    response = http.get("/v2/voices", params=params)
    assert response.status_code == 422
    assert [e["loc"] for e in detail(response)] == [loc]


def test_v1_voices_lists_everything(emulator, http):
    emulator.add_voice("Mom")
    assert len(http.get("/v1/voices").json()["voices"]) == 13


def test_subscription_reflects_the_account(emulator, http):
    emulator.add_voice("Mom")
    emulator.account.character_count = 7
    body = http.get("/v1/user/subscription").json()
    assert (body["tier"], body["status"], body["character_count"], body["character_limit"]) == (
        "creator", "active", 7, 100_000)
    assert (body["voice_slots_used"], body["voice_limit"], body["can_use_instant_voice_cloning"]) == (1, 30, True)
    assert body["next_character_count_reset_unix"] > time.time()


def test_voice_state_helpers(emulator):
    voice_id = emulator.add_voice("Pro")
    emulator.set_category(voice_id, "professional")
    emulator.set_fine_tuning_state(voice_id, "eleven_multilingual_v2", "fine_tuned")
    emulator.set_verification(voice_id, requires_verification=True, is_verified=True)
    voice = emulator.voice(voice_id)
    assert voice["category"] == "professional"
    assert voice["fine_tuning"]["state"] == {"eleven_multilingual_v2": "fine_tuned"}
    assert voice["voice_verification"]["requires_verification"] and voice["voice_verification"]["is_verified"]
    emulator.remove_voice(voice_id)
    assert emulator.voice(voice_id) is None and voice_id not in emulator.voice_ids()


# --- text to speech --------------------------------------------------------------------------------
def test_tts_returns_real_mp3_sized_by_the_text(emulator, http):
    text = "The moon rose over the quiet forest."
    response = tts(http, text=text)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    assert decoded_seconds(response.content) == pytest.approx(len(text) * el.SECONDS_PER_CHARACTER, abs=0.03)
    headers = response.headers
    assert headers["character-cost"] == str(len(text))
    assert headers["request-id"] and headers["history-item-id"]
    assert (headers["current-concurrent-requests"], headers["maximum-concurrent-requests"]) == ("1", "5")
    assert emulator.account.character_count == len(text)


def test_tts_duration_is_capped(http):
    response = tts(http, text="a" * 1000, output_format="wav_8000")
    assert decoded_seconds(response.content) == pytest.approx(el.MAX_AUDIO_SECONDS, abs=0.03)


def test_with_timestamps_alignment_matches_the_audio(http):
    text = "Sleep well, little one."
    body = tts(http, timestamps=True, text=text).json()
    alignment = body["alignment"]
    seconds = decoded_seconds(base64.b64decode(body["audio_base64"]))
    assert "".join(alignment["characters"]) == text
    starts, ends = alignment["character_start_times_seconds"], alignment["character_end_times_seconds"]
    assert starts[0] == 0 and ends[-1] == pytest.approx(seconds, abs=0.002)
    assert all(s < e for s, e in zip(starts, ends)) and starts == sorted(starts)


@pytest.mark.parametrize("model", ["eleven_multilingual_v2", "eleven_v3", "eleven_turbo_v2"])
def test_language_code_is_rejected_by_models_without_it(http, model):
    response = tts(http, model_id=model, language_code="ko")
    assert (response.status_code, detail(response)["code"]) == (400, "unsupported_language_code")
    assert model in detail(response)["message"]


@pytest.mark.parametrize("model", sorted(el.LANGUAGE_CODE_MODELS))
def test_language_code_is_accepted_by_v2_5_models(http, model):
    assert tts(http, model_id=model, language_code="ko").status_code == 200
    assert tts(http, model_id=model, language_code="fa").status_code == 400


@pytest.mark.parametrize(("model", "limit"), [("eleven_multilingual_v2", 10_000), ("eleven_v3", 5_000)])
def test_text_over_the_model_limit(http, model, limit):
    response = tts(http, model_id=model, text="a" * (limit + 1))
    assert (response.status_code, detail(response)["code"]) == (400, "max_character_limit_exceeded")


def test_character_quota_is_a_401(emulator, http):
    emulator.account.character_limit = 10
    assert tts(http, text="0123456789").status_code == 200
    over = tts(http, text="x")
    assert (over.status_code, detail(over)["code"]) == (401, "quota_exceeded")
    assert "0 credits remaining" in detail(over)["message"]


def test_tts_validation_and_lookup(emulator, http):
    assert tts(http, "nope").status_code == 404
    assert http.post(f"/v1/text-to-speech/{RACHEL}", json={}).json()["detail"][0]["loc"] == ["body", "text"]
    assert tts(http, output_format="mp3_1_1").json()["detail"][0]["loc"] == ["query", "output_format"]
    assert tts(http, previous_request_ids=["a", "b", "c", "d"]).status_code == 422
    assert detail(tts(http, model_id="eleven_imaginary"))["code"] == "model_not_found"
    unverified = emulator.add_voice("New", requires_verification=True)
    assert detail(tts(http, unverified))["code"] == "voice_not_verified"


@pytest.mark.parametrize(
    ("output_format", "content_type"),
    [("wav_16000", "audio/wav"), ("pcm_22050", "audio/pcm"), ("ulaw_8000", "audio/basic"),
     ("opus_48000_32", "audio/ogg"), ("mp3_22050_32", "audio/mpeg")],
)
def test_output_formats(http, output_format, content_type):
    response = tts(http, output_format=output_format, text="Hello")
    assert response.headers["content-type"] == content_type
    if output_format.startswith(("wav", "opus", "mp3")):
        assert decoded_seconds(response.content) == pytest.approx(el.audio_seconds("Hello"), abs=0.03)


# --- fault injection, latency, concurrency, log ---------------------------------------------------
def test_fail_times_and_retry_after(emulator, http):
    emulator.fail(el.TTS, 429, code="too_many_concurrent_requests", times=2, retry_after=1)
    first, second, third = tts(http), tts(http), tts(http)
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 200]
    assert first.headers["retry-after"] == "1"
    assert detail(first)["code"] == detail(first)["status"] == "too_many_concurrent_requests"


def test_fail_until_cleared_any_endpoint_and_verbatim_bodies(emulator, http):
    emulator.fail("*", 503, times=None)
    assert http.get("/v1/user/subscription").status_code == 503
    assert http.get("/v1/voices").status_code == 503
    emulator.clear_faults()
    assert http.get("/v1/voices").status_code == 200
    emulator.fail(el.GET_VOICE, 500, body="<html>oops</html>")
    assert http.get(f"/v1/voices/{RACHEL}").text == "<html>oops</html>"
    with pytest.raises(ValueError):
        emulator.fail("nonsense")


def test_fail_with_a_probability_hits_about_that_share(emulator, http):
    emulator.seed_faults(7)
    emulator.fail(el.SUBSCRIPTION, 429, code="system_busy", times=None, probability=0.2)
    statuses = [http.get("/v1/user/subscription").status_code for _ in range(200)]
    assert set(statuses) == {200, 429}
    assert 20 <= statuses.count(429) <= 60  # 40 expected; a fixed seed makes it repeatable
    emulator.seed_faults(7)
    assert [http.get("/v1/user/subscription").status_code for _ in range(200)] == statuses
    with pytest.raises(ValueError):
        emulator.fail(el.SUBSCRIPTION, probability=0)


def test_fail_by_disconnecting(emulator, http):
    emulator.fail(el.SUBSCRIPTION, disconnect=True)
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/v1/user/subscription")
    assert http.get("/v1/user/subscription").status_code == 200


def test_latency(emulator, http):
    emulator.set_latency(el.SUBSCRIPTION, 0.2)
    started = time.monotonic()
    http.get("/v1/user/subscription")
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    http.get("/v1/voices")
    assert time.monotonic() - started < 0.2


def parallel(count: int, call) -> list[httpx.Response]:
    """`call()` from `count` threads at once (an httpx client opens a connection per request in flight)."""
    results: list[httpx.Response] = []
    barrier = threading.Barrier(count)

    def run() -> None:
        barrier.wait()
        results.append(call())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrency_limit_answers_429_beyond_the_cap(emulator, http):
    emulator.set_concurrency_limit(2)
    emulator.set_latency(el.TTS, 0.2)
    emulator.set_latency(el.SUBSCRIPTION, 0.2)

    speech = parallel(4, lambda: tts(http, text="Hi"))
    others = parallel(4, lambda: http.get("/v1/user/subscription"))

    assert sorted(r.status_code for r in speech) == [200, 200, 429, 429]
    assert {detail(r)["code"] for r in speech if r.status_code == 429} == {"too_many_concurrent_requests"}
    assert {r.status_code for r in others} == {200}  # the cap is on speech, like the plans'
    # The rejected requests were in flight with the two admitted ones, if only for an instant.
    assert emulator.max_tts_in_flight >= 3 and emulator.max_in_flight == 4
    assert emulator.in_flight == 0


def test_request_log(emulator, http):
    http.get(f"/v1/voices/{RACHEL}")
    http.get(f"/v1/voices/{RACHEL}")
    http.get("/v2/voices", params={"voice_ids": ["a", "b"]})
    assert emulator.count(el.GET_VOICE) == 2 and emulator.count(el.SEARCH_VOICES) == 1
    assert emulator.count(method="GET", path=f"/v1/voices/{RACHEL}") == 2
    assert emulator.counts == {el.GET_VOICE: 2, el.SEARCH_VOICES: 1}
    assert emulator.path_counts == {f"GET /v1/voices/{RACHEL}": 2, "GET /v2/voices": 1}
    assert emulator.last_request(el.SEARCH_VOICES).query["voice_ids"] == ["a", "b"]
    assert emulator.count() == 3 and emulator.max_in_flight == 1


def test_reset_restores_a_fresh_account_and_drops_sleeping_requests(emulator, http):
    voice_id = emulator.add_voice("Mom")
    emulator.account.voice_limit = 0
    emulator.fail(el.GET_VOICE, 500, times=None)
    emulator.set_latency(el.SUBSCRIPTION, 5)
    sleeper = threading.Thread(target=lambda: pytest.raises(httpx.HTTPError, http.get, "/v1/user/subscription"))
    sleeper.start()
    while emulator.in_flight == 0:
        time.sleep(0.01)

    started = time.monotonic()
    emulator.reset()
    sleeper.join()

    assert time.monotonic() - started < 1
    assert emulator.voice(voice_id) is None and len(emulator.voice_ids("premade")) == 12
    assert emulator.account.voice_limit == 30
    assert emulator.count() == 0 and emulator.in_flight == 0 and emulator.max_in_flight == 0
    assert http.get(f"/v1/voices/{RACHEL}").status_code == 200
    assert emulator.in_flight == 0


# --- standalone ------------------------------------------------------------------------------------
def test_standalone_server(tmp_path):
    # Started with SIGINT ignored, as a shell's background job would start it: Ctrl+C must still work.
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.elevenlabs", "--port", "0", "--api-key", "sk_cli"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        lines = [process.stdout.readline() for _ in range(5)]
        assert "export ELEVENLABS_API_KEY=sk_cli\n" in [line.lstrip() for line in lines]
        base_url = next(line.split("=", 1)[1].strip() for line in lines if "ELEVENLABS_BASE_URL=" in line)
        assert httpx.get(f"{base_url}/v1/user/subscription", headers={"xi-api-key": "sk_cli"}).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
