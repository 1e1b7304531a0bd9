"""`manage.py gateway_token gw-envoy-prod`: issue a new token for a gateway and print it once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.models import Gateway
from routing.services import gateway_token_revoke, gateway_token_rotate


class Command(BaseCommand):
    help = "Rotate a gateway's token and print the new plaintext once (the old token stops working)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The gateway's slug")
        parser.add_argument(
            "--revoke", action="store_true", help="Remove the token without issuing a new one"
        )

    def handle(self, *args, slug: str, revoke: bool, **options) -> None:
        try:
            gateway = Gateway.objects.get(slug=slug)
        except Gateway.DoesNotExist:
            known = ", ".join(Gateway.objects.values_list("slug", flat=True)[:20]) or "none"
            raise CommandError(f"No gateway {slug!r} (known: {known}).")
        if revoke:
            gateway_token_revoke(gateway=gateway, actor=None)
            self.stderr.write(f"Revoked the token of {slug}; its usage posts now get 401.")
            return
        plaintext = gateway_token_rotate(gateway=gateway, actor=None)
        # Plaintext alone on stdout so `TOKEN=$(manage.py gateway_token SLUG)` works.
        self.stdout.write(plaintext)
        self.stderr.write(
            f"New token for {slug} ({gateway.token_prefix}…); any previous token stopped working. "
            "Store it now: it cannot be shown again."
        )
