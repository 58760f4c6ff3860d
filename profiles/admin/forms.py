"""The back-office forms: they validate with the domain's own validator and rules, and the
admin classes save through the services."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django_json_widget.widgets import JSONEditorWidget

from profiles.admin.display import moment_text
from profiles.admin.scoping import ScopedModelForm
from profiles.errors import ProfileError
from profiles.identifiers import AccountIdentifier, EmailIdentifier, UserAgentIdentifier
from profiles.models import ApiToken, Compartment, Datamart, ProfileChange, UserPoint, UserProfile
from profiles.property_paths import property_path_parse
from profiles.selectors import profile_changes, profile_find, user_point_find
from profiles.validation import PropertyError, validate_custom_properties

STALE_MESSAGE = (
    "This profile was changed by {who} at {when} since you loaded it. Your edit was not saved: "
    "reload the page to see the current properties and apply your change again."
)


class PropertiesEditorWidget(JSONEditorWidget):
    """django-json-widget's editor (bundled JSONEditor, no CDN), opened on the tree view.

    Its `format_value` fails on text that is not JSON (a hand-made POST); this one shows it.
    Its colours follow the admin's theme (profiles/static/profiles/json_editor.css).
    """

    class Media:
        css = {"all": ("profiles/json_editor.css",)}
        js = ("profiles/json_editor.js",)  # text that does not parse is sent, not dropped

    def __init__(self, **kwargs):
        kwargs.setdefault("mode", "tree")
        kwargs.setdefault("height", "420px")
        kwargs.setdefault("width", "100%")
        options = {"modes": ["tree", "code", "form", "view"], "mainMenuBar": True}
        options.update(kwargs.pop("options", {}))
        super().__init__(options=options, **kwargs)

    def format_value(self, value):
        if value is None:
            return {}
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value


def js_rounding_undone(edited: object, *, stored: object) -> object:
    """The edited properties with each integer the browser's editor could not hold put back.

    JSONEditor holds numbers as JavaScript doubles: an integer past 2**53 that staff never
    touched comes back rounded (9007199254740993 as 9007199254740992, 2**63 - 1 as
    9223372036854776000). Where an edited number is the double of the stored integer at the
    same place, the stored integer is kept; any other edit stands.
    """
    if isinstance(edited, dict) and isinstance(stored, dict):
        return {
            key: js_rounding_undone(value, stored=stored[key]) if key in stored else value
            for key, value in edited.items()
        }
    if isinstance(edited, list) and isinstance(stored, list) and len(edited) == len(stored):
        return [
            js_rounding_undone(item, stored=was) for item, was in zip(edited, stored, strict=True)
        ]
    if (
        type(stored) is int
        and abs(stored) > 2**53
        and type(edited) in (int, float)
        and float(edited) == float(stored)
    ):
        return stored
    return edited


def properties_checked(value: object) -> object:
    """The one validator of custom properties, its message shown next to the field."""
    try:
        validate_custom_properties(value)
    except PropertyError as error:
        raise ValidationError(error.message, code=error.code) from error
    return value


def change_author(change: ProfileChange | None) -> str:
    if change is None:
        return "someone else"
    if change.user is not None:
        return change.user.get_username()
    if change.api_token is not None:
        return f"API token “{change.api_token.name}”"
    if change.execution_id is not None:
        return f"import execution {change.execution_id}"
    return change.get_source_display().lower()


class ProfileChangeForm(ScopedModelForm):
    """Editing a profile: its custom properties only; the system fields are read-only."""

    loaded_last_modified_ts = forms.CharField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = UserProfile
        fields = ["properties"]
        widgets = {"properties": PropertiesEditorWidget()}
        labels = {"properties": "Custom properties"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # The version this page shows; a save checks it is still the stored one.
            self.initial["loaded_last_modified_ts"] = self.instance.last_modified_ts.isoformat()
        self.fields["properties"].help_text = (
            "Any JSON object. Top-level keys may not start with “$” (system fields). "
            "Saving replaces the properties with these (FORCE_REPLACE)."
        )

    def clean_properties(self):
        edited = self.cleaned_data.get("properties")
        if self.instance.pk:
            edited = js_rounding_undone(edited, stored=self.instance.properties)
        return properties_checked(edited)

    def clean_loaded_last_modified_ts(self) -> datetime | None:
        raw = self.cleaned_data.get("loaded_last_modified_ts") or ""
        if not raw:
            return None
        try:
            return datetime.fromisoformat(raw)
        except ValueError as error:
            raise ValidationError("The page's version stamp is unreadable: reload it.") from error

    def clean(self):
        cleaned = super().clean()
        loaded = cleaned.get("loaded_last_modified_ts")
        # The instance was read from the database for this request: the stored version.
        if self.instance.pk and loaded is not None and loaded != self.instance.last_modified_ts:
            last = profile_changes(profile=self.instance).first()
            raise ValidationError(
                STALE_MESSAGE.format(
                    who=change_author(last),
                    when=moment_text(self.instance.last_modified_ts),
                ),
                code="STALE_PROFILE",
            )
        return cleaned


class ProfileAddForm(ScopedModelForm):
    """Adding a profile: a compartment, an optional account, and the point it belongs to."""

    point = forms.CharField(
        required=False,
        label="User point",
        help_text=(
            "The UUID of an existing user point of the compartment's datamart. Leave it empty "
            "to use the point whose account identifier is the account id below, created with "
            "that identifier if there is none."
        ),
    )

    class Meta:
        model = UserProfile
        fields = ["compartment", "user_account_id", "properties"]
        widgets = {"properties": PropertiesEditorWidget()}
        labels = {"properties": "Custom properties", "user_account_id": "Account id"}
        help_texts = {"user_account_id": "Empty: an anonymous profile."}

    def clean_properties(self):
        return properties_checked(self.cleaned_data.get("properties"))

    def clean_user_account_id(self):
        value = self.cleaned_data.get("user_account_id")
        return value if value else None

    def clean(self):
        cleaned = super().clean()
        compartment: Compartment | None = cleaned.get("compartment")
        if compartment is None:
            return cleaned
        account = cleaned.get("user_account_id")
        raw_point = (cleaned.get("point") or "").strip()
        point: UserPoint | None = None
        if raw_point:
            point = UserPoint.objects.filter(
                pk=_uuid_or_none(raw_point), datamart_id=compartment.datamart_id
            ).first()
            if point is None:
                self.add_error("point", "No such user point in the compartment's datamart.")
                return cleaned
        elif account:
            point = user_point_find(
                datamart=compartment.datamart,
                identifier=AccountIdentifier(account, compartment.compartment_id),
            )
        else:
            self.add_error("point", "Give a user point, or an account id to find or create one.")
            return cleaned
        if point is not None:
            existing = profile_find(
                user_point=point, compartment=compartment, user_account_id=account
            )
            if existing is not None:
                url = reverse("admin:profiles_userprofile_change", args=[existing.pk])
                raise ValidationError(
                    format_html(
                        "This user point already has a profile in this compartment with this "
                        'account: <a href="{}">edit it</a> instead.',
                        url,
                    ),
                    code="PROFILE_EXISTS",
                )
        cleaned["resolved_point"] = point
        return cleaned


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


IDENTIFIER_KINDS = [
    ("account", "Account id (in a compartment)"),
    ("email", "Email hash"),
    ("agent", "User agent id"),
]


class UserPointForm(ScopedModelForm):
    """A user point is created with one identifier; more can be attached on its page."""

    identifier_kind = forms.ChoiceField(choices=IDENTIFIER_KINDS, required=False, label="Kind")
    identifier_value = forms.CharField(
        max_length=255, required=False, label="Identifier", help_text="Matched exactly."
    )
    identifier_compartment = forms.ModelChoiceField(
        queryset=Compartment.objects.all(),
        required=False,
        label="Compartment",
        help_text="For an account id; empty: the datamart's default compartment.",
    )
    identifier_email = forms.EmailField(
        required=False, label="Clear email", help_text="Optional, for an email hash."
    )

    class Meta:
        model = UserPoint
        fields = ["datamart"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Not `pk`: a point's UUID is given when the object is built, before it is saved.
        self.adding = self.instance._state.adding
        if self.adding:
            self.fields["identifier_kind"].required = True
            self.fields["identifier_value"].required = True
        self.fields["identifier_compartment"].label_from_instance = lambda c: (
            f"{c.datamart.name} ({c.datamart_id}) · {c.name} ({c.compartment_id})"
        )

    def clean(self):
        cleaned = super().clean()
        kind, value = cleaned.get("identifier_kind"), (cleaned.get("identifier_value") or "")
        value = value.strip()
        # Adding: the datamart chosen, None when it is no choice (its field error says why).
        datamart = cleaned.get("datamart") if self.adding else self.instance.datamart
        if not kind or not value or datamart is None:
            cleaned["identifier"] = None
            return cleaned
        compartment = cleaned.get("identifier_compartment")
        if kind == "account":
            if compartment is not None and compartment.datamart_id != datamart.id:
                self.add_error("identifier_compartment", "This compartment is in another datamart.")
                return cleaned
            identifier = AccountIdentifier(
                value, compartment.compartment_id if compartment else None
            )
        elif kind == "email":
            identifier = EmailIdentifier(value)
        else:
            identifier = UserAgentIdentifier(value)
        owner = user_point_find(datamart=datamart, identifier=identifier)
        if owner is not None:
            url = reverse("admin:profiles_userpoint_change", args=[owner.pk])
            self.add_error(
                "identifier_value",
                ValidationError(
                    format_html(
                        'This identifier already belongs to <a href="{}">user point {}</a>.',
                        url,
                        owner.pk,
                    ),
                    code="IDENTIFIER_EXISTS",
                ),
            )
        cleaned["identifier"] = identifier
        return cleaned


MAX_LIST_COLUMNS = 8


class PropertyPathsField(forms.CharField):
    """Property paths typed one per line (commas work too), stored as a list of strings.

    Each path is checked as the profile list's property filter reads it; a bad one is named.
    """

    widget = forms.Textarea(
        attrs={"rows": 4, "cols": 40, "placeholder": "firstname\nnewsletter_options.subscribed"}
    )

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        if isinstance(value, str) and value.startswith("["):
            try:  # the stored JSON, as a model form hands it over
                return "\n".join(str(item) for item in json.loads(value))
            except (ValueError, TypeError):
                return value
        return value

    def to_python(self, value) -> list[str]:
        text = (super().to_python(value) or "").strip()
        if text.startswith(("[", '"')):  # a JSON list, as the API and older forms send it
            try:
                paths = json.loads(text)
            except ValueError:
                paths = None
            if not isinstance(paths, list) or not all(isinstance(path, str) for path in paths):
                raise ValidationError(
                    "Give property paths one per line, or a JSON list of them such as "
                    '["firstname"].'
                )
            return paths
        return [path.strip() for path in text.replace(",", "\n").splitlines() if path.strip()]

    def validate(self, value: list[str]) -> None:
        if len(value) > MAX_LIST_COLUMNS:
            raise ValidationError(
                f"At most {MAX_LIST_COLUMNS} columns keep the list readable ({len(value)} given)."
            )
        for path in value:
            try:
                property_path_parse(path)
            except ProfileError as error:
                named = error.message if path in error.message else f"“{path}”: {error.message}"
                raise ValidationError(named) from error


class CompartmentForm(ScopedModelForm):
    list_properties = PropertyPathsField(
        required=False,
        label="Profile list columns",
        help_text=(
            "Property paths shown as columns in the profile list, one per line (or separated by "
            "commas), e.g. firstname or newsletter_options.subscribed; dots go into nested "
            f"objects. At most {MAX_LIST_COLUMNS}. Empty: the first keys of each profile."
        ),
    )

    class Meta:
        model = Compartment
        fields = ["datamart", "compartment_id", "name", "is_default", "list_properties"]
        labels = {"is_default": "Default compartment"}
        help_texts = {
            "is_default": "Ticked, this compartment becomes the datamart's default in place of "
            "the current one: profiles that name no compartment (API, import lines) go here."
        }

    make_default = False

    def clean(self):
        cleaned = super().clean()
        # One default per datamart: the services move the default in one transaction. Kept off
        # the instance, so the model's own check does not refuse a second default before they
        # run ("Constraint one_default_compartment is violated", on the add form).
        self.make_default = bool(cleaned.pop("is_default", False))
        return cleaned


class ApiTokenAddForm(ScopedModelForm):
    class Meta:
        model = ApiToken
        fields = ["datamart", "name"]


class DatamartAddForm(ScopedModelForm):
    default_compartment_id = forms.IntegerField(
        min_value=0, initial=1, help_text="The id of its first compartment, the default one."
    )

    class Meta:
        model = Datamart
        fields = ["id", "name"]
