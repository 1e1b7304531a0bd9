"""`manage.py set_credentials SLUG --from-env VAR | --from-file PATH | --stdin [--clear]`

Encrypts a cloud credential (a JSON object, e.g. {"access_key_id": "...", "secret_access_key": "..."})
with INFERENSYS_CREDENTIALS_KEY and stores it on the account; the change goes to the audit log with
the key names only. The secret is read from an environment variable, a file or stdin, never from
the command line (which shows in `ps` and shell history), and is never printed.

The service (attribution.connectors.credentials) audits the change in the same transaction.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from attribution.connectors.credentials import CredentialsError, cloud_account_credentials_set
from attribution.models import CloudAccount


class Command(BaseCommand):
    help = "Encrypt and store a cloud account's credential (JSON object) from an env var, a file or stdin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--from-env", metavar="VAR", help="Environment variable holding the JSON")
        source.add_argument("--from-file", metavar="PATH", help="File holding the JSON")
        source.add_argument("--stdin", action="store_true", help="Read the JSON from standard input")
        source.add_argument("--clear", action="store_true", help="Remove the stored credential")

    def _read(self, options: dict) -> str:
        if options["from_env"]:
            value = os.environ.get(options["from_env"])
            if not value:
                raise CommandError(f"Environment variable {options['from_env']} is not set or empty.")
            return value
        if options["from_file"]:
            try:
                return Path(options["from_file"]).read_text(encoding="utf-8")
            except OSError as error:
                raise CommandError(f"Cannot read {options['from_file']}: {error.strerror}.")
        return sys.stdin.read()

    def handle(self, *args, slug: str, **options) -> None:
        account = CloudAccount.objects.filter(slug=slug).first()
        if account is None:
            raise CommandError(f"No cloud account {slug!r}.")
        values = None
        if not options["clear"]:
            try:
                values = json.loads(self._read(options))
            except json.JSONDecodeError:
                # The message must not quote the input: it is a secret.
                raise CommandError(
                    "The credential must be a JSON object, e.g. "
                    '{"access_key_id": "...", "secret_access_key": "..."}.'
                ) from None
        try:
            # Audited by the service, in the same transaction as the change.
            keys = cloud_account_credentials_set(account_id=account.pk, values=values)
        except CredentialsError as error:
            raise CommandError(str(error))
        if values is None:
            self.stdout.write(self.style.SUCCESS(f"Removed the stored credential of {slug}."))
        else:
            self.stdout.write(
                self.style.SUCCESS(f"Stored an encrypted credential for {slug} (keys: {', '.join(keys)}).")
            )
