from django.urls import path

from config.api import converters  # noqa: F401  (registers the <id:...> converter)

from . import apis

urlpatterns = [
    path("auth/signup", apis.SignupView.as_view(), name="auth-signup"),
    path("auth/login", apis.LoginView.as_view(), name="auth-login"),
    path("auth/logout", apis.LogoutView.as_view(), name="auth-logout"),
    path("auth/logout-all", apis.LogoutAllView.as_view(), name="auth-logout-all"),
    path("auth/tokens", apis.TokenListView.as_view(), name="auth-tokens"),
    path("auth/tokens/<id:token_id>", apis.TokenDetailView.as_view(), name="auth-token-detail"),
    path("auth/password/change", apis.PasswordChangeView.as_view(), name="auth-password-change"),
    path("auth/password/reset", apis.PasswordResetView.as_view(), name="auth-password-reset"),
    path("auth/password/reset/confirm", apis.PasswordResetConfirmView.as_view(), name="auth-password-reset-confirm"),
    path("user/me", apis.UserMeView.as_view(), name="user-me"),
    path("ping", apis.PingView.as_view(), name="ping"),
]
