"""How the project starts web servers: one rule for proxy headers, used by every start path."""

from collections.abc import Mapping


def uvicorn_proxy_args(env: Mapping[str, str]) -> list[str]:
    """uvicorn trusts X-Forwarded-For from loopback by default, which would let any local client
    pick its own address. Proxy headers are honoured only when NUM_PROXIES says a proxy is there
    (FORWARDED_ALLOW_IPS: the proxies' addresses, default loopback)."""
    if int(env.get("NUM_PROXIES") or 0) > 0:
        return ["--proxy-headers", "--forwarded-allow-ips", env.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"]
    return ["--no-proxy-headers"]


# Clients send one small auth message at most; uvicorn's default would buffer 16 MiB per message.
WS_MAX_MESSAGE_BYTES = 64 * 1024


def uvicorn_ws_args() -> list[str]:
    return ["--ws-max-size", str(WS_MAX_MESSAGE_BYTES)]
