"""Follow a user's event stream: log in, open /ws/events/, print each event as one JSON line as it
arrives, and reconnect with backoff when the connection drops.

    STORYBOOK_PASSWORD=... python -m examples.events --base http://127.0.0.1:8000 --email you@example.com

The password comes from STORYBOOK_PASSWORD or a prompt, never the command line. Progress goes to
stderr, events to stdout. Close codes (README, "Websocket events"): 4401 means the token is no
longer valid, so it logs in again; 4403 (origin), 1008 (flooding) and 1009 (message too big) are
the client's own fault and end it; anything else (a restart, 1011 while Redis is down, a network
error) is retried after a delay that doubles up to --max-delay, with jitter so a fleet of clients
does not reconnect in step. Events are hints: after a reconnect, re-read what you show over REST.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import random
import sys
import urllib.error
import urllib.request

import websockets

FATAL_CLOSE_CODES = {4403, 1008, 1009}
TOKEN_REFUSED = 4401


def log(message: str) -> None:
    print(f"events: {message}", file=sys.stderr, flush=True)


def login(base: str, email: str, password: str, device: str) -> str:
    request = urllib.request.Request(
        f"{base}/api/v1/auth/login", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"email": email, "password": password, "device_name": device}).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["token"]


def backoff(attempt: int, *, base: float, cap: float) -> float:
    """Full jitter: a random delay up to base * 2^attempt, at most cap."""
    return random.uniform(0, min(cap, base * 2 ** attempt))


async def follow(args, password: str) -> int:
    ws_base = "ws" + args.base[len("http"):] if args.base.startswith("http") else args.base
    token, attempt, printed = None, 0, 0
    while True:
        try:
            if token is None:
                token = login(args.base, args.email, password, args.device)
                log("logged in")
            async with websockets.connect(f"{ws_base}/ws/events/", subprotocols=["token", token],
                                          open_timeout=10) as socket:
                async for message in socket:
                    event = json.loads(message)
                    if event.get("type") == "hello":
                        log("connected")
                        attempt = 0  # a working connection resets the backoff
                    print(json.dumps(event), flush=True)
                    printed += 1
                    if args.max_events and printed >= args.max_events:
                        return 0
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            if code in FATAL_CLOSE_CODES:
                log(f"closed with {code}: not retrying")
                return 1
            if code == TOKEN_REFUSED:
                token = None  # revoked or expired: log in again
            log(f"connection closed ({code})")
        except urllib.error.HTTPError as exc:
            if exc.code in (400, 401, 403):
                log(f"login refused ({exc.code}): check the email and password")
                return 1
            log(f"login failed ({exc.code})")
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as exc:
            log(f"cannot connect ({exc.__class__.__name__})")
        delay = backoff(attempt, base=args.min_delay, cap=args.max_delay)
        attempt += 1
        log(f"reconnecting in {delay:.1f}s")
        await asyncio.sleep(delay)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000", help="the service's base URL")
    parser.add_argument("--email", required=True)
    parser.add_argument("--device", default="events example", help="the device name the token is listed under")
    parser.add_argument("--min-delay", type=float, default=0.5, help="first reconnect delay, seconds")
    parser.add_argument("--max-delay", type=float, default=30.0, help="longest reconnect delay, seconds")
    parser.add_argument("--max-events", type=int, default=0, help="stop after this many events (0: never)")
    args = parser.parse_args(argv)
    password = os.environ.get("STORYBOOK_PASSWORD") or getpass.getpass(f"password for {args.email}: ")
    try:
        return asyncio.run(follow(args, password))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
