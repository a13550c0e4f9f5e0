import django_filters

from .models import SpeechJob


class SpeechJobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=SpeechJob.Status.choices)
    purpose = django_filters.ChoiceFilter(choices=SpeechJob.Purpose.choices)

    class Meta:
        model = SpeechJob
        fields = ["status", "purpose"]
