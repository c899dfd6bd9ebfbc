from django.urls import path

from accounts import apis, sso_apis, team_apis

auth_urlpatterns = [
    path("register", apis.RegisterApi.as_view(), name="auth-register"),
    path("login", apis.LoginApi.as_view(), name="auth-login"),
    path("refresh", apis.RefreshApi.as_view(), name="auth-refresh"),
    path("logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path("me", apis.MeApi.as_view(), name="auth-me"),
    path("change-password", apis.ChangePasswordApi.as_view(), name="auth-change-password"),
    path("generate-api-key", apis.GenerateApiKeyApi.as_view(), name="auth-generate-api-key"),
    path("api-keys", apis.ApiKeyListApi.as_view(), name="auth-api-keys"),
    path("api-keys/<str:key_id>", apis.ApiKeyRevokeApi.as_view(), name="auth-api-key-revoke"),
    path("sso/providers", sso_apis.SsoProvidersApi.as_view(), name="auth-sso-providers"),
    path("sso/login", sso_apis.SsoLoginApi.as_view(), name="auth-sso-login"),
    path("sso/callback", sso_apis.SsoCallbackApi.as_view(), name="auth-sso-callback"),
    path("sso/token", sso_apis.SsoTokenApi.as_view(), name="auth-sso-token"),
]

user_urlpatterns = [
    path("profile", apis.ProfileApi.as_view(), name="users-profile"),
    path("preferences", apis.PreferencesApi.as_view(), name="users-preferences"),
    path("account", apis.AccountApi.as_view(), name="users-account"),
]

team_urlpatterns = [
    path("teams", team_apis.TeamListApi.as_view(), name="teams"),
    path("teams/<str:team_id>", team_apis.TeamDetailApi.as_view(), name="team-detail"),
    path("teams/<str:team_id>/members", team_apis.TeamMemberListApi.as_view(), name="team-members"),
    path("teams/<str:team_id>/members/<str:user_id>", team_apis.TeamMemberDetailApi.as_view(), name="team-member"),
    path("teams/<str:team_id>/invitations", team_apis.TeamInvitationListApi.as_view(), name="team-invitations"),
    path("teams/<str:team_id>/invitations/<str:invitation_id>", team_apis.TeamInvitationDetailApi.as_view(),
         name="team-invitation"),
    path("invitations", team_apis.MyInvitationListApi.as_view(), name="invitations"),
    path("invitations/<str:invitation_id>/accept", team_apis.InvitationAcceptApi.as_view(), name="invitation-accept"),
    path("invitations/<str:invitation_id>/decline", team_apis.InvitationDeclineApi.as_view(),
         name="invitation-decline"),
]
