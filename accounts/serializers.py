"""Account input validation and output shapes (the superset of the seeds' user objects)."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import ApiKey, AuthProvider, User
from chatplatform.api import fields

USERNAME_PATTERN = r"^[A-Za-z0-9_.\-]{3,150}$"

PREFERENCE_DEFAULTS = {
    "theme": "system",
    "language": "en",
    "notifications": True,
}


class UserOutput(serializers.ModelSerializer):
    """A user as seeds 000 and 003 show it (``id`` and ``user_id`` are the same public id)."""

    user_id = serializers.CharField(source="id", read_only=True)
    is_admin = serializers.BooleanField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "user_id", "username", "email", "full_name", "auth_provider",
                  "is_active", "is_admin", "created_at", "updated_at", "last_login"]
        read_only_fields = fields


class UserInfoOutput(serializers.Serializer):
    """Seed 000's ``user_info`` block."""

    user_id = serializers.CharField(source="id")
    username = serializers.CharField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    is_admin = serializers.BooleanField()


class TokenOutput(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()


class AuthOutput(TokenOutput):
    """Register/login response: tokens, ``user_info`` and the user's own fields (superset)."""

    user_info = UserInfoOutput()
    id = serializers.CharField()
    user_id = serializers.CharField()
    username = serializers.CharField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    auth_provider = serializers.CharField()
    is_active = serializers.BooleanField()
    is_admin = serializers.BooleanField()
    created_at = serializers.DateTimeField()


def auth_payload(user: User, tokens) -> dict:
    return {**tokens.as_response(), "user_info": UserInfoOutput(user).data, **UserOutput(user).data}


class RegisterInput(serializers.Serializer):
    username = serializers.RegexField(
        USERNAME_PATTERN, max_length=150,
        error_messages={"invalid": "3-150 characters: letters, digits, '_', '.', '-'."},
    )
    email = serializers.EmailField(max_length=254)
    password = fields.TextField(max_length=128, write_only=True, trim_whitespace=False)
    full_name = fields.TextField(max_length=200, required=False, allow_blank=True, default="")
    auth_provider = serializers.ChoiceField(
        choices=[AuthProvider.LOCAL], required=False, default=AuthProvider.LOCAL,
        error_messages={"invalid_choice": "Only 'local' accounts register with a password; use SSO login for others."},
    )


class LoginInput(serializers.Serializer):
    username = fields.TextField(max_length=254, required=False)
    email = fields.TextField(max_length=254, required=False)
    password = fields.TextField(max_length=128, trim_whitespace=False)

    def validate(self, attrs):
        identifier = attrs.get("username") or attrs.get("email")
        if not identifier:
            raise serializers.ValidationError({"username": ["This field is required (username or email)."]})
        attrs["identifier"] = identifier
        return attrs


class RefreshInput(serializers.Serializer):
    refresh_token = serializers.CharField(required=False, max_length=4096)
    refresh = serializers.CharField(required=False, max_length=4096)

    def validate(self, attrs):
        raw = attrs.get("refresh_token") or attrs.get("refresh")
        if not raw:
            raise serializers.ValidationError({"refresh_token": ["This field is required."]})
        attrs["raw"] = raw
        return attrs


class LogoutInput(serializers.Serializer):
    refresh_token = serializers.CharField(required=False, max_length=4096)


class LogoutOutput(serializers.Serializer):
    message = serializers.CharField()
    user_id = serializers.CharField()
    logged_out_at = serializers.DateTimeField()


class ChangePasswordInput(serializers.Serializer):
    current_password = fields.TextField(max_length=128, trim_whitespace=False)
    new_password = fields.TextField(min_length=8, max_length=128, trim_whitespace=False)


class ChangePasswordOutput(TokenOutput):
    message = serializers.CharField()


class ApiKeyCreateInput(serializers.Serializer):
    name = fields.TextField(max_length=100, required=False, default="default")
    expires_in_days = serializers.IntegerField(min_value=1, max_value=3650, required=False, allow_null=True)


class ApiKeyOutput(serializers.ModelSerializer):
    key_id = serializers.CharField(source="id", read_only=True)
    masked_key = serializers.CharField(source="masked", read_only=True)
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "key_id", "name", "prefix", "masked_key", "is_active",
                  "created_at", "last_used_at", "expires_at", "revoked_at"]
        read_only_fields = fields


class ApiKeyCreatedOutput(ApiKeyOutput):
    api_key = serializers.CharField()
    message = serializers.CharField()

    class Meta(ApiKeyOutput.Meta):
        fields = ["api_key", "message", *ApiKeyOutput.Meta.fields]
        read_only_fields = fields


class ProfileOutput(UserOutput):
    preferences = serializers.SerializerMethodField()

    class Meta(UserOutput.Meta):
        fields = [*UserOutput.Meta.fields, "preferences"]
        read_only_fields = fields

    def get_preferences(self, user: User) -> dict:
        return {**PREFERENCE_DEFAULTS, **(user.preferences or {})}


class ProfileInput(serializers.Serializer):
    """Only these can change; anything else sent (is_staff, id, auth_provider, ...) is ignored."""

    full_name = fields.TextField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False)


class PreferencesSerializer(fields.StrictInput):
    unknown_message = "Unknown preference."

    theme = serializers.ChoiceField(choices=["light", "dark", "system"], required=False)
    language = serializers.RegexField(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$", max_length=12, required=False)
    notifications = serializers.BooleanField(required=False)
    max_tokens = fields.IntegerField(min_value=1, max_value=200_000, required=False)
    temperature = fields.NumberField(min_value=0.0, max_value=2.0, required=False)
    default_model = serializers.CharField(max_length=100, required=False)
    default_provider = serializers.CharField(max_length=50, required=False)
    system_prompt = fields.TextField(max_length=8000, required=False, allow_blank=True)
    timezone = serializers.CharField(max_length=64, required=False)
    use_memories = serializers.BooleanField(
        required=False, help_text="Your memories join the chat context (default: on when you have any).")
    memory_extraction = serializers.BooleanField(
        required=False, help_text="After each reply, durable facts are extracted as memories (default: off).")


class DeleteAccountInput(serializers.Serializer):
    password = fields.TextField(max_length=128, trim_whitespace=False, required=False,
                                help_text="Optional; when sent it must be the current password.")


class MessageOutput(serializers.Serializer):
    message = serializers.CharField()
