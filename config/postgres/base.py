"""Django's PostgreSQL backend, for pooled web processes: a connection taken from the pool is
checked, and when it turns out dead every idle connection of the pool is checked at once.

After a Postgres restart or failover all of the pool's connections are dead. Django's own answer
(CONN_HEALTH_CHECKS with a pool) is psycopg_pool's check on getconn, which sleeps with a backoff
after each dead connection it meets (1 s, 2 s, 4 s...): a test measured the first request after a
restart at 15 s. Here the first dead one makes the pool sweep the rest (`pool.check()`) and the
request waits for one fresh connection instead.
"""

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        pool = self.pool
        if pool is None:
            return connection
        # Bounded: a connection another thread returns during the sweep may be dead too.
        for attempt in range(pool.max_size + 1):
            try:
                ConnectionPool.check_connection(connection)
                return connection
            except Exception:
                pool.putconn(connection)  # the pool sees it broken, drops it and opens a replacement
                if attempt == 0:
                    pool.check()  # and drops every other idle connection the restart killed
                connection = super().get_new_connection(conn_params)
        return connection  # the pool's own timeout and errors apply from here
