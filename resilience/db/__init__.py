"""The database side of the harness: schema, seed catalogue, UUID migration.

:mod:`~resilience.db.schema` applies the tables and SQL functions,
:mod:`~resilience.db.catalogue` builds and seeds the micro-service catalogue
and historical jobs, :mod:`~resilience.db.migration` runs the UUID backfill.
"""
