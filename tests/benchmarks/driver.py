"""What every Django-side section driver (`tts_jobs.py`, `voice_sync.py`) starts with."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def driver_parser(prog: str) -> argparse.ArgumentParser:
    """The runner passes every driver the emulator's port, where to write its JSON result and
    where to put its processes' logs."""
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--emulator-port", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--log-dir", type=Path, default=ROOT / "var" / "bench")
    return p


def setup_django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    # Not a line per queued task or provider request on the bench's terminal.
    logging.getLogger("django-q").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
