-- wastetrack store, PostGIS, migration 003: the same as sqlite_003_liaison_loop.sql (the liaison loop:
-- delivery, replies, escalation). Key columns COLLATE "C" (same order as SQLite).

ALTER TABLE feedback ADD COLUMN to_adcode text;

CREATE TABLE mails (
    mail_id    text COLLATE "C" NOT NULL PRIMARY KEY,
    date       text COLLATE "C" NOT NULL,
    purpose    text NOT NULL,
    liaison_id text COLLATE "C" NOT NULL,
    email      text NOT NULL,
    subject    text NOT NULL,
    body_note  text,
    status     text NOT NULL,
    attempts   integer NOT NULL,
    created_at timestamptz NOT NULL,
    sent_at    timestamptz,
    error      text,
    message_id text NOT NULL
);
CREATE INDEX mails_status ON mails (status, created_at);
CREATE INDEX mails_liaison ON mails (liaison_id, date);

CREATE TABLE mail_leads (
    mail_id    text COLLATE "C" NOT NULL REFERENCES mails (mail_id),
    lead_id    text COLLATE "C" NOT NULL,
    liaison_id text COLLATE "C" NOT NULL,
    role       text NOT NULL,
    PRIMARY KEY (mail_id, lead_id)
);
CREATE INDEX mail_leads_lead ON mail_leads (lead_id, liaison_id);

CREATE TABLE lead_events (
    event_id   text COLLATE "C" NOT NULL PRIMARY KEY,
    lead_id    text COLLATE "C" NOT NULL,
    at         timestamptz NOT NULL,
    event      text NOT NULL,
    liaison_id text,
    adcode     text,
    detail     text,
    source     text NOT NULL,
    ref        text
);
CREATE INDEX lead_events_lead ON lead_events (lead_id, at);

CREATE TABLE lead_state (
    lead_id            text COLLATE "C" NOT NULL PRIMARY KEY,
    phase              text NOT NULL,
    handler_liaison_id text,
    handler_adcode     text,
    case_no            text,
    penalty_cny        double precision,
    delivered_at       timestamptz,
    received_at        timestamptz,
    verdict_at         timestamptz,
    filed_at           timestamptz,
    closed_at          timestamptz,
    due_date           text,
    overdue            boolean,
    escalation         integer,
    state              jsonb NOT NULL,
    updated_at         timestamptz NOT NULL
);

CREATE TABLE reply_files (
    sha256           text COLLATE "C" NOT NULL PRIMARY KEY,
    file_name        text NOT NULL,
    imported_at      timestamptz NOT NULL,
    rows_total       integer NOT NULL,
    rows_accepted    integer NOT NULL,
    rows_quarantined integer NOT NULL
);

CREATE TABLE reply_quarantine (
    source      text COLLATE "C" NOT NULL,
    row         integer NOT NULL,
    lead_id     text,
    liaison_id  text,
    reason      text NOT NULL,
    imported_at timestamptz NOT NULL,
    PRIMARY KEY (source, row)
);
