import logging
from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from config.api.errors import InvalidResetToken, ServiceError, TokenNotFound, ValidationFailed

from .cache import bump_user_cache_version
from .events import close_sockets, sessions_group, token_group, user_group
from .models import AccountCleanup, DeviceToken, User, normalize_email
from .password_guard import verify_password

logger = logging.getLogger(__name__)


def _check_password(password: str, user: User | None = None, field: str = "password") -> None:
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed(details={"fields": {field: list(exc.messages)}}) from exc


def _email_taken() -> ValidationFailed:
    return ValidationFailed("An account with this email exists.", details={"fields": {"email": ["Already registered."]}})


def user_signup(*, email: str, password: str, display_name: str = "") -> User:
    email = normalize_email(email)
    if User.objects.filter(email__iexact=email).exists():
        raise _email_taken()
    _check_password(password, User(email=email, display_name=display_name))
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, display_name=display_name)
    except IntegrityError:  # a concurrent signup with the same address won the race
        raise _email_taken() from None


@transaction.atomic
def device_token_create(*, user: User, device_name: str) -> tuple[DeviceToken, str]:
    """A new token for one device; past the per-user limit the least recent device is signed out."""
    limit = settings.REST_KNOX.get("TOKEN_LIMIT_PER_USER")
    if limit:
        keep = list(DeviceToken.objects.filter(user=user).order_by("-created").values_list("pk", flat=True)[: limit - 1])
        evicted = list(DeviceToken.objects.filter(user=user).exclude(pk__in=keep).values_list("pk", flat=True))
        DeviceToken.objects.filter(pk__in=evicted).delete()
        _close_token_sockets(evicted)
    return DeviceToken.objects.create(user=user, device_name=device_name or "unnamed device")


def _close_token_sockets(token_ids: list[UUID]) -> None:
    """Websockets opened with a revoked token are closed (4401) once the revocation commits."""
    if token_ids:
        transaction.on_commit(lambda: close_sockets([token_group(t) for t in token_ids]))


@transaction.atomic
def device_token_revoke(*, user: User, token_id: UUID) -> None:
    deleted, _ = DeviceToken.objects.filter(user=user, pk=token_id).delete()
    if not deleted:
        raise TokenNotFound()
    _close_token_sockets([token_id])


@transaction.atomic
def device_token_revoke_all(*, user: User, keep_token_id: UUID | None = None) -> int:
    qs = DeviceToken.objects.filter(user=user)
    if keep_token_id is not None:
        qs = qs.exclude(pk=keep_token_id)
    token_ids = list(qs.values_list("pk", flat=True))
    DeviceToken.objects.filter(pk__in=token_ids).delete()
    _close_token_sockets(token_ids)
    return len(token_ids)


@transaction.atomic
def user_sign_out_everywhere(*, user: User, keep_token_id: UUID | None = None) -> int:
    """End every device token (but the kept one) and every browser session of the user, and
    close the sockets they opened. Returns how many tokens were revoked."""
    revoked = device_token_revoke_all(user=user, keep_token_id=keep_token_id)
    # A new generation changes the session auth hash: every stored session stops authenticating.
    User.objects.filter(pk=user.pk).update(session_generation=F("session_generation") + 1)
    user.refresh_from_db(fields=["session_generation"])
    transaction.on_commit(lambda: close_sockets([sessions_group(user.pk)]))
    return revoked


def device_token_purge_expired() -> int:
    deleted, _ = DeviceToken.objects.filter(expiry__lt=timezone.now()).delete()
    return deleted


def user_password_change(*, user: User, old_password: str, new_password: str, keep_token_id: UUID | None,
                         request: HttpRequest | None = None) -> None:
    """Change the password; every other device and every browser session is signed out (the
    caller keeps its own token; a session caller re-keys its session in the view).

    `request` feeds the brute-force guard: wrong current passwords count like failed logins."""
    # Outside the transaction: a failed attempt must be recorded, not rolled back.
    if not verify_password(request=request, user=user, password=old_password):
        raise ValidationFailed("The current password is wrong.", details={"fields": {"old_password": ["Wrong password."]}})
    _check_password(new_password, user, field="new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        user_sign_out_everywhere(user=user, keep_token_id=keep_token_id)


def password_reset_request(*, email: str) -> None:
    """Queue a reset mail if the address has an active account. The caller learns nothing either
    way: the mail goes out from a worker, so the answer takes as long for unknown addresses."""
    from django_q.tasks import async_task

    user = User.objects.filter(email__iexact=normalize_email(email), is_active=True).first()
    if user is not None:
        async_task("accounts.tasks.send_password_reset", str(user.pk))


def password_reset_send(*, user_id: UUID) -> None:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = settings.PASSWORD_RESET_URL.format(uid=uid, token=token)
    send_mail(
        subject="Reset your Storybook password",
        message=f"Use this link to choose a new password:\n{link}\n\nuid: {uid}\ntoken: {token}\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )


@transaction.atomic
def password_reset_confirm(*, uid: str, token: str, new_password: str) -> User:
    """Set a new password from a mailed link; every device is signed out."""
    try:
        user = User.objects.select_for_update().get(pk=force_str(urlsafe_base64_decode(uid)), is_active=True)
    except (User.DoesNotExist, ValueError, TypeError, OverflowError, DjangoValidationError):
        user = None
    if user is None or not default_token_generator.check_token(user, token):
        raise InvalidResetToken()
    _check_password(new_password, user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password"])
    user_sign_out_everywhere(user=user)
    return user


def user_update(*, user: User, email: str | None = None, display_name: str | None = None,
                current_password: str | None = None, request: HttpRequest | None = None) -> User:
    """Profile edits. Changing the login email needs the current password, so a stolen token
    alone cannot take the account over (new email, then a password reset); wrong passwords count
    against the brute-force guard like failed logins."""
    fields = []
    if email is not None and normalize_email(email) != user.email:
        if not current_password or not verify_password(request=request, user=user, password=current_password):
            raise ValidationFailed("Changing the email needs the current password.",
                                   details={"fields": {"current_password": ["Wrong or missing password."]}})
        email = normalize_email(email)
        if User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
            raise _email_taken()
        user.email = email
        fields.append("email")
    if display_name is not None and display_name != user.display_name:
        user.display_name = display_name
        fields.append("display_name")
    if fields:
        try:
            with transaction.atomic():
                user.save(update_fields=fields)  # post_save bumps cache_version in this transaction
        except IntegrityError:
            raise _email_taken() from None
    return user


# Steps other apps add to account cleanup (e.g. voices deletes the provider voices). Each is
# called as `step(user=...)` and raises if it could not finish; the cleanup then retries later.
_cleanup_steps: list[Callable[..., None]] = []


def register_account_cleanup_step(step: Callable[..., None]) -> None:
    if step not in _cleanup_steps:
        _cleanup_steps.append(step)


@transaction.atomic
def user_deactivate(*, user: User) -> None:
    """Close the account at once (sign-in stops now); the cleanup task removes its data."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    if locked.is_active:
        locked.is_active = False
        locked.deactivated_at = timezone.now()
        locked.save(update_fields=["is_active", "deactivated_at"])
    # Shared voices of an inactive owner drop out of every list in this same transaction
    # (visibility requires an active owner); cleanup deletes them at the provider later.
    user_sign_out_everywhere(user=locked)
    transaction.on_commit(lambda: close_sockets([user_group(locked.pk)]))
    transaction.on_commit(lambda: account_cleanup_queue(user_id=locked.pk))


def account_cleanup_queue(*, user_id: UUID, attempt: int = 1, delay: timedelta | None = None) -> None:
    from django_q.models import Schedule
    from django_q.tasks import async_task

    if delay is None:
        async_task("accounts.tasks.account_cleanup", str(user_id), attempt)
        return
    Schedule.objects.create(
        name=f"account-cleanup-{user_id}-{attempt}",
        func="accounts.tasks.account_cleanup",
        args=repr((str(user_id), attempt)),
        schedule_type=Schedule.ONCE,
        next_run=timezone.now() + delay,
        repeats=-1,
    )


def account_cleanup(*, user_id: UUID, attempt: int = 1) -> bool:
    """Run every cleanup step; when all succeed delete the user, else retry with backoff.

    Transient provider errors retry for as long as they last. Anything else is logged as an
    error with its traceback and counted; past ACCOUNT_CLEANUP_MAX_ATTEMPTS such failures the
    cleanup stops as `failed` (visible in the admin). Returns True once the user is gone.
    Idempotent: a redelivered task finds less to do.
    """
    user = User.objects.filter(pk=user_id, is_active=False).first()
    if user is None:
        return True  # already removed, or reactivated by an admin
    record, _ = AccountCleanup.objects.get_or_create(user=user)
    if record.state == AccountCleanup.State.FAILED:
        return False  # stopped; an admin's "retry" resets it
    try:
        for step in list(_cleanup_steps):
            step(user=user)
        with transaction.atomic():
            bump_user_cache_version([user.pk])
            user.delete()  # PROTECT refuses while a row still points at the user
        return True
    except ServiceError as exc:
        if not exc.transient:  # e.g. a provider that is not configured: bounded, then the admin
            return _cleanup_failed(record, exc)
        record.attempts += 1
        record.last_error = str(exc)
        record.save(update_fields=["attempts", "last_error", "updated_at"])
        delay = _cleanup_delay(record.attempts)
        logger.warning("account cleanup of %s waits for the provider (%s); retrying in %s", user_id, exc, delay)
        account_cleanup_queue(user_id=user_id, attempt=record.attempts + 1, delay=delay)
        return False
    except Exception as exc:
        return _cleanup_failed(record, exc)


def _cleanup_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, settings.ACCOUNT_CLEANUP_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)))


def _cleanup_failed(record: AccountCleanup, exc: Exception) -> bool:
    record.attempts += 1
    record.failures += 1
    record.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    if record.failures >= settings.ACCOUNT_CLEANUP_MAX_ATTEMPTS:
        record.state = AccountCleanup.State.FAILED
    record.save(update_fields=["attempts", "failures", "last_error", "state", "updated_at"])
    logger.error("account cleanup of %s failed (%s of %s failures)%s", record.user_id, record.failures,
                 settings.ACCOUNT_CLEANUP_MAX_ATTEMPTS,
                 "; stopped, see the admin" if record.state == AccountCleanup.State.FAILED else "", exc_info=exc)
    if record.state != AccountCleanup.State.FAILED:
        account_cleanup_queue(user_id=record.user_id, attempt=record.attempts + 1,
                              delay=_cleanup_delay(record.attempts))
    return False


def account_cleanup_restart(*, user_ids: list[UUID]) -> int:
    """Admin: run stopped cleanups again (after fixing what stopped them)."""
    ids = list(AccountCleanup.objects.filter(user_id__in=user_ids, state=AccountCleanup.State.FAILED)
               .values_list("user_id", flat=True))
    AccountCleanup.objects.filter(user_id__in=ids).update(state=AccountCleanup.State.RETRYING, failures=0)
    for user_id in ids:
        transaction.on_commit(lambda uid=user_id: account_cleanup_queue(user_id=uid))
    return len(ids)
