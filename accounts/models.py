"""Users, login sessions and user API keys."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from chatplatform.api.ids import PublicIdField


class AuthProvider(models.TextChoices):
    LOCAL = "local", "Local password"
    SSO = "sso", "Single sign-on"


class AccountManager(UserManager):
    """Django's manager with case-insensitive natural-key lookup (used by createsuperuser/admin)."""

    def get_by_natural_key(self, username: str):
        return self.get(username__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    id = PublicIdField(prefix="user")
    username = models.CharField(max_length=150, unique=True)
    email = models.EmailField(max_length=254)
    full_name = models.CharField(max_length=200, blank=True, default="")
    auth_provider = models.CharField(
        max_length=20, choices=AuthProvider.choices, default=AuthProvider.LOCAL
    )
    preferences = models.JSONField(default=dict, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AccountManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.username

    @property
    def is_admin(self) -> bool:
        return self.is_staff


class AuthSession(models.Model):
    """One login: every access and refresh token issued for it carries its id (``sid``).

    Logging out revokes the session, so its access tokens die at once, not at expiry.
    """

    id = PublicIdField(prefix="sess")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_sessions")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True, default="")
    ip_address = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.id} ({self.user_id})"


class ApiKey(models.Model):
    """A user's API key. Only a SHA-256 digest is stored; the key is shown once, at creation."""

    id = PublicIdField(prefix="key")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        return f"cpk_{self.prefix}_{'*' * 8}"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class SsoIdentity(models.Model):
    """An identity at an OpenID Connect provider (``iss`` + ``sub``) that signs in as ``user``.

    The pair is the identity, never the email: an email can change or be reused at the provider."""

    id = PublicIdField(prefix="sso")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sso_identities")
    provider = models.CharField(max_length=50, help_text="The configured provider's name when it was linked.")
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    email = models.EmailField(max_length=254, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_unique")]
        verbose_name = "SSO identity"
        verbose_name_plural = "SSO identities"

    def __str__(self) -> str:
        return f"{self.provider}:{self.subject} -> {self.user_id}"


# --- teams ------------------------------------------------------------------------------------


class TeamRole(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


ROLE_RANK = {TeamRole.MEMBER: 1, TeamRole.ADMIN: 2, TeamRole.OWNER: 3}


class Team(models.Model):
    """A group of users sharing chatbots and provider configurations. ``settings`` holds the
    team's limits and budgets (see ``accounts.team_services.TEAM_SETTING_KEYS``)."""

    id = PublicIdField(prefix="team")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True, default="")
    settings = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="teams_created")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    id = PublicIdField(prefix="mem")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="team_memberships")
    role = models.CharField(max_length=10, choices=TeamRole.choices, default=TeamRole.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="team_membership_unique")]
        indexes = [models.Index(fields=["user", "team"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.team_id} ({self.role})"


class InvitationStatus(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"


class TeamInvitation(models.Model):
    """An invitation to join a team, addressed to a user (by username) or to an email address
    (accepted by the account that holds that address)."""

    id = PublicIdField(prefix="inv")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    invitee = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="team_invitations")
    email = models.EmailField(max_length=254, blank=True, default="")
    role = models.CharField(max_length=10, choices=TeamRole.choices, default=TeamRole.MEMBER)
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="team_invitations_sent")
    status = models.CharField(max_length=10, choices=InvitationStatus.choices, default=InvitationStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["team", "invitee"], condition=models.Q(status="pending"),
                                    name="team_invitation_pending_user_unique"),
            models.UniqueConstraint("team", Lower("email"), condition=models.Q(status="pending") & ~models.Q(email=""),
                                    name="team_invitation_pending_email_unique"),
        ]
        indexes = [models.Index(fields=["invitee", "status"]), models.Index(fields=["email", "status"])]

    def __str__(self) -> str:
        return f"{self.team_id} -> {self.invitee_id or self.email} ({self.status})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class RuntimeSetting(models.Model):
    """An operator's override of one runtime setting (``accounts.runtime``): effective in every
    worker without a restart; a setting without a row takes its environment default."""

    key = models.CharField(primary_key=True, max_length=64)
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key}={self.value!r}"
