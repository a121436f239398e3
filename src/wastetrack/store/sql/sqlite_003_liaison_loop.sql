-- wastetrack store, SQLite, migration 003: the liaison loop (delivery, replies, escalation).
-- (PostGIS: postgis_003_liaison_loop.sql, the same tables.)

-- Contract v1.1: a transfer (移送) or an entrusted investigation (委托调查取证) names the other county.
-- ALTER TABLE … ADD COLUMN appends: tables.TABLES lists it last for that reason.
ALTER TABLE feedback ADD COLUMN to_adcode TEXT;

-- The outbox and the record of every e-mail to a liaison. A mail is written 'pending' in the same
-- transaction as the decision that needs it (a night's delivery, an escalation), then sent; only a
-- server's acceptance makes it 'sent'. What failed stays 'failed' (with the error) and is sent by the
-- next run, under the same Message-ID (so a mail system can drop a copy sent twice after a crash).
CREATE TABLE mails (
    mail_id    TEXT NOT NULL PRIMARY KEY,
    date       TEXT NOT NULL,                -- the night it is about
    purpose    TEXT NOT NULL,                -- leads, reminder, escalation, dispute, transfer, assist, notice
    liaison_id TEXT NOT NULL,
    email      TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body_note  TEXT,                         -- why it is sent (Chinese), shown above the leads
    status     TEXT NOT NULL,                -- pending, sent, failed
    attempts   INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    sent_at    TEXT,
    error      TEXT,                         -- the last failure, one line, never a password
    message_id TEXT NOT NULL
) STRICT;
CREATE INDEX mails_status ON mails (status, created_at);
CREATE INDEX mails_liaison ON mails (liaison_id, date);

-- Which leads a mail carried, to whom, as what (primary 主办, cc 抄送, city/province 提级, transfer 移送, …).
CREATE TABLE mail_leads (
    mail_id    TEXT NOT NULL REFERENCES mails (mail_id),
    lead_id    TEXT NOT NULL,
    liaison_id TEXT NOT NULL,
    role       TEXT NOT NULL,
    PRIMARY KEY (mail_id, lead_id)
) STRICT;
CREATE INDEX mail_leads_lead ON mail_leads (lead_id, liaison_id);

-- Each lead's lifecycle, append-only: deliveries, accepted replies, reminders, escalations, transfers,
-- entrusted investigations, disputes. event_id is derived from what happened, so deciding twice
-- records once. detail is Chinese, for the sheet's 处理记录.
CREATE TABLE lead_events (
    event_id   TEXT NOT NULL PRIMARY KEY,
    lead_id    TEXT NOT NULL,
    at         TEXT NOT NULL,
    event      TEXT NOT NULL,
    liaison_id TEXT,                         -- who acted (a reply) or who was addressed (a reminder)
    adcode     TEXT,                         -- the jurisdiction concerned
    detail     TEXT,
    source     TEXT NOT NULL,                -- mail, reply, escalate
    ref        TEXT                          -- the mail, the reply's key
) STRICT;
CREATE INDEX lead_events_lead ON lead_events (lead_id, at);

-- Derived from leads + lead_events (lifecycle.py) on every follow-up, never patched: where each lead
-- stands, who handles it, its case, its next deadline. state: the whole derivation as JSON.
CREATE TABLE lead_state (
    lead_id            TEXT NOT NULL PRIMARY KEY,
    phase              TEXT NOT NULL,        -- new, delivered, received, case_filed, not_established,
                                             -- closed, transferred, disputed
    handler_liaison_id TEXT,
    handler_adcode     TEXT,
    case_no            TEXT,
    penalty_cny        REAL,
    delivered_at       TEXT,
    received_at        TEXT,
    verdict_at         TEXT,
    filed_at           TEXT,
    closed_at          TEXT,
    due_date           TEXT,                 -- the next deadline (YYYY-MM-DD), empty when none
    overdue            INTEGER,
    escalation         INTEGER,              -- rungs climbed on the current deadline (0 none, 1 reminded, …)
    state              TEXT NOT NULL,
    updated_at         TEXT NOT NULL
) STRICT;

-- Returned XLSX reply sheets, each imported once (by content).
CREATE TABLE reply_files (
    sha256           TEXT NOT NULL PRIMARY KEY,
    file_name        TEXT NOT NULL,
    imported_at      TEXT NOT NULL,
    rows_total       INTEGER NOT NULL,
    rows_accepted    INTEGER NOT NULL,
    rows_quarantined INTEGER NOT NULL
) STRICT;

-- Replies not accepted, with the reason: from a liaison the lead was never routed to, about an unknown
-- lead, an unknown status, … source names the file (and row) or the feedback reply.
CREATE TABLE reply_quarantine (
    source      TEXT NOT NULL,
    row         INTEGER NOT NULL,
    lead_id     TEXT,
    liaison_id  TEXT,
    reason      TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    PRIMARY KEY (source, row)
) STRICT;
