from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm

from .models import AccountCleanup, DeviceToken, User, normalize_email
from .services import account_cleanup_restart


class _NormalizedEmail:
    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])


class EmailUserCreationForm(_NormalizedEmail, UserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class EmailUserChangeForm(_NormalizedEmail, UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = EmailUserChangeForm
    add_form = EmailUserCreationForm
    ordering = ("email",)
    list_display = ("email", "display_name", "is_active", "is_staff", "date_joined")
    list_filter = ("is_active", "is_staff", "is_superuser")
    search_fields = ("email", "display_name")
    readonly_fields = ("id", "date_joined", "last_login", "deactivated_at", "cache_version")
    fieldsets = (
        (None, {"fields": ("id", "email", "password")}),
        ("Profile", {"fields": ("display_name", "monthly_character_quota")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("date_joined", "last_login", "deactivated_at", "cache_version")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(DeviceToken)
class DeviceTokenAdmin(admin.ModelAdmin):
    list_display = ("device_name", "user", "created", "expiry")
    search_fields = ("user__email", "device_name")
    readonly_fields = ("id", "user", "token_key", "created", "expiry")
    exclude = ("digest",)

    def has_add_permission(self, request) -> bool:
        return False  # tokens come from login only


@admin.register(AccountCleanup)
class AccountCleanupAdmin(admin.ModelAdmin):
    """Closed accounts whose data is still being removed; `failed` ones need a look."""

    list_display = ("user", "state", "attempts", "failures", "updated_at")
    list_filter = ("state",)
    search_fields = ("user__email",)
    list_select_related = ("user",)
    readonly_fields = ("user", "state", "attempts", "failures", "last_error", "updated_at")
    ordering = ("-state", "-updated_at")
    actions = ["retry"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Retry the cleanup now")
    def retry(self, request, queryset):
        restarted = account_cleanup_restart(user_ids=list(queryset.values_list("user_id", flat=True)))
        self.message_user(request, f"{restarted} cleanup(s) restarted.", messages.SUCCESS)
