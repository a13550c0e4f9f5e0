from django.urls import path

from config.api import converters  # noqa: F401  (registers the <id:...> converter)

from . import apis

urlpatterns = [
    path("storybook/create", apis.BookCreateView.as_view(), name="book-create"),
    path("storybook/create/with-images", apis.BookCreateWithImagesView.as_view(), name="book-create-with-images"),
    path("storybook/books", apis.BookListView.as_view(), name="book-list"),
    path("storybook/books/<id:book_id>", apis.BookDetailView.as_view(), name="book-detail"),
    path("storybook/books/<id:book_id>/retry", apis.BookRetryView.as_view(), name="book-retry"),
    path("storybook/books/<id:book_id>/cancel", apis.BookCancelView.as_view(), name="book-cancel"),
    path("storybook/books/<id:book_id>/audio", apis.BookAudioView.as_view(), name="book-audio"),
    path("storybook/books/<id:book_id>/read-along.vtt", apis.BookReadAlongView.as_view(), name="book-read-along"),
    path("storybook/books/<id:book_id>/export.epub", apis.BookEpubView.as_view(), name="book-export-epub"),
    path("storybook/books/<id:book_id>/export.m4b", apis.BookM4bView.as_view(), name="book-export-m4b"),
    path("storybook/books/<id:book_id>/bundle.zip", apis.BookBundleView.as_view(), name="book-bundle"),
    path("storybook/books/<id:book_id>/cover", apis.BookCoverView.as_view(), name="book-cover"),
    path("storybook/books/<id:book_id>/pages", apis.PageAddView.as_view(), name="book-page-add"),
    path("storybook/books/<id:book_id>/pages/<id:page_id>/image", apis.PageImageView.as_view(), name="book-page-image"),
    path("storybook/books/<id:book_id>/pages/<id:page_id>", apis.PageDetailView.as_view(), name="book-page"),
    path("storybook/books/<id:book_id>/pages/<id:page_id>/lines", apis.LineAddView.as_view(), name="book-line-add"),
    path("storybook/books/<id:book_id>/lines/<id:line_id>", apis.LineDetailView.as_view(), name="book-line"),
]
