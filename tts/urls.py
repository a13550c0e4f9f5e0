from django.urls import path

from config.api import converters  # noqa: F401  (registers the <id:...> converter)

from . import apis

urlpatterns = [
    path("tts/jobs", apis.SpeechJobListView.as_view(), name="job-list"),
    path("tts/jobs/<id:job_id>", apis.SpeechJobDetailView.as_view(), name="job-detail"),
    path("tts/jobs/<id:job_id>/cancel", apis.SpeechJobCancelView.as_view(), name="job-cancel"),
    path("tts/quota", apis.QuotaView.as_view(), name="quota"),
]
