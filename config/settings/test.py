"""Fast, deterministic settings for the test suite (real Postgres and Redis, see Makefile)."""

from config.settings.base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Static files are served from the finders in tests; there is no collectstatic output to watch.
WHITENOISE_AUTOREFRESH = True
# Figures are checked property by property in tests (a typo fails), unchecked when serving.
PLOTLY_VALIDATE = True
