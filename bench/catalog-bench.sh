#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# kybernatectl list / inspect with 10,000 checkpoints in the catalog.
#
#   bench/catalog-bench.sh [BUILD_DIR] [ROWS]      (root; default build, 10000)
#
# A private kybernated (own store, own socket) gets one real checkpoint through
# `kybernatectl import` (a CRIU dump of a small sh + sleep tree, so inspect
# reads real pstree/core/stats images); it is then stopped, ROWS - 1 rows are
# inserted into its catalog.db with SQL matching its schema (spread over 10
# namespaces and 100 containers), and it is started again. Then:
#   list          all rows, human table
#   list --json   all rows, JSON
#   list -q       all rows, ids only (transfer + decode, no table)
#   list --k8s-namespace NS   1/10 of the rows
#   inspect REAL  by name: catalog lookup + reading the CRIU images
#   inspect ROW   a synthetic row by id (no images on disk)
# are timed with hyperfine (median of >= 30 runs) if installed, else with a
# shell loop (median of 21 runs). Output goes to /dev/null in both cases.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$top/build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
ROWS=${2:-10000}
CTL=$BUILD/kybernatectl
DAEMON=$BUILD/kybernated

[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; exit 77; }
for f in "$CTL" "$DAEMON"; do [ -x "$f" ] || { echo "$f not built (make)" >&2; exit 1; }; done
command -v sqlite3 >/dev/null || { echo "needs sqlite3" >&2; exit 1; }
export PATH=/usr/local/sbin:$PATH
CRIU=$(command -v criu) || { echo "needs criu" >&2; exit 1; }

T=$(mktemp -d /tmp/kyb-catalog-bench.XXXXXX)
SOCK=$T/kybernated.sock
daemon_pid=
cleanup() {
	[ -z "$daemon_pid" ] || { kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null || true; }
	rm -rf --one-file-system "$T"
}
trap cleanup EXIT
[ -z "${KYB_BENCH_KEEP:-}" ] || trap - EXIT

start_daemon() {
	"$DAEMON" --store "$T/store" --socket "$SOCK" --criu "$CRIU" --config /dev/null >>"$T/daemon.log" 2>&1 &
	daemon_pid=$!
	for _ in $(seq 100); do "$CTL" --socket "$SOCK" status >/dev/null 2>&1 && return 0; sleep 0.1; done
	cat "$T/daemon.log" >&2
	echo "kybernated did not start" >&2
	exit 1
}
stop_daemon() {
	kill "$daemon_pid"
	wait "$daemon_pid" 2>/dev/null || true
	daemon_pid=
}

# ---- one real checkpoint ---------------------------------------------------
mkdir -p "$T/real/checkpoint" "$T/store"
setsid sh -c 'sleep 100000; true' </dev/null >/dev/null 2>&1 &
victim=$!
sleep 0.3
"$CRIU" dump -t "$victim" -D "$T/real/checkpoint" --shell-job -o dump.log >/dev/null 2>&1 ||
	{ kill -9 "$victim" 2>/dev/null; echo "criu dump failed" >&2; exit 1; }
wait "$victim" 2>/dev/null || true
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf '{"id":"bench-real","name":"bench-real","runtime":"runc","createdTime":"%s","checkpointedTime":"%s"}\n' \
	"$now" "$now" >"$T/real/config.dump"
echo '{"ociVersion":"1.0.2","annotations":{}}' >"$T/real/spec.dump"
tar -C "$T/real" -cf "$T/real.tar" .

start_daemon
K=("$CTL" --socket "$SOCK")
"${K[@]}" import "$T/real.tar" --name bench-real >/dev/null
stop_daemon

# ---- ROWS - 1 synthetic rows ---------------------------------------------------
db=$T/store/catalog.db
now_ns=$(date +%s%N)
sqlite3 "$db" <<EOF
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $((ROWS - 1)))
INSERT INTO checkpoints (id, name, state, containerd_namespace, k8s_namespace, k8s_pod, k8s_container,
                         container_id, image_ref, created_ns, size_bytes, runc_version, criu_version,
                         kernel_version, options, checksum, durable, bundle)
SELECT lower(hex(randomblob(16))), 'bench-' || i, 2, 'k8s.io', 'ns-' || (i % 10), 'pod-' || (i % 100),
       'app', printf('ctr-%04d', i % 100), 'docker.io/library/app:' || (i % 7), $now_ns - i * 1000000000,
       1048576 + i, 'runc version 1.1.5', 'Version: 4.1.1', '6.18.0', 0,
       'sha256:' || lower(hex(randomblob(32))), 1, '/run/bundle/' || i
FROM n;
COMMIT;
EOF
rows=$(sqlite3 "$db" 'SELECT count(*) FROM checkpoints')
synthetic=$(sqlite3 "$db" "SELECT id FROM checkpoints WHERE name = 'bench-5000' OR name = 'bench-1' ORDER BY name DESC LIMIT 1")
start_daemon

"${K[@]}" inspect bench-real | grep -q '^  [0-9]*  sh' || { echo "inspect bench-real shows no tree" >&2; exit 1; }
[ "$("${K[@]}" list -q | wc -l)" -eq "$rows" ] || { echo "list does not show $rows rows" >&2; exit 1; }

cmds=(
	"$CTL --socket $SOCK list"
	"$CTL --socket $SOCK list --json"
	"$CTL --socket $SOCK list -q"
	"$CTL --socket $SOCK list --k8s-namespace ns-3"
	"$CTL --socket $SOCK inspect bench-real"
	"$CTL --socket $SOCK inspect $synthetic"
)

echo "catalog rows: $rows ($(du -h "$db" | cut -f1) catalog.db)"
echo "machine: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d)"
if command -v hyperfine >/dev/null && command -v jq >/dev/null; then
	hyperfine -N --warmup 3 --min-runs 30 --export-json "$T/hf.json" "${cmds[@]}" >&2
	printf '| Command | median [ms] | mean ± σ [ms] | min [ms] | runs |\n|:---|---:|---:|---:|---:|\n'
	jq -r '.results[] | "| `\(.command)` | \(.median * 1000 * 10 | round / 10) | \(.mean * 1000 * 10 | round / 10) ± \(.stddev * 1000 * 10 | round / 10) | \(.min * 1000 * 10 | round / 10) | \(.times | length) |"' \
		"$T/hf.json" | sed -e "s|$CTL|kybernatectl|g; s|--socket $SOCK ||g"
else
	printf '| Command | median [ms] | runs |\n|:---|---:|---:|\n'
	for c in "${cmds[@]}"; do
		ts=()
		for _ in $(seq 21); do
			s=$(date +%s%N)
			$c >/dev/null
			e=$(date +%s%N)
			ts+=($(((e - s) / 1000)))
		done
		med=$(printf '%s\n' "${ts[@]}" | sort -n | sed -n 11p)
		printf '| `%s` | %d.%d | 21 |\n' "$(sed -e "s|$CTL|kybernatectl|; s|--socket $SOCK ||" <<<"$c")" \
			$((med / 1000)) $((med % 1000 / 100))
	done
fi
