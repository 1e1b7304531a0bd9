"""Settings for bench/policy_api.py's gunicorn: the app's, plus the bench's bare view."""

from config.settings.local import *  # noqa: F403

ROOT_URLCONF = "policy_api_urls"
