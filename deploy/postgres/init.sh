#!/bin/bash
# Runs once, on the first start of the postgres container (empty data volume),
# from /docker-entrypoint-initdb.d. Creates one role per application and the
# three databases the stack needs:
#   temporal, temporal_visibility  -> owned by role "temporal" (Temporal server)
#   billing                        -> owned by role "billing"  (billing worker)
# Passwords come from the container environment (see docker-compose.yml).
set -euo pipefail

: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD must be set}"
: "${BILLING_DB_PASSWORD:?BILLING_DB_PASSWORD must be set}"

psql -v ON_ERROR_STOP=1 \
     --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-postgres}" \
     -v temporal_pw="$TEMPORAL_DB_PASSWORD" \
     -v billing_pw="$BILLING_DB_PASSWORD" <<-'EOSQL'
	SELECT format('CREATE ROLE temporal LOGIN PASSWORD %L', :'temporal_pw')
	WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'temporal')\gexec
	SELECT format('CREATE ROLE billing LOGIN PASSWORD %L', :'billing_pw')
	WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'billing')\gexec

	SELECT 'CREATE DATABASE temporal OWNER temporal'
	WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'temporal')\gexec
	SELECT 'CREATE DATABASE temporal_visibility OWNER temporal'
	WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'temporal_visibility')\gexec
	SELECT 'CREATE DATABASE billing OWNER billing'
	WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'billing')\gexec
EOSQL
