"""`make worker`: both django-q2 clusters (main and tts) for a worker host, under a process
manager. SIGTERM or SIGINT stops both (each gets SIGTERM on its main pid, then SIGKILL after the
grace period, as `make run` does); either cluster dying stops the other, so the manager restarts
the pair."""

import os
import signal
import sys
import time

from config.run import _raise_interrupt, _spawn, _stop


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not env.get("REDIS_URL"):
        sys.exit("make worker needs REDIS_URL (the embedded Redis is for `make run` only)")
    env.pop("Q_CLUSTER_NAME", None)
    children = []
    try:
        children = [
            _spawn("worker-main", [sys.executable, "manage.py", "qcluster"], env),
            _spawn("worker-tts", [sys.executable, "manage.py", "qcluster"], {**env, "Q_CLUSTER_NAME": "tts"}),
        ]
        signal.signal(signal.SIGTERM, _raise_interrupt)
        signal.signal(signal.SIGINT, _raise_interrupt)
        while True:
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping", flush=True)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children)


if __name__ == "__main__":
    sys.exit(main())
