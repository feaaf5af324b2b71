"""An index for rescoring's keyset batches: the pending responses of one item in id order.

``assessments.rescoring`` takes each batch as ``WHERE item_id = %s AND scored_key_version < %s AND
id > %s ORDER BY id LIMIT n``; with ``(item_id, id)`` PostgreSQL reads exactly the batch's rows in
order instead of sorting every pending response of the item at every batch. Written as SQL (no model
state changes), so that it is the same on SQLite and PostgreSQL and ``makemigrations`` sees nothing.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("assessments", "0002_rescoring_and_item_statistics"),
    ]

    operations = [
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS response_item_id_keyset ON assessments_response (item_id, id)",
            reverse_sql="DROP INDEX IF EXISTS response_item_id_keyset",
        ),
    ]
