"""factory_boy factories for the control-plane models. Bulk rows (line items) go through services."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import F
from django.db.models.functions import Greatest, Least

from attribution.ingest import loader
from attribution.models import CloudAccount, CostLineItem, DailyCost, Deployment, IngestRun, ServedModel, Team
from governance.management.commands.setup_roles import role_permissions
from governance.models import Budget, Membership


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("pw-for-tests")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if not create:
            return
        for name in extracted or ():
            group, created = Group.objects.get_or_create(name=name)
            if created:
                # The group holds what setup_roles grants the role, as on a real installation.
                group.permissions.set(role_permissions(role=name))
            self.groups.add(group)


def line_item_create(**fields) -> CostLineItem:
    """One line item written through the ORM, as the loader would leave it: in its run's partition
    (created and attached on first use), its `tags` / `normalized_tags` in a TagSet, with the run's
    ChargePeriodStart span widened to it."""
    run: IngestRun = fields["ingest_run"]
    tags = json.dumps(fields.pop("tags", {}), sort_keys=True)
    normalized = json.dumps(fields.pop("normalized_tags", {}), sort_keys=True)
    loader.tag_sets_save([(loader.tag_set_id(tags, normalized), tags, normalized)])
    fields["tag_set_id"] = loader.tag_set_id(tags, normalized)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [loader.partition_name(run.pk)])
        if not cursor.fetchone()[0]:
            loader.partition_create(run_id=run.pk)
            loader.partition_attach(run_id=run.pk)
    item = CostLineItem.objects.create(**fields)
    start = item.charge_period_start
    # Postgres' LEAST and GREATEST ignore NULLs: the first item sets both ends.
    IngestRun.objects.filter(pk=run.pk).update(
        charge_period_first=Least(F("charge_period_first"), start),
        charge_period_last=Greatest(F("charge_period_last"), start),
    )
    return item


class CloudAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CloudAccount
        django_get_or_create = ("slug",)

    provider = "aws"
    name = factory.Sequence(lambda n: f"Account {n}")
    slug = factory.Sequence(lambda n: f"account-{n}")
    billing_currency = "USD"


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class ServedModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServedModel
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"model-{n}")
    slug = factory.Sequence(lambda n: f"model-{n}")


class DeploymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Deployment
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"deployment-{n}")
    model = factory.SubFactory(ServedModelFactory)
    provider = "aws"
    region = "us-east-1"
    pricing_mode = "on_demand"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    role = "member"


class DailyCostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DailyCost

    day = dt.date(2026, 10, 1)
    account = factory.SubFactory(CloudAccountFactory)
    billing_period_start = factory.LazyAttribute(lambda o: o.day.replace(day=1))
    provider = factory.LazyAttribute(lambda o: o.account.provider)
    service_name = "AmazonSageMaker"
    region_id = "us-east-1"
    charge_category = "Usage"
    billing_currency = "USD"
    billed_cost = Decimal("10.00")
    effective_cost = Decimal("10.00")
    list_cost = Decimal("12.00")


class BudgetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Budget

    name = factory.Sequence(lambda n: f"Budget {n}")
    team = factory.SubFactory(TeamFactory)
    amount = Decimal("1000.00")
