import django_filters

from .models import Voice


class VoiceFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Voice.Status.choices)
    language = django_filters.CharFilter()
    category = django_filters.ChoiceFilter(choices=Voice.Category.choices)
    # Exactly "true" or "false": django-filter's BooleanFilter would read any other value as
    # "no filter" and answer an unfiltered list.
    mine = django_filters.ChoiceFilter(choices=[("true", "true"), ("false", "false")], method="filter_mine",
                                       label="Only my voices (true) or only shared (false)")

    class Meta:
        model = Voice
        fields = ["status", "language", "category", "mine"]

    def filter_mine(self, queryset, name, value):
        user = self.request.user
        return queryset.filter(owner=user) if value == "true" else queryset.exclude(owner=user)
