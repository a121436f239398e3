#!/usr/bin/env bash
# One night on a real Airflow 3 deployment: CeleryExecutor, two Celery workers, Redis as the broker,
# the local PostgreSQL as Airflow's metadata database. Proves that the nightly DAG's mapped tasks
# (ingest ×parts, detect ×shards, sheets ×chunks) spread over both workers and that the leads are
# exactly those of a single `wastetrack run`.
#
#   bash scripts/celery_night.sh [WORKDIR]          (default /tmp/wastetrack-celery; ~3-5 min)
#
# Needs: the airflow extra (bash scripts/setup.sh dev,airflow), PostgreSQL on 127.0.0.1:5432 with a
# superuser reachable as `postgres` (trust auth, as on the project's machines), Redis on 127.0.0.1:6379.
# Every process it starts is stopped on exit. Prints the hostnames that ran each mapped task.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${1:-/tmp/wastetrack-celery}
PY=$ROOT/.venv/bin/python
AIRFLOW=$ROOT/.venv/bin/airflow
DB=wastetrack_airflow
rm -rf "$WORK"; mkdir -p "$WORK/logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

psql() { command psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
psql -c "DROP DATABASE IF EXISTS $DB" && psql -c "CREATE DATABASE $DB"
redis-cli -h 127.0.0.1 -p 6379 -n 5 FLUSHDB >/dev/null

export AIRFLOW_HOME=$WORK/airflow
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg://postgres@127.0.0.1:5432/$DB
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=postgresql+psycopg_async://postgres@127.0.0.1:5432/$DB
export AIRFLOW__CELERY__BROKER_URL=redis://127.0.0.1:6379/5
export AIRFLOW__CELERY__RESULT_BACKEND=db+postgresql+psycopg://postgres@127.0.0.1:5432/$DB
export AIRFLOW__CELERY__WORKER_CONCURRENCY=2
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:8788/execution/
export AIRFLOW__API__PORT=8788
# manual triggers only: no scheduled run of yesterday's date competes for max_active_runs=1
export WASTETRACK_NIGHTLY_SCHEDULE=none
export AIRFLOW__API_AUTH__JWT_SECRET=$(head -c 24 /dev/urandom | base64)
export AIRFLOW__CORE__FERNET_KEY=$($PY -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")
export AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL=5
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
# the night's data, on storage both workers see (one machine here; NFS or object storage in production)
export WASTETRACK_LANDING=$WORK/landing WASTETRACK_OUT=$WORK/out WASTETRACK_WORK=$WORK/shared-work
export WASTETRACK_SHARDS=4   # force several shards on a small night, so both workers get some
DATE=2026-11-19

echo "simulating a small landing…"
$ROOT/.venv/bin/wastetrack simulate --out "$WORK/landing" --truth "$WORK/truth.json" --seed 5 --trucks 24 --days 1 >/dev/null
echo "airflow db migrate…"
$AIRFLOW db migrate >"$WORK/logs/migrate.log" 2>&1

$AIRFLOW api-server --port 8788 >"$WORK/logs/api.log" 2>&1 & pids+=($!)
$AIRFLOW scheduler >"$WORK/logs/scheduler.log" 2>&1 & pids+=($!)
$AIRFLOW dag-processor >"$WORK/logs/dag-processor.log" 2>&1 & pids+=($!)
# each worker reports its own name as the task instances' hostname (two machines, in effect)
mkdir -p "$WORK/hostname"
printf 'import os\n\ndef name():\n    return os.environ["WT_WORKER"]\n' >"$WORK/hostname/wt_hostname.py"
port=8794
for w in worker-a worker-b; do
  # two workers on one machine: each its own log-server port (on two machines both use the default)
  WT_WORKER=$w PYTHONPATH=$WORK/hostname AIRFLOW__CORE__HOSTNAME_CALLABLE=wt_hostname.name \
    AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$port \
    $AIRFLOW celery worker --celery-hostname "$w@%h" >"$WORK/logs/$w.log" 2>&1 & pids+=($!)
  port=$((port + 1))
done

echo "waiting for the DAG to be parsed…"
for _ in $(seq 1 90); do
  if $AIRFLOW dags list 2>/dev/null | grep -q wastetrack_nightly; then break; fi
  sleep 2
done
$AIRFLOW dags unpause wastetrack_nightly >/dev/null
RUN_ID=celery-$DATE-$(date +%s)
$AIRFLOW dags trigger wastetrack_nightly --run-id "$RUN_ID" -c "{\"date\": \"$DATE\"}" >/dev/null
echo "triggered $RUN_ID; waiting…"
state=""
for _ in $(seq 1 300); do
  state=$(psql -d $DB -c "SELECT state FROM dag_run WHERE run_id = '$RUN_ID'")
  [[ $state == success || $state == failed ]] && break
  sleep 2
done
echo "DAG run state: $state"
echo "task instances by worker:"
psql -d $DB -F ' | ' -c "SELECT task_id, count(*), string_agg(DISTINCT split_part(hostname, '.', 1), ',')
                          FROM task_instance WHERE run_id = '$RUN_ID' GROUP BY task_id ORDER BY task_id"
workers=$(psql -d $DB -c "SELECT count(DISTINCT hostname) FROM task_instance WHERE run_id = '$RUN_ID'
                          AND task_id IN ('night.ingest', 'night.detect') AND hostname <> ''")
echo "ingest and detect tasks ran on $workers workers"
[[ $state == success ]] || { tail -n 40 "$WORK"/logs/scheduler.log; exit 1; }
[[ $workers -ge 2 ]] || { echo "expected the mapped tasks on both workers" >&2; exit 1; }

echo "the same night in one process…"
$ROOT/.venv/bin/wastetrack run --landing "$WORK/landing" --date $DATE --out "$WORK/single" -q >/dev/null
$PY - "$WORK/out/$DATE/leads.geojson" "$WORK/single/$DATE/leads.geojson" <<'EOF'
import json, sys
a, b = (sorted((f["properties"]["lead_id"], f["properties"]["kind"], f["properties"]["vehicle_id"],
                f["properties"]["primary_liaison_id"]) for f in json.load(open(p))["features"]) for p in sys.argv[1:])
print(f"celery: {len(a)} leads, single process: {len(b)} leads, identical: {a == b}")
sys.exit(0 if a == b else 1)
EOF
