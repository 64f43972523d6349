#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Checkpoint benchmark (issue 4): `kybernatectl checkpoint` against raw
# `runc checkpoint` of the same running containers, side by side in one run.
#
#   BUILD=$PWD/build bench/checkpoint-bench.sh [--runs N] [--mib N] [--only small|big]
#                                              [--no-docs]
#
# Two containers are started with runc directly (stdio on pipes): "small", a
# busybox `sh` loop that prints a number a second, and "big", bench/memhog.c
# (built static) holding --mib (default 1024) MiB of touched memory. Each run
# checkpoints each container (--leave-running) four ways, in rotating order:
#   raw        runc checkpoint; then fsync of every file and directory of the
#              images and the directory holding them (what kybernated syncs:
#              store_sync_tree + the checkpoints directory), timed separately,
#              so raw gives both the unsynced and the synced figure;
#   kyb        kybernatectl checkpoint against a kybernated with durable=yes;
#   kyb-nosync kybernatectl checkpoint against a kybernated with durable=no.
# Both daemons run at once (own store and socket each). `sync` runs before each
# measurement so no earlier write-back overlaps it; images are deleted after
# each. Reports medians of --runs (default 5): wall time, image size, and
# CRIU's stats-dump freezing_time / frozen_time (how long the process stood).
# Writes the "## Checkpoint (kybernated)" section of docs/BENCHMARKS.md unless
# --no-docs. Needs root, runc, CRIU >= 4 and a built kybernated/kybernatectl.
# The daemons' logs and the CRIU dump.log of every checkpoint are kept in
# $BUILD/bench-logs/checkpoint-bench/.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/common.sh
. "$(dirname "$0")/../tests/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

RUNS=5
MIB=1024
WRITE_DOCS=1
ONLY=
CMDLINE="bench/checkpoint-bench.sh${*:+ $*}"

usage() {
	sed -n '4,28p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}
while [ $# -gt 0 ]; do
	case $1 in
	--runs)
		RUNS=${2:-}
		shift
		;;
	--mib)
		MIB=${2:-}
		shift
		;;
	--only)
		ONLY=${2:-}
		shift
		;;
	--no-docs) WRITE_DOCS=0 ;;
	-h | --help) usage 0 ;;
	*)
		echo "unknown argument: $1" >&2
		usage 2 >&2
		;;
	esac
	shift
done
[[ $RUNS =~ ^[1-9][0-9]?$ ]] || die "--runs must be 1-99"
[[ $MIB =~ ^[1-9][0-9]{0,5}$ ]] || die "--mib must be a positive number of MiB"

require_root
require_cmd runc criu jq perl busybox cc sync find du
require_build kybernated kybernatectl
criu check >/dev/null 2>&1 || skip_all "criu check fails here (CRIU >= 4 is needed: run scripts/setup.sh)"

D=$KYB_TMP
NS=ckbench
RUNC_ROOT=$D/runc/$NS
CTL=$BUILD/kybernatectl
mkdir -p "$RUNC_ROOT" "$D/raw"
LOGS=$BUILD/bench-logs/checkpoint-bench
rm -rf --one-file-system "$LOGS"
mkdir -p "$LOGS"



# ---- root filesystem, bundles, containers --------------------------------------------------

log "building memhog and the root filesystem"
kyb_rootfs_build "$D/rootfs"
cc -static -O2 -o "$D/rootfs/bin/memhog" "$KYB_TOP/bench/memhog.c" || die "cc -static bench/memhog.c failed"

# bundle NAME ARGS_JSON: a bundle whose rootfs is the shared one (read-only
# for both; the processes write nothing), host network (no netns to lock).
bundle() {
	mkdir -p "$D/b-$1"
	(cd "$D/b-$1" && runc spec)
	jq --arg root "$D/rootfs" --argjson args "$2" '.process.terminal = false | .process.args = $args
	    | .root = {path: $root, readonly: true}
	    | .linux.namespaces |= map(select(.type != "network"))' \
		"$D/b-$1/config.json" >"$D/b-$1/config.json.new" && mv "$D/b-$1/config.json.new" "$D/b-$1/config.json"
}
bundle small '["sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 1; done"]'
bundle big "[\"memhog\", \"$MIB\"]"

CTRS="ckbench-small ckbench-big" # used by the exit hook below
export CTRS
kill_ctr() {
	runc --root "$RUNC_ROOT" kill "$1" KILL 2>/dev/null
	sleep 0.3
	runc --root "$RUNC_ROOT" delete -f "$1" 2>/dev/null
}
kyb_on_exit 'for c in $CTRS; do kill_ctr $c; done'

# Stdio on pipes (CRIU cannot dump a container whose stdout is a regular file).
for c in small big; do
	(true | runc --root "$RUNC_ROOT" run -d -b "$D/b-$c" "ckbench-$c" 2>&1 | cat >>"$D/out-$c") &
done
kyb_wait 120 test -s "$D/out-small" || die "small container did not start: $(cat "$D/out-small")"
kyb_wait 120 test -s "$D/out-big" || die "big container did not start: $(cat "$D/out-big")"
big_pid=$(runc --root "$RUNC_ROOT" state ckbench-big | jq -r .pid)
BIG_RSS=$(awk '$1 == "VmRSS:" { printf "%.0f", $2 / 1024 }' "/proc/$big_pid/status")
log "containers running; big RSS ${BIG_RSS} MiB"

# ---- two daemons: durable=yes and durable=no ----------------------------------------------------

declare -A DPID
start_daemon() { # NAME DURABLE
	mkdir -p "$D/$1"
	"$BUILD/kybernated" --config /dev/null --store "$D/$1/store" -S "$D/$1/sock" \
		--runc-root-base "$D/runc" --durable="$2" >>"$D/$1/daemon.log" 2>&1 &
	DPID[$1]=$!
	KYBERNATE_SOCKET=$D/$1/sock kyb_wait 10 "$CTL" status ||
		die "kybernated ($1) did not come up: $(tail -n 20 "$D/$1/daemon.log")"
}
stop_daemons() {
	local n
	for n in "${!DPID[@]}"; do
		kill "${DPID[$n]}" 2>/dev/null
		wait "${DPID[$n]}" 2>/dev/null
	done
	DPID=()
}
kyb_on_exit 'stop_daemons; cp "$D"/kyb/daemon.log "$LOGS/kyb-daemon.log"; cp "$D"/kyb-nosync/daemon.log "$LOGS/kyb-nosync-daemon.log"'
start_daemon kyb yes
start_daemon kyb-nosync no

# ---- one measurement -----------------------------------------------------------------------

# Results: R[size.mode.run.field] with fields t (checkpoint, ms), ts (synced
# total, raw only), bytes, freezing, frozen (us).
declare -A R

# net MS FREEZING_US: the time without CRIU's wait for the cgroup freezer (it
# polls freezer.state every 100 ms: a checkpoint takes 0.5 or 100 ms more by
# chance, whoever runs it).
net() { awk -v t="$1" -v f="$2" 'BEGIN { if (f == "-" || t == "") print "-"; else printf "%.1f", t - f / 1000 }'; }

measure_raw() { # SIZE RUN
	local id=ckbench-$1 img=$D/raw/img work=$D/raw/work t0 t1 t2
	rm -rf --one-file-system "$img" "$work"
	sync
	t0=$(now_ns)
	runc --root "$RUNC_ROOT" checkpoint --leave-running --image-path "$img" --work-path "$work" "$id" \
		>"$D/raw/runc.out" 2>&1 || die "runc checkpoint $id failed: $(cat "$D/raw/runc.out")"
	t1=$(now_ns)
	# What kybernated's store_sync_tree + store_fsync_path do: fsync every
	# file and directory of the checkpoint, then the directory holding it.
	find "$img" -exec sync -- {} + && sync -- "$D/raw"
	t2=$(now_ns)
	R[$1.raw.$2.t]=$(ms "$t0" "$t1")
	R[$1.raw.$2.ts]=$(ms "$t0" "$t2")
	R[$1.raw.$2.bytes]=$(du -sb "$img" | cut -f1)
	cp "$work/dump.log" "$LOGS/$1-raw-$2-dump.log" 2>/dev/null
	read -r R[$1.raw.$2.freezing] R[$1.raw.$2.frozen] < <(stats_dump "$work/stats-dump")
	R[$1.raw.$2.tn]=$(net "${R[$1.raw.$2.t]}" "${R[$1.raw.$2.freezing]}")
	R[$1.raw.$2.tsn]=$(net "${R[$1.raw.$2.ts]}" "${R[$1.raw.$2.freezing]}")
	rm -rf --one-file-system "$img" "$work"
}

measure_kyb() { # SIZE RUN MODE
	local id=ckbench-$1 sock=$D/$3/sock t0 t1 ck dir
	sync
	t0=$(now_ns)
	ck=$(KYBERNATE_SOCKET=$sock "$CTL" checkpoint -q -n "$NS" "$id" 2>"$D/$3/ctl.err") ||
		die "kybernatectl checkpoint ($3) of $id failed: $(cat "$D/$3/ctl.err")"
	t1=$(now_ns)
	ck=$(echo "$ck" | tail -n 1)
	dir=$D/$3/store/checkpoints/$ck
	R[$1.$3.$2.t]=$(ms "$t0" "$t1")
	R[$1.$3.$2.bytes]=$(du -sb "$dir/checkpoint" | cut -f1)
	R[$1.$3.$2.total]=$(du -sb "$dir" | cut -f1)
	read -r R[$1.$3.$2.freezing] R[$1.$3.$2.frozen] < <(stats_dump "$dir/stats-dump")
	R[$1.$3.$2.tn]=$(net "${R[$1.$3.$2.t]}" "${R[$1.$3.$2.freezing]}")
	cp "$dir/dump.log" "$LOGS/$1-$3-$2-dump.log" 2>/dev/null
	KYBERNATE_SOCKET=$sock "$CTL" delete "$ck" >/dev/null 2>&1 || die "kybernatectl delete $ck failed"
}

MODES=(raw kyb kyb-nosync)
SIZES=(small big)
[ -z "$ONLY" ] || SIZES=("$ONLY")
case $ONLY in "" | small | big) ;; *) die "--only small or big" ;; esac
START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
# One warm-up of each (first CRIU run and page cache of the binaries).
for s in "${SIZES[@]}"; do
	measure_raw "$s" 0
	measure_kyb "$s" 0 kyb
	measure_kyb "$s" 0 kyb-nosync
done
log "warm-up done"
for ((i = 1; i <= RUNS; i++)); do
	for s in "${SIZES[@]}"; do
		for ((k = 0; k < 3; k++)); do
			m=${MODES[(i + k) % 3]}
			if [ "$m" = raw ]; then measure_raw "$s" "$i"; else measure_kyb "$s" "$i" "$m"; fi
		done
		log "run $i $s: raw ${R[$s.raw.$i.t]} ms (+sync ${R[$s.raw.$i.ts]} ms)," \
			"kyb ${R[$s.kyb.$i.t]} ms, kyb-nosync ${R[$s.kyb-nosync.$i.t]} ms;" \
			"frozen raw ${R[$s.raw.$i.frozen]} kyb ${R[$s.kyb.$i.frozen]} kyb-nosync ${R[$s.kyb-nosync.$i.frozen]} us"
	done
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# med SIZE MODE FIELD
med() {
	local i
	for ((i = 1; i <= RUNS; i++)); do
		echo "${R[$1.$2.$i.$3]:-}"
	done | grep -E '^[0-9.]+$' | median
}
all() { # SIZE MODE FIELD: every run's value, comma separated
	local i out=
	for ((i = 1; i <= RUNS; i++)); do out+="${out:+, }${R[$1.$2.$i.$3]:--}"; done
	echo "$out"
}

table() {
	local s label
	echo "| process | way | synced | checkpoint [ms] | vs raw at same durability | without freezer wait [ms] | vs raw | image [MiB] | freezing [ms] | frozen [ms] |"
	echo "|:---|:---|:---|---:|---:|---:|---:|---:|---:|---:|"
	for s in "${SIZES[@]}"; do
		if [ "$s" = small ]; then label="busybox sh loop"; else label="memhog, $MIB MiB touched"; fi
		local raw_t raw_ts kyb_t kyn_t raw_tn raw_tsn kyb_tn kyn_tn
		raw_t=$(med "$s" raw t)
		raw_ts=$(med "$s" raw ts)
		kyb_t=$(med "$s" kyb t)
		kyn_t=$(med "$s" kyb-nosync t)
		raw_tn=$(med "$s" raw tn)
		raw_tsn=$(med "$s" raw tsn)
		kyb_tn=$(med "$s" kyb tn)
		kyn_tn=$(med "$s" kyb-nosync tn)
		echo "| $label | raw \`runc checkpoint\` | no | $raw_t | | $raw_tn | | $(mib "$(med "$s" raw bytes)") | $(usms "$(med "$s" raw freezing)") | $(usms "$(med "$s" raw frozen)") |"
		echo "| $label | raw \`runc checkpoint\` + fsync of every file | yes | $raw_ts | | $raw_tsn | | | | |"
		echo "| $label | \`kybernatectl checkpoint\`, durable=yes | yes | $kyb_t | $(pct "$kyb_t" "$raw_ts") | $kyb_tn | $(pct "$kyb_tn" "$raw_tsn") | $(mib "$(med "$s" kyb bytes)") | $(usms "$(med "$s" kyb freezing)") | $(usms "$(med "$s" kyb frozen)") |"
		echo "| $label | \`kybernatectl checkpoint\`, durable=no | no | $kyn_t | $(pct "$kyn_t" "$raw_t") | $kyn_tn | $(pct "$kyn_tn" "$raw_tn") | $(mib "$(med "$s" kyb-nosync bytes)") | $(usms "$(med "$s" kyb-nosync freezing)") | $(usms "$(med "$s" kyb-nosync frozen)") |"
	done
}

runs_detail() {
	local s m f
	for s in "${SIZES[@]}"; do
		for m in raw kyb kyb-nosync; do
			for f in t ts; do
				[ "$f" = ts ] && [ "$m" != raw ] && continue
				echo "    $s $m $([ "$f" = ts ] && echo "+sync ")[ms]: $(all "$s" "$m" "$f")"
			done
			echo "    $s $m freezing [us]: $(all "$s" "$m" freezing)"
			echo "    $s $m frozen [us]: $(all "$s" "$m" frozen)"
		done
	done
}

TABLE=$(table)
DETAIL=$(runs_detail)
echo "$TABLE"
echo "$DETAIL"

section() {
	cat <<EOF
## Checkpoint (kybernated)

\`kybernatectl checkpoint\` against raw \`runc checkpoint\` of the same running containers,
side by side in one run (issue 4's target: within 5% at the same durability; the unsynced
figure reported too).

How: \`bench/checkpoint-bench.sh\` (root). Two containers started with \`runc run -d\`
directly (stdio on pipes, host network, read-only busybox rootfs): a busybox \`sh\` loop
printing a number a second, and \`bench/memhog.c\` (static) holding $MIB MiB of touched,
distinct pages (RSS $BIG_RSS MiB). Each run checkpoints each container with
\`--leave-running\` three ways, order rotating: raw \`runc checkpoint\` (then the same
syncing kybernated does: \`fsync\` of every file and directory of the images and of the
directory holding them, \`find IMG -exec sync -- {} +; sync -- PARENT\`, timed separately);
\`kybernatectl checkpoint\` to a private kybernated with \`durable=yes\` (the default: fsync of
every file and directory, the checkpoint is ready only then); and to a second one with
\`durable=no\`. Times are wall time of the whole command; \`sync\` runs before each so
no earlier write-back overlaps; images are deleted after each. Medians of $RUNS runs after
one warm-up. freezing/frozen: CRIU's \`stats-dump\` (\`freezing_time\`: until the cgroup
freezer reported FROZEN; \`frozen_time\`: how long the process then stood still). "Without
freezer wait" subtracts \`freezing_time\` from each run before the median: CRIU polls the v1
freezer's state every 100 ms, so any checkpoint, raw or ours, takes about 0.5 ms or 100 ms
more by chance. Image size: \`du -sb\` of the CRIU image directory.

Command, exactly as run:

    BUILD=\$PWD/build-ckbench $CMDLINE

Run $START, tree at $(git -C "$KYB_TOP" rev-parse --short HEAD), runc $(runc --version | awk 'NR == 1 { print $3 }'), CRIU $(criu --version 2>/dev/null | awk '/^Version:/ { print $2 }'), kernel $(uname -r), $(nproc) cores,
local ext4 (\`/tmp\`), load average $LOAD0 before, $LOAD1 after (a shared VM, other helpers at work):

$TABLE

Every run (in order):

$DETAIL
EOF
}

if [ "$WRITE_DOCS" = 1 ]; then
	section >"$KYB_TMP/section.md"
	if [ -n "${CKBENCH_NOTES:-}" ] && [ -s "$CKBENCH_NOTES" ]; then
		{
			echo
			cat "$CKBENCH_NOTES"
		} >>"$KYB_TMP/section.md"
	fi
	docs_write_section "Checkpoint (kybernated)" "$KYB_TMP/section.md"
fi
kyb_finish
