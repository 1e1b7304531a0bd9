"""Writes of the routing layer."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from governance.services import audit_event_record
from governance.tokens import generate_token
from routing.models import Gateway


def gateway_token_rotate(
    *, gateway: Gateway, actor: AbstractBaseUser | None, remote_addr: str | None = None
) -> str:
    """Give the gateway a new token and return its plaintext (shown once, never stored).

    The previous token stops working in the same transaction: only the new hash is kept.
    """
    new = generate_token()
    with transaction.atomic():
        previous_prefix = gateway.token_prefix
        gateway.token_prefix = new.prefix
        gateway.token_hash = new.token_hash
        gateway.save(update_fields=["token_prefix", "token_hash"])
        audit_event_record(
            actor=actor,
            action="rotate_token",
            obj=gateway,
            changes={"token_prefix": [previous_prefix, new.prefix]},
            remote_addr=remote_addr,
        )
    return new.plaintext


def gateway_token_revoke(
    *, gateway: Gateway, actor: AbstractBaseUser | None, remote_addr: str | None = None
) -> None:
    """Remove the gateway's token: its usage posts are refused until a new one is issued."""
    with transaction.atomic():
        previous_prefix = gateway.token_prefix
        changed = Gateway.objects.filter(pk=gateway.pk, token_hash__isnull=False).update(
            token_prefix=None, token_hash=None
        )
        gateway.token_prefix = gateway.token_hash = None
        if changed:
            audit_event_record(
                actor=actor,
                action="revoke_token",
                obj=gateway,
                changes={"token_prefix": [previous_prefix, None]},
                remote_addr=remote_addr,
            )
