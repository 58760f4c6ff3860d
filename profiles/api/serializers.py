"""Request and response shapes of SPEC §5, declared for validation and for the OpenAPI schema."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError

from profiles.models import ProfileChange, UserPoint, UserProfile, epoch_ms
from profiles.profile_read import ProfileRead
from profiles.validation import MAX_COMPARTMENT_ID

# --- strict input -------------------------------------------------------------------------


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not declare (UNKNOWN_FIELD) and keys clients may not set."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            for key in data:
                if key not in self.fields:
                    raise ValidationError(
                        {key: [ErrorDetail("this field is unknown", code="UNKNOWN_FIELD")]}
                    )
                if self.fields[key].read_only:
                    raise ValidationError(
                        {
                            key: [
                                ErrorDetail(
                                    "this field is set by the system", code="READ_ONLY_FIELD"
                                )
                            ]
                        }
                    )
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: DRF's CharField would turn 123 into "123"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """`true` or `false`: DRF's BooleanField would also take "yes" and 1."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class CompartmentIdField(serializers.IntegerField):
    """A compartment id as an integer or a string of digits (`1606` or `"1606"`), as in SPEC §1."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", MAX_COMPARTMENT_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not (
            isinstance(data, int) or (isinstance(data, str) and data.isascii() and data.isdigit())
        ):
            self.fail("invalid")
        if isinstance(data, str) and len(data) > 10:
            self.fail("max_value", max_value=self.max_value)
        return super().to_internal_value(data)


# --- compartments ---------------------------------------------------------------------------


class CompartmentSerializer(StrictSerializer):
    compartment_id = CompartmentIdField(
        help_text="The compartment's id, chosen when it is created (e.g. 1606)."
    )
    name = StrictCharField(max_length=255, help_text="A name for staff, e.g. the source system.")
    is_default = StrictBooleanField(
        required=False,
        default=False,
        help_text="The datamart's default compartment, used when a profile names none. "
        "Exactly one per datamart: making one the default unsets the previous one.",
    )


class CompartmentUpdateSerializer(StrictSerializer):
    compartment_id = CompartmentIdField(
        required=False,
        help_text="May be sent (as read by GET) but must equal the compartment of the path.",
    )
    name = StrictCharField(max_length=255, help_text="A name for staff.")
    is_default = StrictBooleanField(
        required=False,
        help_text="true makes this the default compartment; false on the default one is "
        "refused (make another one the default instead). Absent: unchanged.",
    )

    def validate_compartment_id(self, value):
        if value != self.context["compartment"].compartment_id:
            raise ValidationError("the compartment id cannot be changed", code="READ_ONLY_FIELD")
        return value


class CompartmentOutputSerializer(serializers.Serializer):
    compartment_id = serializers.IntegerField(help_text="The compartment's id (e.g. 1606).")
    name = serializers.CharField(help_text="A name for staff.")
    is_default = serializers.BooleanField(help_text="The datamart's default compartment.")


# --- user points and profiles --------------------------------------------------------------


class ProfileObjectSerializer(serializers.Serializer):
    """A profile object (SPEC §1): system `$` keys, then the custom properties as stored.

    Its schema is written by hand (profiles.api.schema): the custom properties are free.
    """

    def to_representation(self, instance: UserProfile | ProfileRead) -> dict:
        return profile_object(instance)


def profile_object(profile: UserProfile | ProfileRead) -> dict:
    """The API's profile object: SPEC §1's, then the id of the profile's user point."""
    return {**profile.as_client_object(), "$user_point_id": str(profile.user_point_id)}


class IdentifierSerializer(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=["USER_ACCOUNT", "USER_EMAIL", "USER_AGENT"], help_text="The kind of identifier."
    )
    compartment_id = serializers.IntegerField(required=False, help_text="USER_ACCOUNT only.")
    user_account_id = serializers.CharField(required=False, help_text="USER_ACCOUNT only.")
    email_hash = serializers.CharField(required=False, help_text="USER_EMAIL only.")
    email = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="USER_EMAIL only: the clear address, null when not known.",
    )
    user_agent_id = serializers.CharField(
        required=False, help_text="USER_AGENT only, e.g. vec:89998434."
    )


class UserPointSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The user point's id.")
    creation_ts = serializers.IntegerField(help_text="Creation time, epoch milliseconds.")
    identifiers = IdentifierSerializer(many=True, help_text="Accounts, email hashes, user agents.")
    profiles = ProfileObjectSerializer(many=True, help_text="Its profiles, one per address.")

    def to_representation(self, instance: UserPoint) -> dict:
        identifiers = [
            {
                "type": "USER_ACCOUNT",
                "compartment_id": account.compartment.compartment_id,
                "user_account_id": account.user_account_id,
            }
            for account in instance.accounts.all()
        ]
        identifiers += [
            {"type": "USER_EMAIL", "email_hash": email.email_hash, "email": email.email or None}
            for email in instance.emails.all()
        ]
        identifiers += [
            {"type": "USER_AGENT", "user_agent_id": agent.user_agent_id}
            for agent in instance.agents.all()
        ]
        return {
            "id": str(instance.pk),
            "creation_ts": epoch_ms(instance.creation_ts),
            "identifiers": identifiers,
            "profiles": [
                ProfileObjectSerializer(profile).data
                for profile in sorted(instance.profiles.all(), key=lambda profile: profile.pk)
            ],
        }


# --- one person's history and erasure (SPEC §7) ----------------------------------------------


class ProfileChangeSerializer(serializers.Serializer):
    ts = serializers.IntegerField(help_text="When, epoch milliseconds.")
    action = serializers.ChoiceField(
        choices=ProfileChange.Action.values, help_text="What happened to the profile."
    )
    source = serializers.ChoiceField(
        choices=ProfileChange.Source.values, help_text="admin, api, import or system."
    )
    profile_id = serializers.IntegerField(help_text="The profile's id (it may be deleted since).")
    compartment_id = serializers.IntegerField(help_text="The profile's compartment.")
    user_account_id = serializers.CharField(
        allow_null=True, help_text="The profile's account; null for the anonymous profile."
    )
    changed_keys = serializers.ListField(
        child=serializers.CharField(), help_text="The top-level properties that changed."
    )
    user = serializers.CharField(allow_null=True, help_text="The staff user who made it, if one.")
    api_token = serializers.CharField(allow_null=True, help_text="The API token's name, if one.")
    execution_id = serializers.IntegerField(
        allow_null=True, help_text="The import execution that made it, if one."
    )

    def to_representation(self, instance: ProfileChange) -> dict:
        return {
            "ts": epoch_ms(instance.ts),
            "action": instance.action,
            "source": instance.source,
            "profile_id": instance.profile_id,
            "compartment_id": instance.compartment_id,
            "user_account_id": instance.user_account_id,
            "changed_keys": list(instance.changed_keys),
            "user": None if instance.user is None else instance.user.get_username(),
            "api_token": None if instance.api_token is None else instance.api_token.name,
            "execution_id": instance.execution_id,
        }


class ErasureSerializer(serializers.Serializer):
    user_point_id = serializers.UUIDField(help_text="The erased user point.")
    erasure_id = serializers.UUIDField(
        help_text="The id under which the history now keeps the erasure record and the "
        "point's former changes, stripped of personal data."
    )
    identifiers = serializers.IntegerField(help_text="Identifiers deleted.")
    profiles = serializers.IntegerField(help_text="Profiles deleted.")
    history_rows = serializers.IntegerField(help_text="History rows stripped of personal data.")
    line_errors = serializers.IntegerField(
        help_text="Stored import line errors that named the person, scrubbed."
    )


class ErrorSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["error"])
    error = serializers.CharField(help_text="What went wrong, for a person.")
    error_code = serializers.CharField(help_text="A machine code, e.g. RESERVED_KEY or NOT_FOUND.")
    field = serializers.CharField(required=False, help_text="The field at fault, when one is.")
