"""django-q2's ORM broker (the default set-up's queue) with its per-task statements compiled once.

The stock broker builds each statement through the ORM: per task one UPDATE to take it (so two
clusters never run it both) and one DELETE to acknowledge it, plus a SELECT per round. In a flash
sale that was over a tenth of the task cluster's CPU, several times what the database spent on
them. Here the same statements, with the same conditions (a task is taken only while its lock is
what was read, so another cluster taking it first is seen), go as SQL prepared once; a round's
UPDATEs share one transaction (on SQLite one write instead of one per task). Selected by
Q_CLUSTER["broker_class"] in settings wherever the ORM broker is used.
"""
from __future__ import annotations

from time import sleep

from django.db import connections, transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ


class CompiledORM(ORM):
    _statements: dict[str, tuple[str, str, str]] = {}

    @classmethod
    def _sql(cls, using: str) -> tuple[str, str, str]:
        statements = cls._statements.get(using)
        if statements is None:
            q = connections[using].ops.quote_name
            table, key, lock = q(OrmQ._meta.db_table), q("key"), q("lock")
            statements = cls._statements[using] = (
                f"SELECT {q('id')}, {q('payload')}, {lock} FROM {table} WHERE {key} = %s AND {lock} < %s "
                f"ORDER BY {q('id')} LIMIT %s",
                f"UPDATE {table} SET {lock} = %s WHERE {q('id')} = %s AND {lock} = %s",
                f"DELETE FROM {table} WHERE {q('id')} = %s",
            )
        return statements

    def dequeue(self):
        self.get_connection()  # as the stock broker: stale connections closed first
        using = Conf.ORM
        db = connections[using]
        take = self._sql(using)[1]
        rows = self._waiting(using)
        if not rows:
            sleep(Conf.POLL)  # empty queue, spare the CPU
            return None
        until = db.ops.adapt_datetimefield_value(self.timeout(None))
        taken = []
        with transaction.atomic(using=using), db.cursor() as cursor:
            for pk, payload, lock in rows:
                cursor.execute(take, [until, pk, lock])
                if cursor.rowcount:  # else another cluster was faster
                    taken.append((pk, payload))
        return taken

    def _waiting(self, using: str) -> list[tuple]:
        """(id, payload, lock) of up to Q_BULK tasks whose lock has run out, oldest first."""
        db = connections[using]
        with db.cursor() as cursor:
            cursor.execute(self._sql(using)[0], [self.list_key, db.ops.adapt_datetimefield_value(timezone.now()),
                                                 Conf.BULK])
            return cursor.fetchall()

    def delete(self, task_id):
        self.get_connection()
        using = Conf.ORM
        with connections[using].cursor() as cursor:
            cursor.execute(self._sql(using)[2], [task_id])
