"""Sample import files offered on the import page, in the layouts of SPEC §3 (CSV) and §4
(NDJSON): each imports as it is into any datamart (its lines name no compartment, so they go
to the default one), and shows the usual cases: an account, nested and typed properties, an
email-identified anonymous profile, a PARTIAL_DELETE."""

from __future__ import annotations

from imports.formats import FileFormat

SAMPLE_CSV = (
    "operation,user_account_id,$user_account_id,firstname,age:int,"
    "newsletter_options.subscribed:bool,newsletter_options.preferred_periods,tags:json\r\n"
    'UPSERT,sample-1001,sample-1001,David,41,true,MONTHLY,"[""vip"", ""web""]"\r\n'
    "UPSERT,sample-1002,sample-1002,Eve,35,false,,\r\n"
    "UPSERT,sample-1003,sample-1003,Zoé,,,WEEKLY,[]\r\n"
)

SAMPLE_NDJSON_LINES = (
    '{"operation": "UPSERT", "user_account_id": "sample-1001", "user_profile": '
    '{"$user_account_id": "sample-1001", "firstname": "David", "age": 41, '
    '"newsletter_options": {"subscribed": true, "preferred_periods": "MONTHLY"}, '
    '"tags": ["vip", "web"]}}',
    '{"operation": "UPSERT", "email_hash": "5d41402abc4b2a76b9719d911017c592", '
    '"user_profile": {"firstname": "Eve"}}',
    '{"operation": "UPSERT", "user_account_id": "sample-1001", "update_strategy": '
    '"PARTIAL_DELETE", "user_profile": {"$user_account_id": "sample-1001", "tags": ["web"]}}',
)
SAMPLE_NDJSON = "\n".join(SAMPLE_NDJSON_LINES) + "\n"

SAMPLES: dict[FileFormat, str] = {FileFormat.CSV: SAMPLE_CSV, FileFormat.NDJSON: SAMPLE_NDJSON}


def sample_file(file_format: FileFormat) -> tuple[str, bytes]:
    """(file name, content) of the sample of that format."""
    return f"profiles-sample.{file_format.value.lower()}", SAMPLES[file_format].encode("utf-8")
