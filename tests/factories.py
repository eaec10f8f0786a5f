"""factory_boy factories for the hub's models."""

from datetime import timedelta

import factory
from django.utils import timezone

from integrations.amocrm.models import Account, CustomField, Pipeline, Status, Token
from integrations.sync.models import (
    DeliveryAttempt,
    FieldMapping,
    Flow,
    InboundEvent,
    LeadAlias,
)


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"account-{n}")
    subdomain = factory.Sequence(lambda n: f"clinic{n}")
    base_url = "https://clinic.amocrm.ru"
    client_id = "client-id"
    client_secret = "client-secret-value"
    redirect_uri = "https://hub.example.ru/amocrm/oauth/callback/"
    state = Account.State.CONNECTED


class TokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Token

    account = factory.SubFactory(AccountFactory)
    access_token = factory.Sequence(lambda n: f"access-token-{n}")
    refresh_token = factory.Sequence(lambda n: f"refresh-token-{n}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=20))


class FlowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Flow

    name = factory.Sequence(lambda n: f"flow-{n}")
    kind = "booked"
    endpoint_path = factory.Sequence(lambda n: f"/test/flow-{n}")
    account = factory.SubFactory(AccountFactory)


class FieldMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FieldMapping

    flow = factory.SubFactory(FlowFactory)
    source = "paid"
    field_id = factory.Sequence(lambda n: 900000 + n)
    field_type = "numeric"


class InboundEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InboundEvent

    flow = factory.SubFactory(FlowFactory)
    raw_body = b"{}"
    body_hash = "0" * 64
    payload = factory.LazyFunction(dict)
    next_attempt_at = factory.LazyFunction(timezone.now)


class CustomFieldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomField

    account = factory.SubFactory(AccountFactory)
    field_id = factory.Sequence(lambda n: 700000 + n)
    name = factory.Sequence(lambda n: f"Field {n}")
    type = "text"


class PipelineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pipeline

    account = factory.SubFactory(AccountFactory)
    pipeline_id = factory.Sequence(lambda n: 8000 + n)
    name = factory.Sequence(lambda n: f"Pipeline {n}")


class StatusFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Status

    pipeline = factory.SubFactory(PipelineFactory)
    status_id = factory.Sequence(lambda n: 60000 + n)
    name = factory.Sequence(lambda n: f"Stage {n}")


class DeliveryAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeliveryAttempt

    event = factory.SubFactory(InboundEventFactory)
    request_method = "PATCH"
    request_url = "https://clinic.amocrm.ru/api/v4/leads/23392663"
    request_body = factory.LazyFunction(lambda: {"price": 1})
    response_status = 200
    response_body = '{"id": 23392663}'


class LeadAliasFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LeadAlias

    account = factory.SubFactory(AccountFactory)
    rdesk_lead_id = factory.Sequence(lambda n: 100 + n)
    amocrm_lead_id = factory.Sequence(lambda n: 5000000 + n)


class UserFactory(factory.django.DjangoModelFactory):
    """A staff user; ``role`` (a group name from ``integrations.sync.roles``) sets rights."""

    class Meta:
        model = "auth.User"
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user-{n}")
    is_staff = True
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        from django.contrib.auth.models import Group

        if create and extracted:
            for name in extracted if isinstance(extracted, (list, tuple)) else [extracted]:
                self.groups.add(Group.objects.get(name=name))
