"""Fast, deterministic settings for the test suite (real Postgres and Redis, see Makefile)."""

import os
from urllib.parse import urlsplit, urlunsplit

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

# pytest-xdist (`make test` runs two worker processes, gw0 and gw1): each has its own test database
# (pytest-django's test_<name>_gw<N>) and needs its own broker too, since tests purge the Celery
# queues and start workers that take whatever is queued. Worker N uses TEST_REDIS_URL's database
# number plus N (modulo 16, Redis's default count). Processes the tests start inherit the result
# through the environment: a broker URL other than TEST_REDIS_URL (theirs, or a test's own Redis)
# is left as it is.
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
_test_redis_url = os.environ.setdefault("TEST_REDIS_URL", CELERY_BROKER_URL)  # noqa: F405
if _xdist_worker and _test_redis_url.startswith("redis://") and CELERY_BROKER_URL == _test_redis_url:  # noqa: F405
    _base = urlsplit(_test_redis_url)
    _database = (int(_base.path.strip("/") or 0) + int(_xdist_worker.removeprefix("gw"))) % 16
    CELERY_BROKER_URL = urlunsplit(_base._replace(path=f"/{_database}"))
    os.environ["CELERY_BROKER_URL"] = CELERY_BROKER_URL
