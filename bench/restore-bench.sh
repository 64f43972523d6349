#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Checkpoint and restore through the shim (issue 5), side by side in one run on
# one private containerd:
#
#   BUILD=$PWD/build bench/restore-bench.sh [--runs N] [--mib N] [--only small|big]
#                                           [--ctd 1.6|1.7] [--no-docs]
#
# Containers: "small", a busybox `sh` loop printing a number a second, and
# "big", bench/memhog.c (static, in a small OCI image built here) holding --mib
# (default 1024) MiB of touched memory; one of each under our shim
# (io.containerd.kybernate.v1) and one under the runc v2 shim
# (io.containerd.runc.v2), stdout to a file:// log URI (a pipe for the process).
#   1. checkpoint: `ctr task checkpoint --work-path W ID` (leave running; the
#      checkpoint image goes into containerd's content store), ours and runc
#      alternating who goes first, with kybernated durable=yes and then again
#      with durable=no (the daemon restarted on the same store and socket);
#      the checkpoint images are removed after each (`ctr image rm --sync`);
#   2. restore: `ctr run -d --env RESTORE_FROM=<kybernated checkpoint id>`
#      with our shim, timed from the start of `ctr run` until `ctr task ls`
#      says RUNNING, against raw `runc restore -d` of the same images (a bundle
#      with the original container's config.json, a plain rootfs directory with
#      the same files, a new cgroup), timed until runc returns (the process runs).
#      The first restore of each kind checks that the count goes on.
# Medians of --runs (default 5) after one warm-up. Frozen time and image size
# from CRIU's stats-dump / the checkpoint directory. Writes the "## Checkpoint
# and restore through the shim" section of docs/BENCHMARKS.md unless --no-docs.
# Needs root, runc, CRIU >= 4, containerd, and a built shim, kybernated and
# kybernatectl in $BUILD. Logs (daemon, CRIU) in $BUILD/bench-logs/restore-bench/.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/common.sh
. "$(dirname "$0")/../tests/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

RUNS=5
MIB=1024
WRITE_DOCS=1
ONLY=
CTD_V=1.6
CMDLINE="bench/restore-bench.sh${*:+ $*}"

usage() {
	sed -n '4,32p' "$0" | sed 's/^# \{0,1\}//'
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
	--ctd)
		CTD_V=${2:-}
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
case $ONLY in "" | small | big) ;; *) die "--only small or big" ;; esac

require_root
require_cmd runc criu ctr jq perl busybox cc tar du
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
criu check >/dev/null 2>&1 || skip_all "criu check fails here (CRIU >= 4 is needed: run scripts/setup.sh)"

# The tree the run starts from (uncommitted changes to the programs' sources
# are mentioned; the binaries in $BUILD are taken as they are).
TREE=$(git -C "$KYB_TOP" rev-parse --short HEAD 2>/dev/null)
DIRTY=
[ -z "$(git -C "$KYB_TOP" status --porcelain -- shim common kybernated kybernatectl proto 2>/dev/null)" ] ||
	DIRTY=" (plus uncommitted changes in shim/, common/ or kybernated/)"

D=$KYB_TMP
CTL=$BUILD/kybernatectl
LOGS=$BUILD/bench-logs/restore-bench
rm -rf --one-file-system "$LOGS"
mkdir -p "$LOGS" "$D/kyb" "$D/logs" "$D/work"
MEMHOG_IMAGE=docker.io/kybernate/memhog:bench
RAW_ROOT=$D/runc-raw


# The freezer poller: samples the container's v1 freezer.state every 2 ms
# until SIGTERM, then writes "span_ms" to OUT: from the first FREEZING/FROZEN
# seen to the last return to THAWED. In between the task does not run:
# containerd pauses it (FROZEN), CRIU seizes it with ptrace and thaws the
# cgroup while it dumps, freezes it again when it lets go, and containerd
# resumes it only after the checkpoint image is written. So this, not CRIU's
# frozen_time, is how long the workload stands still.
cat >"$D/frzpoll.pl" <<'EOF'
use strict; use Time::HiRes qw(time sleep);
my ($file, $out) = @ARGV; my $stop = 0; $SIG{TERM} = sub { $stop = 1 };
my ($first, $last, $frozen);
while (1) {
	my $t = time; my $s = "";
	if (open(my $f, "<", $file)) { $s = <$f> // ""; close $f }
	if ($s =~ /FROZEN|FREEZING/) { $first //= $t; $frozen = 1 }
	elsif ($frozen) { $last = $t; $frozen = 0 }
	last if $stop;
	sleep 0.002;
}
$last = time if $frozen;
open(my $o, ">", $out) or die "$out: $!";
print $o (defined $first && defined $last ? sprintf("%.1f\n", ($last - $first) * 1000) : "-\n"); close $o;
EOF


# ---- kybernated (the shim finds it through $KYBERNATE_SOCKET, inherited from containerd) ----

export KYBERNATE_SOCKET=$D/kyb/sock
DAEMON_PID=
start_daemon() { # DURABLE
	"$BUILD/kybernated" --config /dev/null --store "$D/kyb/store" -S "$KYBERNATE_SOCKET" \
		--durable="$1" >>"$D/kyb/daemon.log" 2>&1 &
	DAEMON_PID=$!
	kyb_wait 10 "$CTL" status || die "kybernated did not come up: $(tail -n 20 "$D/kyb/daemon.log")"
}
stop_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}
kyb_on_exit 'stop_daemon; cp "$D/kyb/daemon.log" "$LOGS/daemon.log" 2>/dev/null'
start_daemon yes

# ---- images: busybox (test library) and memhog ------------------------------------------------

kyb_image_build
log "building memhog and its image"
kyb_rootfs_build "$D/rootfs"
cc -static -O2 -o "$D/rootfs/bin/memhog" "$KYB_TOP/bench/memhog.c" || die "cc -static bench/memhog.c failed"
tar -C "$D/rootfs" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -cf "$D/memhog-layer.tar" . ||
	die "tar of the memhog rootfs failed"
_kyb_oci_archive "$D/memhog.tar" "$D/memhog-layer.tar" "$MEMHOG_IMAGE" "[\"memhog\", \"$MIB\"]"

ctd_start ckbench "$CTD_V"
kyb_on_exit 'cp "$CTD_LOG" "$LOGS/containerd.log" 2>/dev/null'
kyb_image_import "$KYB_NS" "$KYB_BUSYBOX_TAR" "$D/memhog.tar"

SIZES=(small big)
[ -z "$ONLY" ] || SIZES=("$ONLY")
image_of() { if [ "$1" = small ]; then echo "$KYB_BUSYBOX"; else echo "$MEMHOG_IMAGE"; fi; }
args_of() { if [ "$1" = small ]; then printf '%s\n' sh -c 'i=0; while true; do echo $i; i=$((i+1)); sleep 1; done'; fi; }
rt_of() { if [ "$1" = kyb ]; then echo "$KYB_RUNTIME"; else echo "$KYB_RUNC_RUNTIME"; fi; }

# run_ctr SIZE KIND: the container ckbench-SIZE-KIND, output to $D/logs/ID.log.
run_ctr() {
	local id=ckbench-$1-$2 a=()
	mapfile -t a < <(args_of "$1")
	ctr_ run -d --runtime "$(rt_of "$2")" --log-uri "file://$D/logs/$id.log" "$(image_of "$1")" "$id" "${a[@]}" \
		>"$D/logs/$id.ctr" 2>&1 || die "ctr run $id failed: $(cat "$D/logs/$id.ctr")"
	kyb_wait 120 test -s "$D/logs/$id.log" || die "$id prints nothing: $(cat "$D/logs/$id.ctr")"
}
for s in "${SIZES[@]}"; do
	run_ctr "$s" kyb
	run_ctr "$s" runc
done
log "containers running"

declare -A R

# ---- 1. ctr task checkpoint ------------------------------------------------------------------

# ckpt SIZE KIND RUN PHASE: one `ctr task checkpoint`, then its image removed.
ckpt() {
	local id=ckbench-$1-$2 w=$D/work/ck-$1-$2 t0 t1 out img ck k=$1.$2.$4.$3
	rm -rf --one-file-system "$w" "$D/frz.out"
	local cg fp
	cg=$(jq -r '.linux.cgroupsPath // empty' "$(ctd_bundle "$id")/config.json")
	sync
	perl "$D/frzpoll.pl" "/sys/fs/cgroup/freezer$cg/freezer.state" "$D/frz.out" &
	fp=$!
	t0=$(now_ns)
	out=$(ctr_ task checkpoint --work-path "$w" "$id" 2>&1)
	local rc=$?
	t1=$(now_ns)
	kill -TERM "$fp"
	wait "$fp"
	read -r R[$k.paused] <"$D/frz.out" 2>/dev/null
	if [ $rc -ne 0 ]; then
		log "ctr task checkpoint $id ($4) failed: $out"
		R[$k.t]=fail
		return 1
	fi
	R[$k.t]=$(ms "$t0" "$t1")
	img=$(echo "$out" | tail -n 1)
	R[$k.img]=$(ctr_ image ls 2>/dev/null | awk -v n="$img" '$1 == n { print $4 $5 }')
	if [ "$2" = kyb ]; then
		ck=$("$CTL" list -q --container-id "$id" | head -n 1)  # newest first
		R[$k.ck]=$ck
		if [ -n "$ck" ]; then
			read -r R[$k.freezing] R[$k.frozen] < <(stats_dump "$D/kyb/store/checkpoints/$ck/stats-dump")
			R[$k.bytes]=$(du -sb "$D/kyb/store/checkpoints/$ck/checkpoint" | cut -f1)
			cp "$D/kyb/store/checkpoints/$ck/dump.log" "$LOGS/ck-$1-$2-$4-$3-dump.log" 2>/dev/null
		fi
	else
		read -r R[$k.freezing] R[$k.frozen] < <(stats_dump "$w/stats-dump")
		cp "$w/dump.log" "$LOGS/ck-$1-$2-$4-$3-dump.log" 2>/dev/null
	fi
	[ -z "$img" ] || ctr_ image rm --sync "$img" >/dev/null 2>&1 || log "ctr image rm $img failed"
	rm -rf --one-file-system "$w"
	return 0
}

# Keeps the newest kybernated checkpoint of each "kyb" container (the restore
# source), deletes the others.
prune_ckpts() {
	local s id keep c
	for s in "${SIZES[@]}"; do
		id=ckbench-$s-kyb
		keep=$("$CTL" list -q --container-id "$id" | head -n 1)  # newest first
		for c in $("$CTL" list -q --container-id "$id"); do
			[ "$c" = "$keep" ] || "$CTL" delete "$c" >/dev/null 2>&1
		done
	done
}

checkpoint_phase() { # PHASE (durable|nosync)
	local i s
	for s in "${SIZES[@]}"; do # warm-up
		ckpt "$s" kyb 0 "$1"
		ckpt "$s" runc 0 "$1"
		prune_ckpts
	done
	for ((i = 1; i <= RUNS; i++)); do
		for s in "${SIZES[@]}"; do
			if ((i % 2)); then
				ckpt "$s" kyb "$i" "$1"
				ckpt "$s" runc "$i" "$1"
			else
				ckpt "$s" runc "$i" "$1"
				ckpt "$s" kyb "$i" "$1"
			fi
			prune_ckpts
			log "checkpoint $1 run $i $s: ours ${R[$s.kyb.$1.$i.t]} ms, runc shim ${R[$s.runc.$1.$i.t]} ms;" \
				"paused ours ${R[$s.kyb.$1.$i.paused]:--} runc ${R[$s.runc.$1.$i.paused]:--} ms;" \
				"CRIU frozen ours ${R[$s.kyb.$1.$i.frozen]:--} runc ${R[$s.runc.$1.$i.frozen]:--} us"
		done
	done
}

START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
checkpoint_phase durable
stop_daemon
start_daemon no
checkpoint_phase nosync
stop_daemon
start_daemon yes

# ---- 2. restore ------------------------------------------------------------------------------

# The restore source: a last checkpoint of the "kyb" container with --exit
# (`kybernatectl checkpoint --exit`), so the number it printed last is known
# and the restored process must print the next one. Without our shim's
# checkpoint, raw runc restore still runs from images taken with
# `ctr task checkpoint --exit --image-path` through the runc shim.
declare -A SRC SRC_KIND
last_number() { grep -E '^[0-9]+$' "$1" | tail -n 1; }
for s in "${SIZES[@]}"; do
	SRC_KIND[$s]=kyb
	[ -n "$("$CTL" list -q --container-id "ckbench-$s-kyb")" ] || SRC_KIND[$s]=runc
	id=ckbench-$s-${SRC_KIND[$s]}
	# A bundle for raw runc restore: the original's spec, a plain rootfs with the
	# same files (same busybox/memhog binaries), a new cgroup per restore.
	mkdir -p "$D/raw-$s"
	jq --arg root "$D/rootfs" '.root = {path: $root, readonly: false}' \
		"$(ctd_bundle "$id")/config.json" >"$D/raw-$s/config.json" || die "cannot read the spec of $id"
	if [ "${SRC_KIND[$s]}" = kyb ]; then
		"$CTL" list -q --container-id "$id" | while read -r c; do "$CTL" delete "$c" >/dev/null 2>&1; done
		# Through kybernatectl: ctr sends CheckpointOptions (--exit, --work-path,
		# --image-path) only to runtimes named io.containerd.runc.*, so
		# `ctr task checkpoint --exit` would leave our task running.
		ck=$("$CTL" checkpoint -q --exit -n "$KYB_NS" "$id" 2>&1 | tail -n 1) ||
			die "kybernatectl checkpoint --exit $id failed: $ck"
		[[ $ck =~ ^[0-9a-f]{32}$ ]] || die "kybernatectl checkpoint --exit $id: $ck"
		SRC[$s]=$D/kyb/store/checkpoints/$ck/checkpoint
		R[$s.ck]=$ck
	else
		log "no kybernated checkpoint of ckbench-$s-kyb: raw restore from a runc shim checkpoint"
		SRC[$s]=$D/work/img-$s
		out=$(ctr_ task checkpoint --exit --image-path "${SRC[$s]}" "$id" 2>&1) ||
			die "ctr task checkpoint --exit --image-path of $id failed: $out"
	fi
	# The number printed last when the checkpoint returned; once the task has
	# stopped (--exit), the shim has copied all its output: then it is exact.
	R[$s.last]=$(last_number "$D/logs/$id.log")
	if kyb_wait_eval 10 '[ "$(ctr_task_status "$id")" != RUNNING ]'; then
		sleep 0.5
		R[$s.last]=$(last_number "$D/logs/$id.log")
		R[$s.exited]=yes
	else
		log "$id still RUNNING after the checkpoint with --exit (counts on: the restored count may be lower)"
		R[$s.exited]=no
	fi
done

# first_number FILE: the first number the restored process printed.
first_number() { grep -E '^[0-9]+$' "$1" 2>/dev/null | head -n 1; }

restore_ours() { # SIZE RUN
	local id=ckbench-r-$1-$2 t0 t1 ok=0 out
	[ "${SRC_KIND[$1]}" = kyb ] || {
		R[$1.ours.$2.t]=fail
		return
	}
	sync
	t0=$(now_ns)
	# `ctr run -d` returns once Start has answered: the task runs then. Should
	# `ctr task ls` not say RUNNING yet, the time runs on until it does.
	if out=$(ctr_ run -d --runtime "$KYB_RUNTIME" --log-uri "file://$D/logs/$id.log" \
		--env "RESTORE_FROM=${R[$1.ck]}" "$(image_of "$1")" "$id" 2>&1); then
		t1=$(now_ns)
		if [ "$(ctr_task_status "$id")" = RUNNING ]; then
			ok=1
		elif kyb_wait_eval 60 '[ "$(ctr_task_status "$id")" = RUNNING ]'; then
			ok=1
			t1=$(now_ns)
		fi
	fi
	if [ $ok = 1 ]; then
		R[$1.ours.$2.t]=$(ms "$t0" "$t1")
		if [ "$2" = 1 ] || [ "$2" = 0 ]; then
			kyb_wait 20 sh -c "grep -qE '^[0-9]+$' '$D/logs/$id.log'"
			R[$1.ours.first]=$(first_number "$D/logs/$id.log")
		fi
	else
		R[$1.ours.$2.t]=fail
		log "restore through our shim ($id) failed: $out"
	fi
	ctr_ task kill -s KILL "$id" >/dev/null 2>&1
	kyb_wait_eval 20 '[ "$(ctr_task_status "$id")" != RUNNING ]'
	ctr_ task delete "$id" >/dev/null 2>&1
	ctr_ container rm "$id" >/dev/null 2>&1
}

# plain_run SIZE RUN: the same image started fresh through our shim (`sleep`,
# no restore): what creating a container through containerd costs anyway.
plain_run() {
	local id=ckbench-p-$1-$2 t0 t1
	sync
	t0=$(now_ns)
	if ctr_ run -d --runtime "$KYB_RUNTIME" --log-uri "file://$D/logs/$id.log" "$(image_of "$1")" "$id" \
		sleep 600 >/dev/null 2>&1 && [ "$(ctr_task_status "$id")" = RUNNING ]; then
		t1=$(now_ns)
		R[$1.plain.$2.t]=$(ms "$t0" "$t1")
	else
		R[$1.plain.$2.t]=fail
	fi
	ctr_ task kill -s KILL "$id" >/dev/null 2>&1
	kyb_wait_eval 20 '[ "$(ctr_task_status "$id")" != RUNNING ]'
	ctr_ task delete "$id" >/dev/null 2>&1
	ctr_ container rm "$id" >/dev/null 2>&1
}

restore_raw() { # SIZE RUN
	local id=ckbench-raw-$1-$2 b=$D/raw-$1 w=$D/work/rw-$1-$2 rt=$D/work/rt-$1-$2 s e rc
	jq --arg cg "/ckbench-raw/$id" '.linux.cgroupsPath = $cg' "$b/config.json" >"$b/config.json.new" &&
		mv "$b/config.json.new" "$b/config.json"
	rm -f "$rt"
	sync
	# runc's stdio are pipes (as the shim's are); runc restore -d returns once
	# the process runs. Timed inside, so the reader on the pipe is no part of it.
	(true | {
		s=$(now_ns)
		runc --root "$RAW_ROOT" restore -d --image-path "${SRC[$1]}" --work-path "$w" -b "$b" "$id"
		rc=$?
		e=$(now_ns)
		echo "$s $e $rc" >"$rt"
	} 2>&1 | cat >"$D/logs/$id.log") &
	kyb_wait 120 test -s "$rt"
	read -r s e rc <"$rt" || rc=1
	if [ "${rc:-1}" = 0 ]; then
		R[$1.raw.$2.t]=$(ms "$s" "$e")
		if [ "$2" = 1 ] || [ "$2" = 0 ]; then
			kyb_wait 20 sh -c "grep -qE '^[0-9]+$' '$D/logs/$id.log'"
			R[$1.raw.first]=$(first_number "$D/logs/$id.log")
		fi
	else
		R[$1.raw.$2.t]=fail
		log "raw runc restore ($id) failed: $(tail -n 3 "$D/logs/$id.log")"
		cp "$w/restore.log" "$LOGS/$id-restore.log" 2>/dev/null
	fi
	runc --root "$RAW_ROOT" kill "$id" KILL >/dev/null 2>&1
	sleep 0.2
	runc --root "$RAW_ROOT" delete -f "$id" >/dev/null 2>&1
	kyb_rm_tree "$w"
}
kyb_on_exit 'for c in $(runc --root "$RAW_ROOT" list -q 2>/dev/null); do runc --root "$RAW_ROOT" delete -f "$c"; done'

for ((i = 0; i <= RUNS; i++)); do # run 0: warm-up
	for s in "${SIZES[@]}"; do
		if ((i % 2)); then
			restore_ours "$s" "$i"
			restore_raw "$s" "$i"
		else
			restore_raw "$s" "$i"
			restore_ours "$s" "$i"
		fi
		plain_run "$s" "$i"
		log "restore run $i $s: ours ${R[$s.ours.$i.t]} ms, raw runc ${R[$s.raw.$i.t]} ms;" \
			"plain ctr run -d ${R[$s.plain.$i.t]} ms"
	done
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
for s in "${SIZES[@]}"; do
	log "$s: last number before the checkpoint ${R[$s.last]:-?}, first after restore: ours ${R[$s.ours.first]:--}, raw ${R[$s.raw.first]:--}"
done

# ---- report ----------------------------------------------------------------------------------

med() { # KEY-PREFIX FIELD: median over runs 1..RUNS of R[PREFIX.i.FIELD]
	local i
	for ((i = 1; i <= RUNS; i++)); do
		echo "${R[$1.$i.$2]:-}"
	done | grep -E '^[0-9.]+$' | median
}
all() {
	local i out=
	for ((i = 1; i <= RUNS; i++)); do out+="${out:+, }${R[$1.$i.$2]:--}"; done
	echo "$out"
}
first_img() { # KEY-PREFIX: the checkpoint image size ctr reported in run 1
	echo "${R[$1.1.img]:--}"
}
label() { if [ "$1" = small ]; then echo "busybox sh loop"; else echo "memhog, $MIB MiB touched"; fi; }

table_ckpt() {
	local s p ours runc
	echo "| process | kybernated | ours [ms] | runc v2 shim [ms] | ours vs runc | paused ours / runc [ms] | CRIU frozen ours / runc [ms] | CRIU images [MiB] | checkpoint image (ctr) ours / runc |"
	echo "|:---|:---|---:|---:|---:|---:|---:|---:|:---|"
	for s in "${SIZES[@]}"; do
		for p in durable nosync; do
			ours=$(med "$s.kyb.$p" t)
			runc=$(med "$s.runc.$p" t)
			echo "| $(label "$s") | $([ $p = durable ] && echo "durable=yes" || echo "durable=no") | $ours | $runc | $(pct "$ours" "$runc") | $(med "$s.kyb.$p" paused) / $(med "$s.runc.$p" paused) | $(usms "$(med "$s.kyb.$p" frozen)") / $(usms "$(med "$s.runc.$p" frozen)") | $(mib "$(med "$s.kyb.$p" bytes)") | $(first_img "$s.kyb.$p") / $(first_img "$s.runc.$p") |"
		done
	done
}
table_restore() {
	local s ours raw
	echo "| process | ours: \`ctr run -d --env RESTORE_FROM=...\` until RUNNING [ms] | raw \`runc restore -d\` [ms] | ours vs raw | fresh \`ctr run -d ... sleep\` (ours, no restore) [ms] | ours minus fresh run [ms] | count before / after (ours, raw) |"
	echo "|:---|---:|---:|---:|---:|---:|:---|"
	for s in "${SIZES[@]}"; do
		local plain
		ours=$(med "$s.ours" t)
		raw=$(med "$s.raw" t)
		plain=$(med "$s.plain" t)
		echo "| $(label "$s") | $ours | $raw | $(pct "$ours" "$raw") | $plain | $(awk -v a="$ours" -v b="$plain" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.1f", a - b }') | ${R[$s.last]:-?}$([ "${R[$s.exited]:-}" = no ] && echo " (task not stopped by --exit)") / ${R[$s.ours.first]:--}, ${R[$s.raw.first]:--} |"
	done
}
detail() {
	local s p k
	for s in "${SIZES[@]}"; do
		for p in durable nosync; do
			for k in kyb runc; do
				echo "    checkpoint $s $p $k [ms]: $(all "$s.$k.$p" t)"
				echo "    checkpoint $s $p $k paused [ms]: $(all "$s.$k.$p" paused)"
				echo "    checkpoint $s $p $k CRIU frozen [us]: $(all "$s.$k.$p" frozen)"
			done
		done
		echo "    restore $s ours [ms]: $(all "$s.ours" t)"
		echo "    restore $s raw [ms]: $(all "$s.raw" t)"
		echo "    fresh run $s (ours) [ms]: $(all "$s.plain" t)"
	done
}
T1=$(table_ckpt)
T2=$(table_restore)
DETAIL=$(detail)
printf '%s\n\n%s\n\n%s\n' "$T1" "$T2" "$DETAIL"

section() {
	cat <<EOF
## Checkpoint and restore through the shim

\`ctr task checkpoint\` through our shim (\`io.containerd.kybernate.v1\`, which has kybernated take
the checkpoint and also fills the directory containerd asks for) against the runc v2 shim, and
restore into a new container with \`RESTORE_FROM\` against raw \`runc restore\` of the same images
(issue 5's targets: within 5% of raw runc/CRIU at the same durability; with syncing off never
slower than the runc v2 shim).

How: \`bench/restore-bench.sh\` (root), one private containerd $CTD_V, one kybernated (private
store and socket, found by the shim through \`KYBERNATE_SOCKET\`). Containers started with
\`ctr run -d --log-uri file://...\`: a busybox \`sh\` loop printing a number a second, and
\`bench/memhog.c\` (static, in a one-layer OCI image built by the script) holding $MIB MiB of
touched memory; one of each per shim. Checkpoint: \`ctr task checkpoint --work-path W ID\`
(the task keeps running; containerd pauses it, calls the shim, stores the images as a
checkpoint image in its content store, resumes it), ours and runc alternating who goes
first, checkpoint images removed after each (\`ctr image rm --sync\`), first with kybernated
\`durable=yes\` (the default), then restarted with \`durable=no\`. Restore: \`ctr run -d
--runtime io.containerd.kybernate.v1 --env RESTORE_FROM=<kybernated checkpoint id> IMAGE NEWID\`
timed until \`ctr task ls\` says RUNNING, against \`runc restore -d\` of that checkpoint's image
directory (bundle: the original container's \`config.json\` with a plain rootfs directory
holding the same files and a new cgroup; stdio on pipes), timed until runc returns. The
restore source is a last checkpoint taken with \`kybernatectl checkpoint --exit\` (ctr passes
\`--exit\` only to runtimes named \`io.containerd.runc.*\`), so the last number printed before it
is known and the restored processes must print the next one.
\`sync\` before each measurement. Medians of $RUNS runs after one warm-up. Paused: from the first
FROZEN to the last THAWED of the container's cgroup freezer during \`ctr task checkpoint\`
(\`freezer.state\` sampled every 2 ms). The task does not run in between: containerd pauses it
before it calls the shim, CRIU seizes it with ptrace and thaws the cgroup while it dumps,
freezes it again when it lets go, and containerd resumes it only after the checkpoint image is
in its content store. So this is what the workload feels; CRIU frozen: \`frozen_time\` from
CRIU's \`stats-dump\` (the dump alone).

Command, exactly as run:

    BUILD=\$PWD/build-ckbench $CMDLINE

Run $START, tree at $TREE$DIRTY, containerd $CTD_V, runc $(runc --version | awk 'NR == 1 { print $3 }'), CRIU $(criu --version 2>/dev/null | awk '/^Version:/ { print $2 }'), kernel $(uname -r),
$(nproc) cores, local ext4, load average $LOAD0 before, $LOAD1 after (a shared VM):

Checkpoint (\`ctr task checkpoint\`):

$T1

Restore:

$T2

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
	docs_write_section "Checkpoint and restore through the shim" "$KYB_TMP/section.md"
fi
kyb_finish
