#!/usr/bin/env bash
# Records what a real Ganeti 3.0.2 RAPI answers, into tests/fixtures/rapi/, so that the
# fake RAPI serves Ganeti's own bytes. Needs a running sandbox:
#
#   tests/harness/ganeti-sandbox.sh up && eval "$(tests/harness/ganeti-sandbox.sh env)"
#   tests/harness/capture-rapi-fixtures.sh
#
# The test `fixtures_have_the_shapes_the_real_cluster_serves` (tests/rapi_contract.rs)
# fails when the real cluster's answers stop matching these files; rerun this then.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=tests/fixtures/rapi
mkdir -p "$out"
: "${GANETI_RAPI_URL:?eval the sandbox env first}"
password=$(cat "$GANETI_RAPI_PASSWORD_FILE")
readonly_password=$(cat "$GANETI_RAPI_READONLY_PASSWORD_FILE")
# Credentials go to curl through a config on stdin, never through argv.
rapi() { # rapi USER PASSWORD METHOD PATH [BODY] -> body on stdout, status in $out/.status
  local user=$1 pass=$2 method=$3 path=$4 body=${5:-}
  printf 'user = "%s:%s"\n' "$user" "$pass" |
    curl -sS -K - --cacert "$GANETI_SANDBOX_CA_FILE" -X "$method" \
      ${body:+-H 'Content-Type: application/json' --data "$body"} \
      -w '\n%{http_code}' "$GANETI_RAPI_URL$path"
}
save() { # save NAME METHOD PATH [BODY] [USER PASSWORD]
  local name=$1 method=$2 path=$3 body=${4:-} user=${5:-$GANETI_RAPI_USER} pass=${6:-$password}
  local answer status
  answer=$(rapi "$user" "$pass" "$method" "$path" "$body")
  status=${answer##*$'\n'}
  printf '%s\n' "${answer%$'\n'*}" | python3 -c '
import json, sys
print(json.dumps({"status": int(sys.argv[1]), "body": json.load(sys.stdin)}, indent=1, sort_keys=True))
' "$status" >"$out/$name.json"
  echo "$out/$name.json: HTTP $status" >&2
}
job_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["body"])' "$out/$1.json"; }
wait_job() { # the job, once finished
  local id=$1
  for _ in $(seq 1 120); do
    rapi "$GANETI_RAPI_USER" "$password" GET "/2/jobs/$id" | head -n -1 |
      python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["status"] not in ("success","error","canceled"))' && return 0
    sleep 0.5
  done
  echo "job $id did not finish" >&2; return 1
}

# The reason and name are those of tests/common/contract.rs.
name=fixture1.gnt.test
create='{"__version__":1,"mode":"create","name":"'$name'","disk_template":"diskless","disks":[],"nics":[{}],"os_type":"noop+default","beparams":{"maxmem":64,"minmem":64,"vcpus":1},"start":true,"ip_check":false,"name_check":false,"pnode":"node1.gnt.test","tags":["ganeti-operator:managed"]}'

save submit-create POST "/2/instances?reason=ganeti-operator:fixture:create" "$create"
wait_job "$(job_of submit-create)"
save job-success GET "/2/jobs/$(job_of submit-create)"
save wait-success GET "/2/jobs/$(job_of submit-create)/wait" '{"fields":["status"],"previous_job_info":null,"previous_log_serial":null}'

save submit-create-existing POST "/2/instances?reason=ganeti-operator:fixture:create" "$create"
wait_job "$(job_of submit-create-existing)"
save job-already-exists GET "/2/jobs/$(job_of submit-create-existing)"
save wait-already-exists GET "/2/jobs/$(job_of submit-create-existing)/wait" '{"fields":["status"],"previous_job_info":null,"previous_log_serial":null}'

save submit-remove-unknown DELETE "/2/instances/nosuch.gnt.test?reason=ganeti-operator:fixture:remove"
wait_job "$(job_of submit-remove-unknown)"
save job-unknown-entity GET "/2/jobs/$(job_of submit-remove-unknown)"
save wait-unknown-entity GET "/2/jobs/$(job_of submit-remove-unknown)/wait" '{"fields":["status"],"previous_job_info":null,"previous_log_serial":null}'

save info GET /2/info
save features GET /2/features
save nodes GET "/2/nodes?bulk=1"
save instances GET "/2/instances?bulk=1"
save groups GET "/2/groups?bulk=1"
save jobs GET "/2/jobs?bulk=1"
save job-unknown GET /2/jobs/9999999
save wait-unknown GET /2/jobs/9999999/wait '{"fields":["status"],"previous_job_info":null,"previous_log_serial":null}'
save unauthorized GET /2/info "" "$GANETI_RAPI_USER" not-the-password
save forbidden PUT "/2/tags?tag=fixture" "" "$GANETI_RAPI_READONLY_USER" "$readonly_password"

rm_job=$(rapi "$GANETI_RAPI_USER" "$password" DELETE "/2/instances/$name" | head -n 1)
wait_job "$rm_job"
