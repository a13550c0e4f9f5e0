"""django-q2 entry points: take ids, call a service."""

from . import services


def account_cleanup(user_id: str, attempt: int = 1) -> bool:
    return services.account_cleanup(user_id=user_id, attempt=attempt)


def purge_expired_tokens() -> int:
    return services.device_token_purge_expired()


def send_password_reset(user_id: str) -> None:
    services.password_reset_send(user_id=user_id)


def purge_idempotency_records() -> int:
    from .idempotency import purge_idempotency_records as purge

    return purge()
