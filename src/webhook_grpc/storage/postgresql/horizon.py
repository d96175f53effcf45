"""The feed's visibility horizon on PostgreSQL (docs/FEED_ORDERING.md)."""

from __future__ import annotations

# The oldest transaction of *this* database that may still commit: the snapshot's in-progress
# ids, less those that pg_stat_activity shows running in another database, else the snapshot's
# xmax (every id from there on is invisible to the snapshot anyway). The cluster-wide
# pg_snapshot_xmin would let any write transaction anywhere on the server (a CREATE DATABASE,
# another application's batch job) hold this feed back. An id that ended between the snapshot
# and the pg_stat_activity read is not attributed elsewhere, so it counts: the error is only
# ever towards waiting. backend_xid is 32 bits; it is compared with the id's low 32 bits.
HORIZON_SQL = """(SELECT coalesce(
        (SELECT min(xip::text::bigint) FROM pg_snapshot_xip(s.snap) AS xip
         WHERE NOT EXISTS (
             SELECT 1 FROM pg_stat_activity AS a
             WHERE a.backend_xid::text::bigint = xip::text::bigint % 4294967296
               AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))),
        pg_snapshot_xmax(s.snap)::text::bigint)
     FROM (SELECT pg_current_snapshot() AS snap) AS s)"""
