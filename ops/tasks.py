"""django-q2 entry points: take ids, call a service."""

from . import storage


def clean_storage() -> dict[str, int]:
    return storage.storage_clean()
