"""SPEC §2's strategies as PostgreSQL functions, for merges done inside the database (a COPY
into a staging table merged by one UPDATE … FROM): `profiles_merge(existing, incoming,
strategy, merge_objects)` is `profiles.merge.apply_merge` over jsonb, held equal to it by
tests/profiles/test_sql_merge.py. jsonb's `=` is `merge.json_equal` (1 = 1.0, true <> 1, a
number the decimal its text says). PostgreSQL only; SQLite keeps the Python merge.
"""

from django.db import migrations

FUNCTIONS = """
CREATE OR REPLACE FUNCTION profiles_append_missing(existing jsonb, incoming jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  result jsonb := existing;
  item jsonb;
BEGIN
  -- N's elements not in E, nor appended already, after E's (E's own duplicates kept).
  FOR item IN SELECT value FROM jsonb_array_elements(incoming) LOOP
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(result) AS kept(value)
                   WHERE kept.value = item) THEN
      result := result || jsonb_build_array(item);
    END IF;
  END LOOP;
  RETURN result;
END $$;

CREATE OR REPLACE FUNCTION profiles_deep_merge(existing jsonb, incoming jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  result jsonb := existing;
  key text;
  new_value jsonb;
  old_value jsonb;
BEGIN
  FOR key, new_value IN SELECT * FROM jsonb_each(incoming) LOOP
    old_value := result -> key;
    IF old_value IS NULL THEN
      result := result || jsonb_build_object(key, new_value);
    ELSIF jsonb_typeof(old_value) = 'object' AND jsonb_typeof(new_value) = 'object' THEN
      result := result || jsonb_build_object(key, profiles_deep_merge(old_value, new_value));
    ELSIF jsonb_typeof(old_value) = 'array' AND jsonb_typeof(new_value) = 'array' THEN
      result := result || jsonb_build_object(key, profiles_append_missing(old_value, new_value));
    ELSE
      result := result || jsonb_build_object(key, new_value);  -- null is a value
    END IF;
  END LOOP;
  RETURN result;
END $$;

CREATE OR REPLACE FUNCTION profiles_contains(candidate jsonb, pattern jsonb)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  key text;
  sub_pattern jsonb;
BEGIN
  -- PARTIAL_DELETE's match: objects by recursive subset, anything else by equality.
  IF jsonb_typeof(pattern) <> 'object' THEN
    RETURN candidate = pattern;
  END IF;
  IF jsonb_typeof(candidate) <> 'object' THEN
    RETURN false;
  END IF;
  FOR key, sub_pattern IN SELECT * FROM jsonb_each(pattern) LOOP
    IF candidate -> key IS NULL OR NOT profiles_contains(candidate -> key, sub_pattern) THEN
      RETURN false;
    END IF;
  END LOOP;
  RETURN true;
END $$;

CREATE OR REPLACE FUNCTION profiles_partial_delete(existing jsonb, incoming jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  result jsonb := '{}';
  key text;
  old_value jsonb;
  pattern jsonb;
BEGIN
  FOR key, old_value IN SELECT * FROM jsonb_each(existing) LOOP
    pattern := incoming -> key;
    IF pattern IS NULL THEN
      result := result || jsonb_build_object(key, old_value);
    ELSIF jsonb_typeof(old_value) = 'object' AND jsonb_typeof(pattern) = 'object' THEN
      result := result || jsonb_build_object(key, profiles_partial_delete(old_value, pattern));
    ELSIF jsonb_typeof(old_value) = 'array' AND jsonb_typeof(pattern) = 'array' THEN
      result := result || jsonb_build_object(key, (
        SELECT coalesce(jsonb_agg(item.value ORDER BY item.position), '[]'::jsonb)
        FROM jsonb_array_elements(old_value) WITH ORDINALITY AS item(value, position)
        WHERE NOT EXISTS (
          SELECT 1 FROM jsonb_array_elements(pattern) AS p(value)
          WHERE profiles_contains(item.value, p.value))));
    END IF;  -- otherwise the key goes, whatever N's value
  END LOOP;
  RETURN result;
END $$;

CREATE OR REPLACE FUNCTION profiles_merge(
  existing jsonb, incoming jsonb, strategy text, merge_objects boolean
) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF existing IS NULL THEN  -- creation: any UPSERT creates the profile, except PARTIAL_DELETE
    RETURN CASE WHEN strategy = 'PARTIAL_DELETE' THEN NULL ELSE incoming END;
  ELSIF strategy = 'FORCE_REPLACE' THEN
    RETURN incoming;
  ELSIF strategy = 'PARTIAL_DELETE' THEN
    RETURN profiles_partial_delete(existing, incoming);
  ELSIF strategy = 'PARTIAL_UPDATE' AND merge_objects THEN
    RETURN profiles_deep_merge(existing, incoming);
  ELSIF strategy = 'PARTIAL_UPDATE' THEN
    RETURN existing || incoming;
  END IF;
  RAISE EXCEPTION USING MESSAGE = 'not an update strategy: ' || coalesce(strategy, 'null');
END $$;
"""

DROP = """
DROP FUNCTION IF EXISTS profiles_merge(jsonb, jsonb, text, boolean);
DROP FUNCTION IF EXISTS profiles_partial_delete(jsonb, jsonb);
DROP FUNCTION IF EXISTS profiles_contains(jsonb, jsonb);
DROP FUNCTION IF EXISTS profiles_deep_merge(jsonb, jsonb);
DROP FUNCTION IF EXISTS profiles_append_missing(jsonb, jsonb);
"""


def create_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTIONS)


def drop_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("profiles", "0010_cache_table_for_rate_limits")]

    operations = [migrations.RunPython(create_functions, drop_functions)]
