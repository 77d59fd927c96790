-- 002: daily closing prices and the agents' log lines.
-- Neither table has an updated_at column (rows are written once; a corrected
-- close replaces the row through ON CONFLICT (symbol, price_date)), so no
-- updated_at trigger is attached here.

-- One closing price per instrument and day; removed with its instrument.
CREATE TABLE price_history (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    symbol       VARCHAR(20) NOT NULL REFERENCES instruments(symbol) ON DELETE CASCADE,
    price_date   DATE NOT NULL,
    close_price  DECIMAL(12,4) NOT NULL,
    created_at   TIMESTAMP DEFAULT NOW(),
    UNIQUE (symbol, price_date)
);

-- The UNIQUE constraint indexes (symbol, price_date) for per-symbol ranges;
-- this one serves "all closes of a given day".
CREATE INDEX idx_price_history_date ON price_history(price_date);

-- What each agent did for a job; removed with the job.
CREATE TABLE agent_logs (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id      UUID NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    agent_name  VARCHAR(50) NOT NULL,
    level       VARCHAR(10) NOT NULL DEFAULT 'info',
    message     TEXT NOT NULL,
    detail      JSONB,
    created_at  TIMESTAMP DEFAULT NOW()
);

CREATE INDEX idx_agent_logs_job ON agent_logs(job_id, created_at);
CREATE INDEX idx_agent_logs_created ON agent_logs(created_at);
