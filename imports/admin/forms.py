"""Forms of the import and export screens: every choice limited to the user's datamarts."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from import_export.forms import ImportExportFormBase, ImportForm

from imports.column_mapping import (
    TRANSFORMS,
    ColumnMapping,
    ColumnTarget,
    column_mapping_parse,
    column_mapping_problems,
)
from imports.formats import FileFormat, detect_format, extensions_help
from imports.models import DocumentImport
from imports.readers import FileError
from imports.readers.text import resolve_encoding
from imports.services import ImportRefused, column_mapping_checked
from profiles.admin.scoping import ScopedModelForm, scope_queryset
from profiles.merge import STRATEGY_WORDS, Strategy
from profiles.models import Datamart

STRATEGY_CHOICES = [
    (strategy.value, f"{STRATEGY_WORDS[strategy]} ({strategy.value})")
    for strategy in (Strategy.PARTIAL_UPDATE, Strategy.FORCE_REPLACE, Strategy.PARTIAL_DELETE)
]


class DatamartChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Datamart) -> str:
        return str(obj)


class DocumentImportChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: DocumentImport) -> str:
        return f"{obj.datamart.name} ({obj.datamart_id}) · {obj}"


def checked_encoding(value: str) -> str:
    try:
        return resolve_encoding(value.strip())
    except FileError as problem:
        if problem.code == "UNKNOWN_ENCODING":
            message = f"“{value}” is not an encoding Python knows: try utf-8, latin-1 or cp1252."
        else:
            message = problem.message
        raise forms.ValidationError(message) from None


def _format_choices(formats) -> list[tuple[str, str]]:
    return [(str(index), format_class().get_title()) for index, format_class in enumerate(formats)]


def _scope_datamarts(
    form: forms.Form, datamart_ids: list[int] | None, *, only_id: int | None = None
) -> Datamart | None:
    """Limit the form's datamart choices to the user's (and to `only_id` when given); the only
    one is chosen, and returned. Several start on the field's empty choice: the user picks one."""
    field = form.fields["datamart"]
    field.queryset = scope_queryset(Datamart.objects.all(), datamart_ids, "id")
    if only_id is not None:
        field.queryset = field.queryset.filter(pk=only_id)
    datamarts = list(field.queryset[:2])
    if len(datamarts) != 1:
        return None
    field.empty_label = None
    form.initial["datamart"] = datamarts[0].pk
    return datamarts[0]


class ProfileImportForm(ImportForm):
    """Step 1: the file and how to read it. The format comes from the name unless chosen."""

    import_file = forms.FileField(
        label="File",
        help_text="CSV, XLSX, JSON (an array of commands) or NDJSON (one command per line).",
    )
    datamart = DatamartChoiceField(
        queryset=Datamart.objects.none(),
        empty_label="Choose the datamart to import into",
        help_text="The datamart whose profiles the file writes.",
    )
    document_import = DocumentImportChoiceField(
        queryset=DocumentImport.objects.none(),
        required=False,
        empty_label="Back-office uploads (one definition per format, made on first use)",
        help_text="The import definition this upload is recorded under.",
    )
    encoding = forms.CharField(
        max_length=32,
        initial="utf-8",
        help_text="Of a text file (CSV, JSON, NDJSON). UTF-8 accepts a byte order mark.",
    )
    update_strategy = forms.ChoiceField(
        choices=STRATEGY_CHOICES,
        initial=Strategy.PARTIAL_UPDATE.value,
        label="Default update strategy",
        help_text="For UPSERT lines that choose none (no update_strategy, force_replace).",
    )
    merge_objects = forms.BooleanField(
        required=False,
        initial=True,
        label="Merge objects deeply",
        help_text="With Update: nested objects are merged key by key and arrays "
        "appended, instead of replaced.",
    )
    empty_cell_is_empty_string = forms.BooleanField(
        required=False,
        initial=False,
        label='Keep empty cells as ""',
        help_text='CSV, XLSX: an empty cell of a text column sets its key to "" instead of '
        "leaving the key out of the line.",
    )
    field_order = [
        "resource",
        "import_file",
        "format",
        "datamart",
        "document_import",
        "encoding",
        "update_strategy",
        "merge_objects",
        "empty_cell_is_empty_string",
    ]

    def __init__(self, formats, resources, *, datamart_ids=None, **kwargs):
        super().__init__(formats, resources, **kwargs)
        self.formats = formats
        fmt = self.fields["format"]
        fmt.required = False
        fmt.label = "Format"
        fmt.choices = [("", "Detect from the file name"), *_format_choices(formats)]
        fmt.help_text = extensions_help([format_class.file_format for format_class in formats])
        _scope_datamarts(self, datamart_ids)
        self.fields["document_import"].queryset = scope_queryset(
            DocumentImport.objects.select_related("datamart"), datamart_ids, "datamart_id"
        )

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]  # Django's field refuses an empty file
        cap = settings.IMPORT_MAX_FILE_BYTES
        if upload.size > cap:
            raise forms.ValidationError(
                f"The file takes {filesizeformat(upload.size)}, over the limit of "
                f"{filesizeformat(cap)}: split it, or import it with the import_profiles command."
            )
        return upload

    def clean_encoding(self):
        return checked_encoding(self.cleaned_data["encoding"])

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("import_file")
        document_import = cleaned.get("document_import")
        datamart = cleaned.get("datamart")
        if (
            document_import is not None
            and datamart is not None
            and document_import.datamart_id != datamart.pk
        ):
            self.add_error(
                "document_import",
                f"“{document_import.name}” belongs to another datamart than {datamart}.",
            )
        chosen = cleaned.get("format")
        file_format = None
        if chosen not in (None, ""):
            file_format = self.formats[int(chosen)].file_format
        elif upload is not None:
            file_format = detect_format(upload.name, getattr(upload, "content_type", None))
            if file_format is None:
                self.add_error(
                    "format",
                    f"The format of “{upload.name}” cannot be told from its name: choose "
                    "CSV, XLSX, JSON or NDJSON.",
                )
        cleaned["file_format"] = file_format
        return cleaned


class ProfileConfirmImportForm(forms.Form):
    """Step 2: the staged upload to run, named by its token (its options stay in the session)."""

    token = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput)


TRANSFORM_LABELS = {
    "sha256_email": "sha256_email (hash)",
    "trim": "trim",
    "lower": "lower",
}


@dataclass(frozen=True)
class MappingRow:
    header: str
    samples: list[str]
    target: forms.BoundField
    transform: forms.BoundField
    ignore: forms.BoundField


class ColumnMappingForm(forms.Form):
    """The mapping step: for each source header a target (or Ignore) and a transform.

    Its `mapping` is checked by `imports.column_mapping.column_mapping_parse`, the API's rule;
    a problem is shown on the header it names.
    """

    token = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput)

    def __init__(
        self,
        *args,
        headers: list[str],
        proposal: dict[str, ColumnTarget],
        samples: dict[str, list[str]],
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.headers = headers
        self.samples = samples
        self.mapping: ColumnMapping | None = None
        transforms = [("", "none"), *((name, TRANSFORM_LABELS[name]) for name in TRANSFORMS)]
        for index, header in enumerate(headers):
            target = proposal.get(header, ColumnTarget(None))
            self.fields[f"target_{index}"] = forms.CharField(
                required=False,
                max_length=1000,
                initial=target.to or "",
                label=header,
                widget=forms.TextInput(
                    attrs={"list": "mapping-targets", "class": "vTextField mapping-target"}
                ),
            )
            self.fields[f"transform_{index}"] = forms.ChoiceField(
                choices=transforms,
                required=False,
                initial=target.transform or "",
                label="Transform",
            )
            self.fields[f"ignore_{index}"] = forms.BooleanField(
                required=False, initial=target.to is None, label="Ignore"
            )

    @property
    def rows(self) -> list[MappingRow]:
        return [
            MappingRow(
                header=header,
                samples=self.samples.get(header, []),
                target=self[f"target_{index}"],
                transform=self[f"transform_{index}"],
                ignore=self[f"ignore_{index}"],
            )
            for index, header in enumerate(self.headers)
        ]

    def clean(self):
        cleaned = super().clean()
        raw: dict[str, object] = {}
        for index, header in enumerate(self.headers):
            if cleaned.get(f"ignore_{index}"):
                raw[header] = None
                continue
            to = (cleaned.get(f"target_{index}") or "").strip()
            if not to:
                self.add_error(f"target_{index}", "Choose a target, or tick Ignore.")
                continue
            transform = cleaned.get(f"transform_{index}") or None
            raw[header] = {"to": to, "transform": transform} if transform else to
        # Every row's problem at once, not one a submit.
        for problem in column_mapping_problems(raw):
            index = self.headers.index(problem.header) if problem.header in self.headers else None
            self.add_error(None if index is None else f"target_{index}", problem.message)
        if not self.errors:
            self.mapping = column_mapping_parse(raw)
        return cleaned


class ProfileExportForm(ImportExportFormBase):
    """The format, and the datamart (an export holds one, so it can be imported back there).

    The datamart is decided for the user, in a hidden input, when only one can be meant: the
    user sees one, or the list's filters name one (`list_datamart_id`: its datamart filter, or
    its compartment filter's datamart). Otherwise the user chooses it in a select that starts
    on no datamart, so the file never holds one the user did not pick.
    """

    datamart = DatamartChoiceField(
        queryset=Datamart.objects.none(),
        empty_label="Choose the datamart to export",
        help_text="The list shows the profiles of several datamarts: an export holds those of "
        "one, so it can be imported back there.",
    )

    def __init__(self, formats, resources, *, datamart_ids=None, list_datamart_id=None, **kwargs):
        super().__init__(formats, resources, **kwargs)
        self.formats = formats
        self.fields["format"].choices = _format_choices(formats)
        self.fields["format"].initial = "0"
        self.fields["format"].help_text = (
            "CSV and XLSX: one row per profile, typed headers; NDJSON and JSON: FORCE_REPLACE "
            "commands. Each re-imports to the same profiles."
        )
        # The datamart the export holds when it is decided for the user, else None.
        self.datamart = _scope_datamarts(self, datamart_ids, only_id=list_datamart_id)
        if self.datamart is not None:
            self.fields["datamart"].widget = forms.HiddenInput()

    @property
    def file_format(self) -> FileFormat:
        return self.formats[int(self.cleaned_data["format"])].file_format


class DocumentImportForm(ScopedModelForm):
    class Meta:
        model = DocumentImport
        fields = ("datamart", "name", "document_type", "mime_type", "encoding", "column_mapping")

    def clean_encoding(self):
        return checked_encoding(self.cleaned_data["encoding"])

    def clean(self):
        cleaned = super().clean()
        try:
            cleaned["column_mapping"] = column_mapping_checked(
                mime_type=cleaned.get("mime_type") or "",
                column_mapping=cleaned.get("column_mapping"),
            )
        except ImportRefused as problem:
            self.add_error("column_mapping", problem.message)
        return cleaned
