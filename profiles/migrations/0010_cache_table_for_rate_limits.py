"""The database cache's table (settings.CACHE_TABLE): the API's rate limits are counted there
when no CACHE_URL names Redis, so every web process shares one count."""

from django.conf import settings
from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", settings.CACHE_TABLE, database=schema_editor.connection.alias)


def drop_cache_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(settings.CACHE_TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("profiles", "0009_history_execution_index")]

    operations = [migrations.RunPython(create_cache_table, drop_cache_table)]
