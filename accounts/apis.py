"""Thin views: parse with an input serializer, call one service or selector, render."""

from django.contrib.auth import authenticate, logout, update_session_auth_hash
from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.errors import (
    InvalidResetToken,
    NotAuthenticated,
    TokenNotFound,
    TooManyAttempts,
)
from config.api.schema import api_errors

from . import selectors, serializers, services
from .models import DeviceToken
from .password_guard import locked_out


def _token_response(token: DeviceToken, key: str, status_code: int) -> Response:
    data = serializers.TokenOutputSerializer(
        {"token": key, "token_id": token.pk, "device_name": token.device_name, "expiry": token.expiry, "user": token.user}
    ).data
    return Response(data, status=status_code)


def _current_token_id(request: Request):
    return request.auth.pk if isinstance(request.auth, DeviceToken) else None


class AnonymousAuthView(APIView):
    """Doors used before signing in: no credentials read, the per-address `auth` throttle."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_scope = "auth"
    api_tag = "auth"


class SignupView(AnonymousAuthView):
    @extend_schema(operation_id="signup", request=serializers.SignupInputSerializer,
                   responses={201: serializers.TokenOutputSerializer})
    def post(self, request: Request) -> Response:
        data = serializers.SignupInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        user = services.user_signup(email=v["email"], password=v["password"], display_name=v["display_name"])
        token, key = services.device_token_create(user=user, device_name=v["device_name"])
        return _token_response(token, key, status.HTTP_201_CREATED)


class LoginView(AnonymousAuthView):
    @extend_schema(operation_id="login", request=serializers.LoginInputSerializer,
                   responses={200: serializers.TokenOutputSerializer})
    @api_errors(NotAuthenticated, TooManyAttempts)
    def post(self, request: Request) -> Response:
        data = serializers.LoginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        # The brute-force guard (django-axes) sits inside authenticate(): it counts this failure,
        # or refuses a locked (account, address) pair before checking the password at all.
        user = authenticate(request._request, username=v["email"], password=v["password"])
        if user is None:
            if getattr(request._request, "axes_locked_out", False):
                raise locked_out()
            raise NotAuthenticated("Email or password is wrong.")
        # As a session login does: resets the guard's count for this pair, records last_login.
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        token, key = services.device_token_create(user=user, device_name=v["device_name"])
        return _token_response(token, key, status.HTTP_200_OK)


class LogoutView(APIView):
    api_tag = "auth"

    @extend_schema(operation_id="logout", request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        token_id = _current_token_id(request)
        if token_id is not None:
            services.device_token_revoke(user=request.user, token_id=token_id)
        else:
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    api_tag = "auth"

    @extend_schema(operation_id="logout_all", request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        services.user_sign_out_everywhere(user=request.user)
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenListView(APIView):
    api_tag = "auth"

    @extend_schema(operation_id="token_list", responses={200: serializers.DeviceTokenSerializer(many=True)})
    def get(self, request: Request) -> Response:
        tokens = selectors.device_token_list(user=request.user)
        return Response(serializers.DeviceTokenSerializer(tokens, many=True, context={"request": request}).data)


class TokenDetailView(APIView):
    api_tag = "auth"

    @extend_schema(operation_id="token_revoke", responses={204: None})
    @api_errors(TokenNotFound)
    def delete(self, request: Request, token_id) -> Response:
        services.device_token_revoke(user=request.user, token_id=token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    api_tag = "auth"

    @extend_schema(operation_id="password_change", request=serializers.PasswordChangeInputSerializer,
                   responses={204: None})
    @api_errors(TooManyAttempts)
    def post(self, request: Request) -> Response:
        data = serializers.PasswordChangeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        keep_token_id = _current_token_id(request)
        services.user_password_change(
            user=request.user,
            old_password=data.validated_data["old_password"],
            new_password=data.validated_data["new_password"],
            keep_token_id=keep_token_id,
            request=request._request,
        )
        if keep_token_id is None:  # a browser session changed it: that session stays signed in
            update_session_auth_hash(request._request, request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordResetView(AnonymousAuthView):
    @extend_schema(operation_id="password_reset", request=serializers.PasswordResetInputSerializer,
                   responses={202: None})
    def post(self, request: Request) -> Response:
        data = serializers.PasswordResetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_reset_request(email=data.validated_data["email"])
        return Response(status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(AnonymousAuthView):
    @extend_schema(operation_id="password_reset_confirm", request=serializers.PasswordResetConfirmInputSerializer,
                   responses={204: None})
    @api_errors(InvalidResetToken)
    def post(self, request: Request) -> Response:
        data = serializers.PasswordResetConfirmInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_reset_confirm(**data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserMeView(APIView):
    api_tag = "user"

    @extend_schema(operation_id="me_get", responses={200: serializers.UserMeOutputSerializer})
    def get(self, request: Request) -> Response:
        return Response(selectors.user_info(user=request.user, render=serializers.render_user_me))

    def _update(self, request: Request, partial: bool) -> Response:
        data = serializers.UserMeUpdateInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        user = services.user_update(user=request.user, request=request._request, **data.validated_data)
        return Response(serializers.render_user_me(user, selectors.user_usage(user=user)))

    @extend_schema(operation_id="me_replace", request=serializers.UserMeUpdateInputSerializer,
                   responses={200: serializers.UserMeOutputSerializer})
    @api_errors(TooManyAttempts)
    def put(self, request: Request) -> Response:
        return self._update(request, partial=False)

    @extend_schema(operation_id="me_update", request=serializers.UserMeUpdateInputSerializer,
                   responses={200: serializers.UserMeOutputSerializer})
    @api_errors(TooManyAttempts)
    def patch(self, request: Request) -> Response:
        return self._update(request, partial=True)

    @extend_schema(operation_id="me_delete", responses={202: None})
    def delete(self, request: Request) -> Response:
        services.user_deactivate(user=request.user)
        logout(request._request)
        return Response(status=status.HTTP_202_ACCEPTED)


class PingView(APIView):
    """The cheapest authenticated endpoint: the floor the benchmarks compare against."""

    api_tag = "user"

    @extend_schema(operation_id="ping", responses={200: serializers.PingOutputSerializer})
    def get(self, request: Request) -> Response:
        return Response({"ok": True})
