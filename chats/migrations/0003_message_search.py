"""Full-text search over message content: a GIN index on PostgreSQL, an FTS5 table kept in sync
by triggers on SQLite (see knowledge.fulltext)."""

from django.db import migrations

from chats.search import MESSAGE_INDEX
from knowledge.fulltext import index_operation


class Migration(migrations.Migration):
    dependencies = [("chats", "0002_message_tools")]

    operations = [index_operation(MESSAGE_INDEX)]
