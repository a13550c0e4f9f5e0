"""The ctypes binding to eSpeak NG, against the real library."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from tts.providers import espeak

pytestmark = pytest.mark.smoke


def test_synthesizes_pcm_at_the_library_sample_rate():
    result = espeak.synthesize("Hello there, little bear.", voice="en-us")

    assert result.sample_rate == 22050
    assert len(result.pcm) % 2 == 0
    assert 800 < result.duration_ms < 4000
    assert any(result.pcm[i:i + 2] != b"\0\0" for i in range(0, len(result.pcm), 2))


def test_word_events_point_at_the_words_in_order():
    text = "Once upon a time"
    result = espeak.synthesize(text, voice="en-us")

    assert [text[e.text_position:e.text_position + e.length] for e in result.words] == text.split()
    audio = [e.audio_ms for e in result.words]
    assert audio == sorted(audio) and audio[0] == 0 and audio[-1] < result.duration_ms


def test_korean_character_positions_count_characters_not_bytes():
    text = "안녕하세요. 오늘은 좋은 날"
    result = espeak.synthesize(text, voice="ko")

    first, second = result.words[:2]
    assert text[first.text_position:first.text_position + first.length] == "안녕하세요"
    assert text[second.text_position:second.text_position + second.length] == "오늘은"


def test_parameters_do_not_leak_between_calls():
    # eSpeak adds a little randomness to its output, so compare durations, not bytes.
    text = "The same words at the same speed."
    before = espeak.synthesize(text, voice="en-us")
    fast = espeak.synthesize(text, voice="en-us", rate=400, pitch=100)
    after = espeak.synthesize(text, voice="en-us")

    assert fast.duration_ms < before.duration_ms * 0.6
    assert abs(after.duration_ms - before.duration_ms) < before.duration_ms * 0.05


def test_rate_changes_the_duration():
    text = "A slow and steady tortoise walked along the road."
    slow = espeak.synthesize(text, voice="en-us", rate=120)
    fast = espeak.synthesize(text, voice="en-us", rate=300)

    assert fast.duration_ms < slow.duration_ms * 0.7


def test_concurrent_threads_get_their_own_audio():
    texts = ["One little duck.", "Two big brown bears went to the market.", "Three.",
             "Four tiny mice ran up the clock and down again."] * 3

    def spoken_words(text: str) -> tuple[list[str], int]:
        result = espeak.synthesize(text, voice="en-us")
        return [text[e.text_position:e.text_position + e.length] for e in result.words], result.duration_ms

    expected = [spoken_words(text) for text in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(spoken_words, texts))

    for (words, duration), (expected_words, expected_duration) in zip(results, expected):
        assert words == expected_words
        assert abs(duration - expected_duration) < expected_duration * 0.05


def test_voice_lookup():
    assert espeak.has_voice("ko") and espeak.has_voice("en-us") and espeak.has_voice("ja")
    assert not espeak.has_voice("xx") and not espeak.has_voice("")
    with pytest.raises(espeak.EspeakError):
        espeak.synthesize("hello", voice="xx")
