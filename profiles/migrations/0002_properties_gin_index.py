"""A GIN index on the custom properties, on PostgreSQL only (SQLite has no such index)."""

from django.db import migrations

INDEX = "profiles_userprofile_properties_gin"


def create_gin_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # jsonb_path_ops: smaller and faster for the containment (@>) lookups that property filters use.
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON profiles_userprofile "
            "USING gin (properties jsonb_path_ops)"
        )


def drop_gin_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("profiles", "0001_initial")]

    operations = [migrations.RunPython(create_gin_index, drop_gin_index)]
