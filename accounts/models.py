import uuid

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac
from knox.models import AbstractAuthToken


def normalize_email(email: str) -> str:
    """The one form of an address (it is the login): trimmed and lower-case everywhere."""
    return email.strip().lower()


def default_monthly_quota() -> int:
    return settings.DEFAULT_MONTHLY_CHARACTER_QUOTA


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra) -> "User":
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> "User":
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create(email, password, **extra)

    def get_by_natural_key(self, email: str) -> "User":
        return self.get(email__iexact=normalize_email(email))


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=100, blank=True)
    monthly_character_quota = models.PositiveIntegerField(default=default_monthly_quota)
    # Part of every per-user cache key; bumped in the same transaction as any change to the
    # user's cached data, so an entry written before the change is never read again.
    cache_version = models.PositiveBigIntegerField(default=1, editable=False)
    # Part of the session auth hash: bumping it ends every browser session of the user at once
    # (logout-all), the way a password change does.
    session_generation = models.PositiveIntegerField(default=0, editable=False)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def _session_hash(self, secret: str | None = None) -> str:
        return salted_hmac("accounts.User.session_hash", f"{self.password}:{self.session_generation}",
                           secret=secret, algorithm="sha256").hexdigest()

    def get_session_auth_hash(self) -> str:
        return self._session_hash()

    def get_session_auth_fallback_hash(self):
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_hash(secret=secret)

    def save(self, *args, **kwargs) -> None:
        # cache_version and session_generation are only ever bumped atomically (UPDATE ... SET
        # v = v + 1). A full save of an instance loaded earlier (an admin form) must not write its
        # stale copy back: that would reuse a cache version or revive sessions logout-all ended.
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in ("cache_version", "session_generation")
            ]
        super().save(*args, **kwargs)


class DeviceToken(AbstractAuthToken):
    """A knox token for one device: hashed at rest, expiring, listed and revoked by id."""

    # knox keys tokens by digest; a separate id lets clients name a device without its digest.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    digest = models.CharField(max_length=128, unique=True)
    device_name = models.CharField(max_length=100, default="unnamed device")

    class Meta:
        indexes = [models.Index(fields=["user", "expiry"])]

    def __str__(self) -> str:
        return f"{self.device_name} ({self.user_id})"


class IdempotencyRecord(models.Model):
    """The first answer to a request sent with an `Idempotency-Key` header, replayed on retries."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        DONE = "done"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "scope", "key"], name="idempotency_key_unique")]
        indexes = [models.Index(fields=["created_at"])]


class AccountCleanup(models.Model):
    """Progress of deleting a closed account's data (provider voices, files, rows).

    Transient provider failures retry with backoff for as long as they last; any other failure
    is counted, and after ACCOUNT_CLEANUP_MAX_ATTEMPTS of them the cleanup stops as `failed`,
    visible in the admin (where it can be retried once the cause is fixed). The row goes with
    the user when the cleanup succeeds.
    """

    class State(models.TextChoices):
        RETRYING = "retrying"
        FAILED = "failed"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cleanup",
                                primary_key=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RETRYING)
    attempts = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0, help_text="Attempts that failed for a non-transient reason.")
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["state", "updated_at"])]

    def __str__(self) -> str:
        return f"cleanup of {self.user_id} ({self.state})"
