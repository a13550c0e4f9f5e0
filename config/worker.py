"""`make worker`: both django-q2 clusters (main and tts) for a worker host, under a process
manager. SIGTERM or SIGINT stops both (each gets SIGTERM on its main pid, then SIGKILL after the
grace period, as `make run` does); either cluster dying stops the other, so the manager restarts
the pair."""

import os
import sys

from config.run import _stop, spawn_clusters, supervise


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not env.get("REDIS_URL"):
        sys.exit("make worker needs REDIS_URL (the embedded Redis is for `make run` only)")
    children = []
    try:
        children = spawn_clusters(env)
        return supervise(children)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children)


if __name__ == "__main__":
    sys.exit(main())
