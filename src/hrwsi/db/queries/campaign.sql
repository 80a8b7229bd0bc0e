-- Reprocessing campaigns (hrwsi campaign …). The scope of a campaign is the inputs of its
-- condition whose measurement_day (v1 integer YYYYMMDD) lies in [from_day, to_day], on its
-- tiles (none listed: every tile).

-- name: campaign_condition_exists
-- Whether a processing condition exists (a campaign names one).
SELECT EXISTS (SELECT 1 FROM hrwsi.processing_condition WHERE name = %(condition)s)

-- name: campaign_create
-- Record a new campaign (state created) with its scope size, and log its creation: one statement.
WITH new AS (
    INSERT INTO hrwsi.campaign
        (condition, from_day, to_day, tiles, priority, created_by, inputs_in_scope)
    SELECT %(condition)s, %(from_day)s::date, %(to_day)s::date, %(tiles)s::text[],
           %(priority)s::integer, %(actor)s,
           (SELECT count(*)
            FROM hrwsi.input AS i
            WHERE i.processing_condition_name = %(condition)s
              AND i.measurement_day BETWEEN to_char(%(from_day)s::date, 'YYYYMMDD')::bigint
                                        AND to_char(%(to_day)s::date, 'YYYYMMDD')::bigint
              AND (cardinality(%(tiles)s::text[]) = 0 OR i.tile = ANY(%(tiles)s::text[])))
    RETURNING id, created_at, inputs_in_scope
), logged AS (
    INSERT INTO hrwsi.campaign_transition (campaign_id, at, actor, action, from_state, to_state)
    SELECT id, created_at, %(actor)s, 'create', NULL, 'created' FROM new
)
SELECT id, inputs_in_scope FROM new

-- name: campaign_lock
-- Lock one campaign row for a transition (FOR UPDATE: transitions of a campaign serialise).
SELECT state FROM hrwsi.campaign WHERE id = %(id)s FOR UPDATE

-- name: campaign_move
-- Move a locked campaign from one state to another, stamp it, and log the transition.
WITH moved AS (
    UPDATE hrwsi.campaign AS c SET
        state = %(to_state)s::text,
        released_at = CASE WHEN %(to_state)s::text = 'released'
                           THEN coalesce(c.released_at, clock_timestamp())
                           ELSE c.released_at END,
        suspended_at = CASE WHEN %(to_state)s::text = 'suspended'
                            THEN clock_timestamp() ELSE c.suspended_at END,
        cancelled_at = CASE WHEN %(to_state)s::text = 'cancelled'
                            THEN clock_timestamp() ELSE c.cancelled_at END,
        done_at = CASE WHEN %(to_state)s::text = 'done'
                       THEN clock_timestamp() ELSE c.done_at END
    WHERE c.id = %(id)s AND c.state = %(from_state)s::text
    RETURNING c.id
)
INSERT INTO hrwsi.campaign_transition (campaign_id, actor, action, from_state, to_state, reason)
SELECT id, %(actor)s, %(action)s, %(from_state)s, %(to_state)s, %(reason)s FROM moved
RETURNING id, at

-- name: campaign_list
-- Every campaign, newest first.
SELECT id, condition, from_day, to_day, tiles, priority, state, created_at, released_at,
       inputs_in_scope
FROM hrwsi.campaign
ORDER BY id DESC

-- name: campaign_get
-- One campaign with every column.
SELECT id, condition, from_day, to_day, tiles, priority, state, created_at, created_by,
       released_at, suspended_at, cancelled_at, done_at, inputs_in_scope, tasks_created,
       tasks_done, tasks_failed
FROM hrwsi.campaign
WHERE id = %(id)s

-- name: campaign_transitions
-- The transitions log of one campaign, oldest first.
SELECT at, actor, action, from_state, to_state, reason
FROM hrwsi.campaign_transition
WHERE campaign_id = %(id)s
ORDER BY id

-- name: campaign_progress
-- Progress over the inputs in scope: done (a product), failed (every task ended, no product),
-- and done since the first release (v1 products.creation_date is UTC).
WITH c AS (
    SELECT condition, from_day, to_day, tiles, released_at FROM hrwsi.campaign WHERE id = %(id)s
), scope AS (
    SELECT i.id
    FROM c
    JOIN hrwsi.input AS i ON i.processing_condition_name = c.condition
    WHERE i.measurement_day BETWEEN to_char(c.from_day, 'YYYYMMDD')::bigint
                                AND to_char(c.to_day, 'YYYYMMDD')::bigint
      AND (cardinality(c.tiles) = 0 OR i.tile = ANY(c.tiles))
), per_input AS (
    SELECT s.id,
           (SELECT min(p.creation_date) FROM hrwsi.products AS p
            WHERE p.input_fk_id = s.id
              AND p.creation_date >= coalesce((SELECT released_at FROM c) AT TIME ZONE 'UTC',
                                              'infinity'::timestamp)) AS made_since_release,
           EXISTS (SELECT 1 FROM hrwsi.products AS p WHERE p.input_fk_id = s.id) AS has_product,
           EXISTS (SELECT 1 FROM hrwsi.processing_tasks AS pt WHERE pt.input_fk_id = s.id)
               AS has_task,
           EXISTS (SELECT 1 FROM hrwsi.processing_tasks AS pt
                   WHERE pt.input_fk_id = s.id AND pt.has_ended IS NOT TRUE) AS has_live_task
    FROM scope AS s
)
SELECT count(*) AS total,
       count(*) FILTER (WHERE has_product) AS done,
       count(*) FILTER (WHERE NOT has_product AND has_task AND NOT has_live_task) AS failed,
       count(*) FILTER (WHERE made_since_release IS NOT NULL) AS done_since_release
FROM per_input
