-- The services' heartbeat (hrwsi.service_heartbeat, migration 0080).

-- name: heartbeat_beat
-- Say this process is alive: insert its row or refresh last_seen.
INSERT INTO hrwsi.service_heartbeat (process_id, host, pid, services, started_at, version)
VALUES (%(process_id)s, %(host)s, %(pid)s, %(services)s, %(started_at)s, %(version)s)
ON CONFLICT (process_id) DO UPDATE
SET last_seen = clock_timestamp(), services = EXCLUDED.services

-- name: heartbeat_forget
-- This process stops gracefully: remove its row.
DELETE FROM hrwsi.service_heartbeat WHERE process_id = %(process_id)s

-- name: heartbeat_seen
-- Every process that ran a service, freshest first, with the seconds since it was last seen.
SELECT process_id, host, pid, services, started_at, last_seen, version,
       extract(epoch FROM clock_timestamp() - last_seen)::float8 AS age_s
FROM hrwsi.service_heartbeat
WHERE %(service)s = ANY(services)
ORDER BY last_seen DESC
