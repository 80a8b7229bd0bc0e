"""A store per service: each owns its connections (:class:`hrwsi.db.holder.ConnectionHolder`),
its transactions, the translation of ``psycopg`` errors into :class:`hrwsi.domain.errors.
DatabaseError` and the mapping from rows to frozen dataclasses. Each has an in-memory fake
(``Fake...Store``) that passes the same contract tests as the PostgreSQL one."""
