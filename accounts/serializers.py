from rest_framework import serializers

from config.api import fields

from .models import DeviceToken, User


class AccountEmailField(fields.EmailField):
    """An account's email as every input takes it: bounded by the column (254), so a longer one
    is a validation error rather than a database error."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", User._meta.get_field("email").max_length)
        super().__init__(**kwargs)


class SignupInputSerializer(serializers.Serializer):
    email = AccountEmailField()
    password = fields.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})
    display_name = fields.CharField(max_length=100, required=False, allow_blank=True, default="")
    device_name = fields.CharField(max_length=100, required=False, default="unnamed device")


class LoginInputSerializer(serializers.Serializer):
    email = AccountEmailField()
    password = fields.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})
    device_name = fields.CharField(max_length=100)


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "display_name", "monthly_character_quota", "date_joined"]
        read_only_fields = fields


class TokenOutputSerializer(serializers.Serializer):
    token = fields.CharField(help_text="Send as `Authorization: Token <token>`. Shown once.")
    token_id = serializers.UUIDField()
    device_name = fields.CharField()
    expiry = serializers.DateTimeField(allow_null=True)
    user = UserSerializer()


class DeviceTokenSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField()

    class Meta:
        model = DeviceToken
        fields = ["id", "device_name", "created", "expiry", "current"]
        read_only_fields = fields

    def get_current(self, obj: DeviceToken) -> bool:
        auth = getattr(self.context.get("request"), "auth", None)
        return isinstance(auth, DeviceToken) and auth.pk == obj.pk


class PasswordChangeInputSerializer(serializers.Serializer):
    old_password = fields.CharField(trim_whitespace=False, style={"input_type": "password"})
    new_password = fields.CharField(trim_whitespace=False, style={"input_type": "password"})


class PasswordResetInputSerializer(serializers.Serializer):
    email = AccountEmailField()


class PasswordResetConfirmInputSerializer(serializers.Serializer):
    uid = fields.CharField()
    token = fields.CharField()
    new_password = fields.CharField(trim_whitespace=False, style={"input_type": "password"})


class UsageSerializer(serializers.Serializer):
    characters_used_this_month = serializers.IntegerField()
    voices = serializers.IntegerField()
    books = serializers.IntegerField()


class UserMeOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = AccountEmailField()
    display_name = fields.CharField()
    monthly_character_quota = serializers.IntegerField()
    date_joined = serializers.DateTimeField()
    usage = UsageSerializer()


class UserMeUpdateInputSerializer(serializers.Serializer):
    email = AccountEmailField()
    display_name = fields.CharField(max_length=100, allow_blank=True)
    current_password = fields.CharField(required=False, write_only=True, trim_whitespace=False,
                                        style={"input_type": "password"}, help_text="Required to change the email.")


def render_user_me(user: User, usage: dict) -> dict:
    """The cached representation of /user/me (plain dict, so it pickles small)."""
    data = UserMeOutputSerializer(
        {
            "id": user.pk,
            "email": user.email,
            "display_name": user.display_name,
            "monthly_character_quota": user.monthly_character_quota,
            "date_joined": user.date_joined,
            "usage": usage,
        }
    ).data
    return {**data, "usage": dict(data["usage"])}


class PingOutputSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
