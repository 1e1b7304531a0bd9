"""`manage.py create_api_token alice --name ci --scope read`: prints the token once, on stdout."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from governance.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print its plaintext once (only a hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="What the token is for, e.g. 'finance-bi'")
        parser.add_argument(
            "--scope",
            dest="scopes",
            action="append",
            help="Repeat for several scopes (default: read)",
        )
        parser.add_argument("--expires-in-days", type=int, default=None, help="Default: never expires")

    def handle(self, *args, username: str, name: str, scopes: list[str] | None, **options) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: username})
        except user_model.DoesNotExist:
            raise CommandError(f"No user named {username!r}; create it first (manage.py createsuperuser).")
        days = options["expires_in_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-in-days must be at least 1.")
        expires_at = timezone.now() + dt.timedelta(days=days) if days is not None else None
        try:
            token, plaintext = api_token_create(
                user=user, name=name, scopes=scopes or ["read"], expires_at=expires_at
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        # The plaintext alone on stdout, so `TOKEN=$(manage.py create_api_token ...)` works;
        # the explanation goes to stderr.
        self.stdout.write(plaintext)
        self.stderr.write(
            f"Created token {token.name!r} ({token.prefix}…) for {username} with scopes "
            f"{', '.join(token.scopes)}; expires {token.expires_at or 'never'}. "
            "Store it now: it cannot be shown again."
        )
