"""Page-number pagination with strict parameters: `page` and `page_size` are integers in range,
given once, or the request is a 400 `validation_error` (not silently another page)."""

from django.conf import settings
from rest_framework import pagination

from .errors import ValidationFailed


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE

    def _integer(self, request, name: str, *, minimum: int, maximum: int | None = None) -> int | None:
        values = request.query_params.getlist(name)
        if not values:
            return None
        bound = f" and {maximum}" if maximum is not None else ""
        problem = [f"A whole number between {minimum}{bound}, given once." if bound else
                   f"A whole number of at least {minimum}, given once."]
        # Ten digits at most: int() of thousands of digits is slow and then refused (a 500).
        if len(values) > 1 or not values[0].isascii() or not values[0].isdigit() or len(values[0]) > 10:
            raise ValidationFailed(details={"fields": {name: problem}})
        value = int(values[0])
        if value < minimum or (maximum is not None and value > maximum):
            raise ValidationFailed(details={"fields": {name: problem}})
        return value

    def validate(self, request) -> None:
        """Refuse bad paging parameters up front (before a 304 could answer for the request)."""
        self.get_page_size(request)
        self._integer(request, self.page_query_param, minimum=1)

    def get_page_size(self, request) -> int:
        size = self._integer(request, self.page_size_query_param, minimum=1, maximum=self.max_page_size)
        return size if size is not None else self.page_size

    def paginate_queryset(self, queryset, request, view=None):
        self._integer(request, self.page_query_param, minimum=1)  # a page past the end stays a 404
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["maximum"] = self.max_page_size
        return parameters
