from django.apps import AppConfig


class StorybookConfig(AppConfig):
    name = "storybook"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.selectors import register_usage_counter
        from accounts.services import register_account_cleanup_step
        from tts.runner import register_finish_hook, register_lock_hook

        from .models import Book
        from .services import book_line_job_finished, book_lock_for_job, books_delete_for_account

        register_usage_counter("books", lambda user: Book.objects.filter(owner=user).count())
        register_account_cleanup_step(books_delete_for_account)
        register_lock_hook(book_lock_for_job)
        register_finish_hook(book_line_job_finished)
