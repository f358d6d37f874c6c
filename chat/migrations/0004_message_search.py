"""Full-text search over message bodies: SQLite FTS5, or a PostgreSQL GIN index."""

from django.db import migrations

SQLITE_UP = [
    "CREATE VIRTUAL TABLE chatcluster_message_fts USING fts5("
    "body, content='chatcluster_message', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER chatcluster_message_fts_insert AFTER INSERT ON chatcluster_message BEGIN "
    "INSERT INTO chatcluster_message_fts(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER chatcluster_message_fts_delete AFTER DELETE ON chatcluster_message BEGIN "
    "INSERT INTO chatcluster_message_fts(chatcluster_message_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER chatcluster_message_fts_update AFTER UPDATE OF body ON chatcluster_message BEGIN "
    "INSERT INTO chatcluster_message_fts(chatcluster_message_fts, rowid, body) VALUES ('delete', old.id, old.body); "
    "INSERT INTO chatcluster_message_fts(rowid, body) VALUES (new.id, new.body); END",
    "INSERT INTO chatcluster_message_fts(rowid, body) SELECT id, body FROM chatcluster_message",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS chatcluster_message_fts_insert",
    "DROP TRIGGER IF EXISTS chatcluster_message_fts_delete",
    "DROP TRIGGER IF EXISTS chatcluster_message_fts_update",
    "DROP TABLE IF EXISTS chatcluster_message_fts",
]
POSTGRES_UP = [
    "CREATE INDEX chatcluster_message_body_search ON chatcluster_message USING GIN (to_tsvector('simple', body))"
]
POSTGRES_DOWN = ["DROP INDEX IF EXISTS chatcluster_message_body_search"]


def run(statements: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def apply(apps, schema_editor):  # type: ignore[no-untyped-def]
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("chatcluster", "0003_room_is_direct")]

    operations = [
        migrations.RunPython(
            run({"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP}),
            run({"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN}),
        )
    ]
