-- Schema of the reference service and the harness. Idempotent: safe to apply
-- any number of times, also concurrently (an advisory lock serialises runs).
SELECT pg_advisory_xact_lock(7265636);  -- "res" in hex-ish: one lock id for schema changes

-- Micro services: the catalogue the lookup resolves slug -> UUID against.
CREATE TABLE IF NOT EXISTS micro_services (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL,
    name        text NOT NULL DEFAULT '',
    category    text NOT NULL,
    subcategory text NOT NULL DEFAULT '',
    is_active   boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT micro_services_slug_format CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$')
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_micro_services_slug ON micro_services (slug);
CREATE INDEX IF NOT EXISTS idx_micro_services_category ON micro_services (category, subcategory);

-- Jobs: micro_id is the slug as posted; micro_uuid is null when the lookup fell back.
CREATE TABLE IF NOT EXISTS jobs (
    id              bigserial PRIMARY KEY,
    micro_id        text NOT NULL,
    micro_uuid      uuid NULL REFERENCES micro_services (id) ON DELETE SET NULL,
    answers         jsonb NOT NULL DEFAULT '{}'::jsonb,
    status          text NOT NULL DEFAULT 'pending',
    idempotency_key text NULL,
    correlation_id  text NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_jobs_idempotency_key ON jobs (idempotency_key);
CREATE INDEX IF NOT EXISTS idx_jobs_micro_id ON jobs (micro_id);
CREATE INDEX IF NOT EXISTS idx_jobs_micro_uuid ON jobs (micro_uuid);
CREATE INDEX IF NOT EXISTS idx_jobs_without_uuid ON jobs (id) WHERE micro_uuid IS NULL;
CREATE INDEX IF NOT EXISTS idx_jobs_created_at ON jobs (created_at);

-- Analytics: lookup metrics in batches (event 'uuid_lookup', category 'wizard_flow').
CREATE TABLE IF NOT EXISTS analytics_events (
    id             bigserial PRIMARY KEY,
    event_name     text NOT NULL,
    category       text NOT NULL,
    properties     jsonb NOT NULL DEFAULT '{}'::jsonb,
    correlation_id text NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_analytics_events_name_time
    ON analytics_events (event_name, created_at);
CREATE INDEX IF NOT EXISTS idx_analytics_events_category ON analytics_events (category);

-- One row per (job, outcome): re-runs never log the same outcome twice.
CREATE TABLE IF NOT EXISTS uuid_migration_log (
    id            bigserial PRIMARY KEY,
    job_id        bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    micro_id      text NOT NULL,
    micro_uuid    uuid NULL,
    status        text NOT NULL CHECK (status IN ('success', 'skipped', 'failed')),
    error_message text NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uuid_migration_log_once UNIQUE (job_id, status)
);
CREATE INDEX IF NOT EXISTS idx_uuid_migration_log_status ON uuid_migration_log (status);

-- Circuit-breaker transitions (closed/open/half_open).
CREATE TABLE IF NOT EXISTS circuit_breaker_events (
    id            bigserial PRIMARY KEY,
    breaker_name  text NOT NULL,
    from_state    text NOT NULL,
    to_state      text NOT NULL,
    reason        text NULL,
    failure_count integer NOT NULL DEFAULT 0,
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_circuit_breaker_events_name_time
    ON circuit_breaker_events (breaker_name, occurred_at);
CREATE INDEX IF NOT EXISTS idx_circuit_breaker_events_to_state
    ON circuit_breaker_events (to_state);

-- Failure-detector snapshots per component.
CREATE TABLE IF NOT EXISTS failure_metrics (
    id            bigserial PRIMARY KEY,
    component     text NOT NULL,
    operation     text NOT NULL DEFAULT '',
    total_count   integer NOT NULL DEFAULT 0,
    failure_count integer NOT NULL DEFAULT 0,
    failure_rate  double precision NOT NULL DEFAULT 0,
    health        text NOT NULL DEFAULT 'healthy'
        CHECK (health IN ('healthy', 'degraded', 'critical')),
    window_start  timestamptz NULL,
    window_end    timestamptz NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_failure_metrics_component_time
    ON failure_metrics (component, recorded_at);

-- Classified errors (resilience.errors.ResilienceError.to_dict()).
CREATE TABLE IF NOT EXISTS error_events (
    id             bigserial PRIMARY KEY,
    error_type     text NOT NULL,
    message        text NOT NULL,
    user_message   text NULL,
    severity       text NOT NULL DEFAULT 'error'
        CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    component      text NULL,
    retryable      boolean NOT NULL DEFAULT false,
    recovery       text NULL,
    correlation_id text NULL,
    job_id         bigint NULL,
    stack_trace    text NULL,
    context        jsonb NOT NULL DEFAULT '{}'::jsonb,
    resolved       boolean NOT NULL DEFAULT false,
    resolved_at    timestamptz NULL,
    occurred_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_error_events_occurred_at ON error_events (occurred_at);
CREATE INDEX IF NOT EXISTS idx_error_events_severity_resolved ON error_events (severity, resolved);
CREATE INDEX IF NOT EXISTS idx_error_events_correlation_id ON error_events (correlation_id);
CREATE INDEX IF NOT EXISTS idx_error_events_type ON error_events (error_type);
-- job_id is jobs.id without a foreign key: an error record outlives its job.
CREATE INDEX IF NOT EXISTS idx_error_events_job_id ON error_events (job_id);

-- Backfill micro_uuid for jobs that lack it, one batch per call.
--   success: the slug is known; the job gets its UUID
--   skipped: the slug is unknown; the job keeps micro_uuid NULL
--   failed:  updating the job raised; the error is logged, the batch goes on
-- Jobs are visited in id order after p_after_id; the result's last_job_id is
-- where the next batch starts (NULL when nothing was left). Each (job,
-- outcome) is logged at most once, so re-running is safe.
CREATE OR REPLACE FUNCTION migrate_job_uuids(p_batch_size integer DEFAULT NULL,
                                             p_after_id bigint DEFAULT 0)
RETURNS TABLE (processed integer, succeeded integer, skipped integer, failed integer,
               last_job_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    j record;
    v_uuid uuid;
BEGIN
    processed := 0; succeeded := 0; skipped := 0; failed := 0; last_job_id := NULL;
    FOR j IN
        SELECT id, micro_id FROM jobs
        WHERE micro_uuid IS NULL AND id > COALESCE(p_after_id, 0)
        ORDER BY id
        LIMIT p_batch_size
    LOOP
        processed := processed + 1;
        last_job_id := j.id;
        SELECT ms.id INTO v_uuid FROM micro_services ms WHERE ms.slug = j.micro_id;
        IF v_uuid IS NULL THEN
            skipped := skipped + 1;
            INSERT INTO uuid_migration_log (job_id, micro_id, status)
            VALUES (j.id, j.micro_id, 'skipped')
            ON CONFLICT ON CONSTRAINT uuid_migration_log_once DO NOTHING;
            CONTINUE;
        END IF;
        BEGIN
            UPDATE jobs SET micro_uuid = v_uuid, updated_at = now() WHERE id = j.id;
            succeeded := succeeded + 1;
            INSERT INTO uuid_migration_log (job_id, micro_id, micro_uuid, status)
            VALUES (j.id, j.micro_id, v_uuid, 'success')
            ON CONFLICT ON CONSTRAINT uuid_migration_log_once DO NOTHING;
        EXCEPTION WHEN OTHERS THEN
            failed := failed + 1;
            INSERT INTO uuid_migration_log (job_id, micro_id, micro_uuid, status, error_message)
            VALUES (j.id, j.micro_id, v_uuid, 'failed', SQLERRM)
            ON CONFLICT ON CONSTRAINT uuid_migration_log_once DO NOTHING;
        END;
    END LOOP;
    RETURN NEXT;
END;
$$;

-- Progress of the backfill. Adds up: total_jobs = jobs_with_uuid +
-- jobs_without_uuid, and jobs_without_uuid = unknown_slug_jobs + pending_jobs.
-- The logged_* columns count migration_log rows per outcome.
CREATE OR REPLACE FUNCTION get_uuid_migration_stats()
RETURNS TABLE (total_jobs bigint, jobs_with_uuid bigint, jobs_without_uuid bigint,
               unknown_slug_jobs bigint, pending_jobs bigint,
               logged_success bigint, logged_skipped bigint, logged_failed bigint,
               migration_percentage numeric)
LANGUAGE sql STABLE AS $$
    WITH j AS (
        SELECT count(*) AS total,
               count(*) FILTER (WHERE jobs.micro_uuid IS NOT NULL) AS with_uuid,
               count(*) FILTER (WHERE jobs.micro_uuid IS NULL) AS without_uuid,
               count(*) FILTER (WHERE jobs.micro_uuid IS NULL AND NOT EXISTS (
                   SELECT 1 FROM micro_services ms WHERE ms.slug = jobs.micro_id
               )) AS unknown
        FROM jobs
    ), l AS (
        SELECT count(*) FILTER (WHERE status = 'success') AS s,
               count(*) FILTER (WHERE status = 'skipped') AS k,
               count(*) FILTER (WHERE status = 'failed') AS f
        FROM uuid_migration_log
    )
    SELECT j.total, j.with_uuid, j.without_uuid, j.unknown, j.without_uuid - j.unknown,
           l.s, l.k, l.f,
           CASE WHEN j.total = 0 THEN 100.0
                ELSE round(100.0 * j.with_uuid / j.total, 2) END
    FROM j, l;
$$;

-- Alert transitions of the service's rules (resilience.service.alerts): one row
-- each time a rule starts (firing) or stops (resolved) holding.
CREATE TABLE IF NOT EXISTS alert_events (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    state       text NOT NULL CHECK (state IN ('firing', 'resolved')),
    severity    text NOT NULL,
    metric      text NOT NULL,
    value       double precision NOT NULL,
    threshold   double precision NOT NULL,
    window_s    double precision NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_alert_events_name_time ON alert_events (name, occurred_at);
