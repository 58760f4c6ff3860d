"""OpenAPI pieces of the import endpoints: the examples and the raw upload's request body.

The hooks and the shared parameters stay in profiles.api.schema, which serves every app's API.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample

from imports.formats import FileFormat, format_spec

# A CRM export's headers mapped to SPEC §3: the e-mail finds the person, the account names the
# profile (one identifier a line). The tests upload files through this very mapping.
CRM_COLUMN_MAPPING_EXAMPLE = {
    "Customer ID": "$user_account_id",
    "E-mail": {"to": "email_hash", "transform": "sha256_email"},
    "First Name": "first_name",
    "Birth date": "birth_date:str",
    "Opt-in": "newsletter.opt_in:bool",
    "Notes": None,
}
DOCUMENT_IMPORT_EXAMPLE = OpenApiExample(
    "NDJSON profile import",
    request_only=True,
    value={
        "document_type": "USER_PROFILE",
        "mime_type": "APPLICATION_X_NDJSON",
        "encoding": "utf-8",
        "name": "CRM daily profiles",
    },
)
CSV_DOCUMENT_IMPORT_EXAMPLE = OpenApiExample(
    "CRM export as it comes, with a column mapping",
    request_only=True,
    value={
        "document_type": "USER_PROFILE",
        "mime_type": "TEXT_CSV",
        "encoding": "utf-8",
        "name": "CRM export",
        "column_mapping": CRM_COLUMN_MAPPING_EXAMPLE,
    },
)
COLUMN_MAPPING_PATCH_EXAMPLE = OpenApiExample(
    "Change the column mapping",
    request_only=True,
    value={"column_mapping": {"Customer ID": "user_account_id", "E-mail": None}},
)
NDJSON_UPLOAD_EXAMPLE = OpenApiExample(
    "NDJSON upload",
    request_only=True,
    media_type="application/x-ndjson",
    value=(
        '{"operation":"UPSERT","compartment_id":1606,"user_account_id":"c9879698769OIUYOIY9879879",'
        '"update_strategy":"PARTIAL_UPDATE","user_profile":{"$compartment_id":1606,'
        '"$user_account_id":"c9879698769OIUYOIY9879879","firstname":"David",'
        '"newsletter_options":{"subscribed":true,"preferred_periods":"MONTHLY"}}}\n'
        '{"operation":"DELETE","email_hash":"9d8ef3b2a1c0"}\n'
    ),
)
_BINARY = {"type": "string", "format": "binary"}
UPLOAD_REQUEST = {format_spec(file_format).content_type: _BINARY for file_format in FileFormat}
