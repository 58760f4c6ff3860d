"""The domain of SPEC §1: datamarts, compartments, user points, identifiers, profiles."""

from __future__ import annotations

import json
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from uuid6 import uuid7

from profiles.validation import PropertiesDecoder


def epoch_ms(moment: datetime | None) -> int | None:
    """Timestamps reach clients as epoch milliseconds."""
    return None if moment is None else int(moment.timestamp() * 1000)


def profile_client_object(
    *,
    compartment_id: int,
    user_account_id: str | None,
    creation_ts: datetime,
    last_modified_ts: datetime,
    properties: dict,
) -> dict:
    """The profile object of SPEC §1: system `$` keys first, then the custom properties."""
    return {
        "$compartment_id": compartment_id,
        "$user_account_id": user_account_id,
        "$creation_ts": epoch_ms(creation_ts),
        "$last_modified_ts": epoch_ms(last_modified_ts),
        **properties,
    }


_PROPERTIES_DECODER = PropertiesDecoder()


class PropertiesField(models.JSONField):
    """Custom properties as stored: read back with `PropertiesDecoder` (an integer past 64 bits
    is a float that jsonb printed without its exponent). Forms parse input as plain JSON, so
    the validator still refuses such an integer when a person or a client sends one."""

    def from_db_value(self, value, expression, connection):
        if not isinstance(value, str):
            return super().from_db_value(value, expression, connection)
        try:
            return _PROPERTIES_DECODER.decode(value)  # one decoder: json.loads makes one a call
        except json.JSONDecodeError:
            return value


class Datamart(models.Model):
    id = models.PositiveIntegerField(primary_key=True, help_text="Chosen by staff.")
    name = models.CharField(max_length=255)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class Compartment(models.Model):
    datamart = models.ForeignKey(Datamart, on_delete=models.CASCADE, related_name="compartments")
    compartment_id = models.PositiveIntegerField(
        help_text="Chosen by staff, unique in its datamart."
    )
    name = models.CharField(max_length=255)
    is_default = models.BooleanField(default=False)
    list_properties = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            "Property paths shown as columns in the back-office profile list, e.g. "
            '["firstname", "newsletter_options.subscribed"]; empty: the first keys of each profile.'
        ),
    )

    class Meta:
        ordering = ["datamart_id", "compartment_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["datamart", "compartment_id"], name="compartment_id_unique_in_datamart"
            ),
            # At most one default per datamart in the database; services keep at least one.
            models.UniqueConstraint(
                fields=["datamart"], condition=Q(is_default=True), name="one_default_compartment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.compartment_id})"


class UserPoint(models.Model):
    # Time-ordered (UUIDv7): the points an import creates land at the end of every index on a
    # point id (this one, the identifiers', the profiles', the history's) instead of at random.
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    datamart = models.ForeignKey(Datamart, on_delete=models.CASCADE, related_name="user_points")
    creation_ts = models.DateTimeField("created", default=timezone.now, editable=False)

    class Meta:
        ordering = ["creation_ts", "id"]

    def __str__(self) -> str:
        return str(self.id)


class UserAccount(models.Model):
    datamart = models.ForeignKey(Datamart, on_delete=models.CASCADE, related_name="+")
    user_point = models.ForeignKey(UserPoint, on_delete=models.CASCADE, related_name="accounts")
    # No index of its own: account_unique_in_compartment starts with it. Every index is one more
    # entry to write for each account an import creates.
    compartment = models.ForeignKey(
        Compartment, on_delete=models.PROTECT, related_name="accounts", db_index=False
    )
    user_account_id = models.CharField(max_length=255)

    class Meta:
        constraints = [
            # A compartment belongs to one datamart, so this is unique in the datamart.
            models.UniqueConstraint(
                fields=["compartment", "user_account_id"], name="account_unique_in_compartment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.compartment.compartment_id}/{self.user_account_id}"


class UserEmail(models.Model):
    # Indexed by email_hash_unique_in_datamart, which starts with it.
    datamart = models.ForeignKey(
        Datamart, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user_point = models.ForeignKey(UserPoint, on_delete=models.CASCADE, related_name="emails")
    email_hash = models.CharField(max_length=255)
    email = models.EmailField(max_length=320, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["datamart", "email_hash"], name="email_hash_unique_in_datamart"
            ),
        ]

    def __str__(self) -> str:
        return self.email_hash


class UserAgent(models.Model):
    # Indexed by user_agent_unique_in_datamart, which starts with it.
    datamart = models.ForeignKey(
        Datamart, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user_point = models.ForeignKey(UserPoint, on_delete=models.CASCADE, related_name="agents")
    user_agent_id = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["datamart", "user_agent_id"], name="user_agent_unique_in_datamart"
            ),
        ]

    def __str__(self) -> str:
        return self.user_agent_id


class UserProfile(models.Model):
    # Indexed by the (datamart, compartment, account) and (datamart, last modified) indexes,
    # which start with it: a changed profile writes a new entry in every index it has.
    datamart = models.ForeignKey(
        Datamart, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user_point = models.ForeignKey(UserPoint, on_delete=models.CASCADE, related_name="profiles")
    compartment = models.ForeignKey(Compartment, on_delete=models.PROTECT, related_name="profiles")
    user_account_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 (NULL: anonymous, unlike any account id)
    properties = PropertiesField(default=dict, blank=True)
    creation_ts = models.DateTimeField("created", default=timezone.now, editable=False)
    last_modified_ts = models.DateTimeField(
        "last modified", default=timezone.now, editable=False, db_index=True
    )

    class Meta:
        ordering = ["id"]
        # Import and export are granted apart from add/change: a staff user may edit one profile
        # without being allowed to rewrite or download a whole datamart.
        permissions = [
            ("import_profiles", "Can import profiles from files"),
            ("export_profiles", "Can export profiles to files"),
        ]
        constraints = [
            # NULL is distinct in unique indexes, so the anonymous profile needs its own constraint.
            models.UniqueConstraint(
                fields=["user_point", "compartment", "user_account_id"],
                condition=Q(user_account_id__isnull=False),
                name="one_profile_per_point_compartment_account",
            ),
            models.UniqueConstraint(
                fields=["user_point", "compartment"],
                condition=Q(user_account_id__isnull=True),
                name="one_anonymous_profile_per_point_compartment",
            ),
        ]
        indexes = [
            models.Index(fields=["datamart", "compartment", "user_account_id"]),
            models.Index(fields=["datamart", "last_modified_ts", "id"]),
        ]

    def __str__(self) -> str:
        account = self.user_account_id or "anonymous"
        return f"{self.compartment.compartment_id}/{account}"

    def as_client_object(self) -> dict:
        return profile_client_object(
            compartment_id=self.compartment.compartment_id,
            user_account_id=self.user_account_id,
            creation_ts=self.creation_ts,
            last_modified_ts=self.last_modified_ts,
            properties=self.properties,
        )


class ApiToken(models.Model):
    """An API token of one datamart; only its SHA-256 digest is stored."""

    datamart = models.ForeignKey(Datamart, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=255)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=12, editable=False, help_text="First characters, to recognise it."
    )
    created_ts = models.DateTimeField("created", default=timezone.now, editable=False)
    last_used_ts = models.DateTimeField("last used", null=True, blank=True, editable=False)
    revoked_ts = models.DateTimeField("revoked", null=True, blank=True)

    class Meta:
        ordering = ["datamart_id", "name"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_ts is None


class DatamartMembership(models.Model):
    """Which datamarts a staff user may see and change (superusers see all)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datamart_memberships"
    )
    datamart = models.ForeignKey(Datamart, on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "datamart"], name="one_membership_per_user_datamart"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.datamart}"


class ProfileChange(models.Model):
    """One recorded change of a profile: when, by whom (staff, API token, import), which keys."""

    class Action(models.TextChoices):
        CREATED = "created"
        UPDATED = "updated"
        DELETED = "deleted"
        # A person erased (SPEC §7): the one record of it, naming no profile (ids 0).
        ERASED = "erased"

    class Source(models.TextChoices):
        ADMIN = "admin", "Back-office"
        API = "api", "API"
        IMPORT = "import", "Import"
        SYSTEM = "system", "System"

    # Every import writes a row per changed profile, so each index here slows imports: only the
    # lookups the pages and the deletions need are indexed (see Meta.indexes). The datamart and
    # the point are written with the profile, in its transaction, whose own foreign keys check
    # them: no database constraint checks them again row by row at commit. Deleting either
    # through Django still takes the history along.
    datamart = models.ForeignKey(
        Datamart, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    # The profile page and the user point page both read a point's changes by this index.
    user_point = models.ForeignKey(
        UserPoint, on_delete=models.CASCADE, related_name="profile_changes", db_constraint=False
    )
    # Kept as values, not a foreign key, so the record of a deletion survives the profile.
    profile_id = models.BigIntegerField()
    compartment_id = models.PositiveIntegerField()
    user_account_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 (NULL: anonymous, unlike any account id)
    action = models.CharField(max_length=16, choices=Action.choices)
    changed_keys = models.JSONField(default=list, blank=True)
    # The changed keys' values before the change (a key absent before is left out): a deleted
    # profile's whole properties, nothing for a created one. What "before → after" and a
    # revert read; erasing a person empties it.
    previous_values = PropertiesField("values before", default=dict, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    api_token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # The import execution (imports app) that made the change; an id keeps the domain free of
    # imports. Indexed with the row id for a revert, which walks one execution's rows in order.
    execution_id = models.BigIntegerField(null=True, blank=True)
    ts = models.DateTimeField("time", default=timezone.now)

    class Meta:
        ordering = ["-ts", "-id"]
        indexes = [
            # A revert walks one execution's rows in id order; other writes stay out of it.
            models.Index(
                fields=["execution_id", "id"],
                name="change_execution_id",
                condition=models.Q(execution_id__isnull=False),
            ),
            # The history list of a datamart, newest first; appended to at its end.
            models.Index(fields=["datamart", "id"], name="change_datamart_id"),
            # For SET NULL when a staff user or a token is deleted; imports leave both empty,
            # so their rows stay out of these indexes.
            models.Index(
                fields=["user"], name="change_user", condition=models.Q(user__isnull=False)
            ),
            models.Index(
                fields=["api_token"],
                name="change_api_token",
                condition=models.Q(api_token__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.source} at {self.ts:%Y-%m-%d %H:%M:%S}"
