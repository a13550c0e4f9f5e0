"""Websocket listeners for `make load`: one socket per token on /ws/events/, held for the run,
reconnecting if dropped; prints a JSON summary (connected, events, drops, errors) at the end.

    python -m tests.load.listeners --port 8000 --fixtures F --seconds 180
"""

import argparse
import asyncio
import json
import time

import websockets


async def listen(port: int, key: str, until: float, stats: dict) -> None:
    while time.monotonic() < until:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/events/", subprotocols=["token", key],
                                          open_timeout=10) as socket:
                stats["connected"] += 1
                while time.monotonic() < until:
                    try:
                        message = json.loads(await asyncio.wait_for(socket.recv(), max(0.1, until - time.monotonic())))
                    except asyncio.TimeoutError:
                        return
                    stats["events"][message["type"]] = stats["events"].get(message["type"], 0) + 1
        except websockets.ConnectionClosed as closed:
            stats["drops"].append(closed.rcvd.code if closed.rcvd else None)
        except (OSError, websockets.InvalidHandshake) as exc:
            stats["errors"].append(repr(exc))
            await asyncio.sleep(1)


async def main_async(args) -> dict:
    fixtures = json.loads(open(args.fixtures).read())
    keys = [key for _, key in fixtures["tokens"]]
    stats = {"sockets": len(keys), "connected": 0, "events": {}, "drops": [], "errors": []}
    until = time.monotonic() + args.seconds
    await asyncio.gather(*(listen(args.port, key, until, stats) for key in keys))
    return stats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fixtures", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    print(json.dumps(asyncio.run(main_async(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
