#!/usr/bin/env bash
# Make a real PostGIS available for the store tests on a Debian 12 machine, idempotently:
#   install postgresql-15-postgis-3 if missing, start the 15/main cluster if it is down,
#   create the role and the test database, install the postgis extension (as superuser).
# Prints the test URL on stdout (everything else goes to stderr), so callers do
#   export WASTETRACK_TEST_PG="$(bash scripts/postgis.sh)"
# Each test then works in a fresh schema of that database (tests/conftest.py).
# Overrides: PG_VERSION, PG_CLUSTER, WASTETRACK_TEST_PG_ROLE, WASTETRACK_TEST_PG_DB.
set -euo pipefail

pg_version=${PG_VERSION:-15}
cluster=${PG_CLUSTER:-main}
role=${WASTETRACK_TEST_PG_ROLE:-wastetrack}
db=${WASTETRACK_TEST_PG_DB:-wastetrack_test}

say() { echo "postgis.sh: $*" >&2; }
as_postgres() { runuser -u postgres -- "$@"; }

# Engineers and CI jobs may run this at the same time: one at a time past this point. Commands that
# may leave a daemon behind (the postmaster) get `9>&-`, or it would hold the lock for ever.
exec 9>"${TMPDIR:-/tmp}/wastetrack-postgis.lock"
flock 9

if [[ ! -f /usr/share/postgresql/$pg_version/extension/postgis.control ]]; then
  say "installing postgresql-$pg_version-postgis-3"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "postgresql-$pg_version-postgis-3" >/dev/null 2>&1 9>&-; then
    apt-get update -qq >/dev/null 9>&-  # a clean machine may have no package lists yet
    apt-get install -y -qq "postgresql-$pg_version-postgis-3" >/dev/null 9>&-
  fi
fi

# pg_lsclusters -h: "15 main 5432 online postgres /var/lib/... /var/log/..."
line=$(pg_lsclusters -h "$pg_version" "$cluster" 2>/dev/null || true)
[[ -n $line ]] || { say "no PostgreSQL cluster $pg_version/$cluster (create it: pg_createcluster $pg_version $cluster)"; exit 1; }
read -r _ _ port status _ <<<"$line"
if [[ $status != online* ]]; then
  say "starting cluster $pg_version/$cluster"
  pg_ctlcluster --skip-systemctl-redirect "$pg_version" "$cluster" start >&2 9>&-
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$port" || { say "PostgreSQL $pg_version/$cluster does not answer on port $port"; exit 1; }

psql_su() { PGOPTIONS="--client-min-messages=warning" as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" "$@"; }

# The role owns the test database, so it can create and drop the per-test schemas itself.
psql_su -d postgres -v role="$role" -v db="$db" <<'SQL' >/dev/null
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
# PostGIS is not a trusted extension: the superuser installs it, into public.
psql_su -d "$db" -c 'CREATE EXTENSION IF NOT EXISTS postgis SCHEMA public' >/dev/null

echo "postgresql://$role@127.0.0.1:$port/$db"
