"""A ctypes binding to the eSpeak NG shipped by `espeakng-loader` (library + data, no Python API).

eSpeak keeps its voice, parameters and callback in C globals, so the library is initialised once
per process and every call that touches that state holds one process-wide lock.
"""

import ctypes
import os
import threading
from dataclasses import dataclass

import espeakng_loader

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_CHARS_UTF8 = 1
POS_CHARACTER = 1
EE_OK = 0

EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1

PARAM_RATE = 1
PARAM_VOLUME = 2
PARAM_PITCH = 3
PARAM_RANGE = 4

RATE_MIN, RATE_NORMAL, RATE_MAX = 80, 175, 450


class EspeakError(Exception):
    pass


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    # espeak_EVENT from speak_lib.h; the field order and types must match the C layout exactly.
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))


@dataclass(frozen=True)
class WordEvent:
    text_position: int  # 0-based character offset into the synthesized text
    length: int  # in characters
    audio_ms: int


@dataclass(frozen=True)
class Synthesis:
    pcm: bytes  # 16-bit signed little-endian mono
    sample_rate: int
    words: list[WordEvent]

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) // 2 * 1000 // self.sample_rate


class _Engine:
    def __init__(self) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int

        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                                 espeakng_loader.get_data_path().encode(), 0)
        if self.sample_rate <= 0:
            raise EspeakError("espeak_Initialize failed")
        self.lib = lib
        self._chunks: list[bytes] = []
        self._words: list[WordEvent] = []
        # Kept on the instance: C holds only a raw pointer, a collected callback would crash it.
        self._callback = _SynthCallback(self._on_synth)
        lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav, num_samples: int, events) -> int:
        if wav and num_samples > 0:
            self._chunks.append(ctypes.string_at(wav, num_samples * 2))
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == EVENT_WORD:
                self._words.append(WordEvent(event.text_position - 1, event.length, event.audio_position))
            i += 1
        return 0

    def set_voice(self, name: str) -> bool:
        return self.lib.espeak_SetVoiceByName(name.encode()) == EE_OK

    def synthesize(self, text: str, *, voice: str, rate: int, pitch: int, pitch_range: int) -> Synthesis:
        if not self.set_voice(voice):
            raise EspeakError(f"unknown eSpeak voice {voice!r}")
        # Parameters survive a voice change, so every call sets all of them.
        for param, value in ((PARAM_RATE, rate), (PARAM_VOLUME, 100), (PARAM_PITCH, pitch),
                             (PARAM_RANGE, pitch_range)):
            self.lib.espeak_SetParameter(param, value, 0)
        data = text.encode("utf-8") + b"\0"
        self._chunks, self._words = [], []
        status = self.lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
        if status != EE_OK:
            raise EspeakError(f"espeak_Synth failed with status {status}")
        return Synthesis(b"".join(self._chunks), self.sample_rate, self._words)


_lock = threading.Lock()
_engine: _Engine | None = None


def _reset_lock_in_child() -> None:
    # A worker forked while another thread held the lock would otherwise wait on it forever.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_in_child)


def _get_engine() -> _Engine:
    """Call with `_lock` held."""
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def synthesize(text: str, *, voice: str, rate: int = RATE_NORMAL, pitch: int = 50,
               pitch_range: int = 50) -> Synthesis:
    """Speak `text` (UTF-8) with an eSpeak voice name such as "ko" or "en-us+f3".

    `rate` is in words per minute (80-450), `pitch` and `pitch_range` are eSpeak's 0-100 scales."""
    rate = min(max(rate, RATE_MIN), RATE_MAX)
    pitch = min(max(pitch, 0), 100)
    pitch_range = min(max(pitch_range, 0), 100)
    with _lock:
        return _get_engine().synthesize(text, voice=voice, rate=rate, pitch=pitch, pitch_range=pitch_range)


def has_voice(name: str) -> bool:
    """Whether eSpeak knows this voice or language name."""
    with _lock:
        return _get_engine().set_voice(name)
