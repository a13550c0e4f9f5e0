from django.contrib import admin
from django.urls import include, path, re_path

from storybook.exports.files import export_file
from storybook.images import image_file
from voices.samples import sample_file
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.views import PasswordResetPage
from config.api import errors
from config.api.root import ApiRootView
from ops.health import healthz, readyz
from tts import apis as tts_apis

api_v1 = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("", include("accounts.urls")),
    path("", include("tts.urls")),
    path("", include("voices.urls")),
    path("", include("storybook.urls")),
]

# The top folders of signed file links (config.asgi streams them from the event loop).
FILE_LINK_FOLDERS = ("audio", "images", "exports", "samples")

urlpatterns = [
    path("", RedirectView.as_view(url="/api/v1/", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api-auth/", include("rest_framework.urls")),
    path("reset-password", PasswordResetPage.as_view(), name="password-reset-page"),
    path("audio/<str:token>", tts_apis.audio_file, name="audio-file"),
    path("images/<str:token>", image_file, name="image-file"),
    path("exports/<str:token>", export_file, name="export-file"),
    path("samples/<str:token>", sample_file, name="sample-file"),
    re_path(rf"^(api|{'|'.join(FILE_LINK_FOLDERS)})/", errors.api_not_found),
]

handler400 = "config.api.errors.bad_request"
handler403 = "config.api.errors.permission_denied"
handler404 = "config.api.errors.page_not_found"
handler500 = "config.api.errors.server_error"
