"""The one HTML page this service serves itself: where a password reset mail links to by default
(PASSWORD_RESET_URL). An app that has its own page posts uid + token to the API instead."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View

from config.api.errors import ServiceError

from . import services


class PasswordResetPage(View):
    template_name = "accounts/reset_password.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"uid": request.GET.get("uid", ""),
                                                    "token": request.GET.get("token", "")})

    def post(self, request: HttpRequest) -> HttpResponse:
        uid, token = request.POST.get("uid", ""), request.POST.get("token", "")
        password, again = request.POST.get("new_password", ""), request.POST.get("new_password_again", "")
        context = {"uid": uid, "token": token}
        if password != again:
            return render(request, self.template_name, {**context, "errors": ["The two passwords differ."]},
                          status=400)
        try:
            services.password_reset_confirm(uid=uid, token=token, new_password=password)
        except ServiceError as exc:
            fields = exc.details.get("fields", {}) if isinstance(exc.details, dict) else {}
            errors = [m for messages in fields.values() for m in messages] or [exc.message]
            return render(request, self.template_name, {**context, "errors": errors}, status=exc.status)
        return render(request, self.template_name, {"done": True})
