"""Re-encrypt every connection's credentials under the newest key of LEDGERLINE_CONNECTION_KEYS."""
from django.core.management.base import BaseCommand
from django.db import connection, transaction


class Command(BaseCommand):
    help = "Re-encrypt connection credentials with the first key of LEDGERLINE_CONNECTION_KEYS (safe to run twice)."

    def handle(self, *args, **opts):
        from integrations.models import Connection
        from integrations.secrets import rotate

        table = Connection._meta.db_table
        count = 0
        with transaction.atomic(), connection.cursor() as cursor:
            # The stored tokens themselves: MultiFernet.rotate decrypts with any key, encrypts with the first.
            cursor.execute(f"SELECT id, credentials FROM {table} WHERE credentials <> ''")  # noqa: S608 - table name
            for pk, token in cursor.fetchall():
                cursor.execute(f"UPDATE {table} SET credentials = %s WHERE id = %s", [rotate(token), pk])  # noqa: S608
                count += 1
        self.stdout.write(f"{count} connection(s) re-encrypted under the newest key")
