from django.urls import path

from config.api import converters  # noqa: F401  (registers the <id:...> converter)

from . import apis

urlpatterns = [
    path("tts/voices", apis.VoiceListView.as_view(), name="voice-list"),
    path("tts/voices/clone", apis.VoiceCloneView.as_view(), name="voice-clone"),
    path("tts/voices/<id:voice_id>", apis.VoiceDetailView.as_view(), name="voice-detail"),
    path("tts/voices/<id:voice_id>/shares", apis.VoiceSharesView.as_view(), name="voice-shares"),
    path("tts/voices/<id:voice_id>/shares/<int:share_id>", apis.VoiceShareDetailView.as_view(),
         name="voice-share"),
    path("tts/generate", apis.GenerateView.as_view(), name="speech-generate"),
]
