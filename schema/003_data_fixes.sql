-- 003: the record of data fixes (alex.fix): one row per run, and every row
-- change a run made, captured by triggers so that SQL written by hand is
-- recorded as well as changes made through the models.  The values a status
-- or an operation may take are declared in lua/alex/schema/, as every
-- table's rules are.
--
-- The triggers record only inside a transaction that names its run in the
-- setting alex.fix_run (set with set_config(..., true), so it ends with the
-- transaction).  Their WHEN clause tests it without calling the function,
-- so writes by anyone else, the Alex agents included, pay next to nothing.

CREATE TABLE data_fix_runs (
    id             BIGSERIAL PRIMARY KEY,
    name           VARCHAR(200) NOT NULL,
    checksum       CHAR(64) NOT NULL,
    arguments      JSONB NOT NULL DEFAULT '{}',
    arguments_key  TEXT NOT NULL,
    status         VARCHAR(20) NOT NULL DEFAULT 'running',
    run_by         VARCHAR(255) NOT NULL,
    host           VARCHAR(255),
    pid            INTEGER,
    process_start  VARCHAR(40),
    boot_id        VARCHAR(64),
    batch_size     INTEGER,
    rows_total     BIGINT,
    rows_done      BIGINT NOT NULL DEFAULT 0,
    rows_changed   BIGINT NOT NULL DEFAULT 0,
    checkpoint     JSONB,
    error_message  TEXT,
    started_at     TIMESTAMP NOT NULL DEFAULT NOW(),
    finished_at    TIMESTAMP,
    updated_at     TIMESTAMP DEFAULT NOW()
);

-- "Was this fix applied with these arguments?" and "its last run".
CREATE INDEX idx_data_fix_runs_name ON data_fix_runs(name, arguments_key, id);

CREATE TABLE data_fix_changes (
    id          BIGSERIAL PRIMARY KEY,
    run_id      BIGINT NOT NULL REFERENCES data_fix_runs(id) ON DELETE CASCADE,
    table_name  VARCHAR(63) NOT NULL,
    operation   CHAR(1) NOT NULL,
    old_row     JSONB,
    new_row     JSONB,
    changed_at  TIMESTAMP NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX idx_data_fix_changes_run ON data_fix_changes(run_id, id);

CREATE TRIGGER update_data_fix_runs_updated_at BEFORE UPDATE ON data_fix_runs
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- Records one row change for the run named in alex.fix_run, if any.
CREATE FUNCTION data_fix_capture()
RETURNS TRIGGER AS $$
DECLARE
    run TEXT := current_setting('alex.fix_run', true);
BEGIN
    IF TG_OP = 'UPDATE' AND to_jsonb(OLD) = to_jsonb(NEW) THEN
        RETURN NULL;
    END IF;
    INSERT INTO data_fix_changes (run_id, table_name, operation, old_row, new_row)
    VALUES (run::BIGINT, TG_TABLE_NAME, left(TG_OP, 1),
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- The same capture trigger, data_fix_capture_<table>, on every table a fix
-- may change.
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'instruments', 'accounts', 'positions', 'jobs', 'price_history',
                             'agent_logs'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I FOR EACH ROW'
                       ' WHEN (current_setting(''alex.fix_run'', true) <> '''')'
                       ' EXECUTE FUNCTION data_fix_capture()', 'data_fix_capture_' || t, t);
    END LOOP;
END;
$$;
