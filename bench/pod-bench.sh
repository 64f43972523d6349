#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Whole-pod checkpoint and restore (issue 12) against raw runc, side by side in
# one run on one private containerd (CRI, tests/lib/cri-client.js as kubelet):
#
#   BUILD=$PWD/build bench/pod-bench.sh [--runs N] [--mib N] [--ctd 1.6|1.7] [--no-docs]
#
# The pod bench/hogs-PID (handler kybernate, network namespace of its own on a
# CNI bridge, cgroup parent /kubepods/pod<uid> as kubelet's cgroupfs driver
# sets it) has three containers hog1, hog2, hog3, each bench/memhog.c (static,
# in a one-layer OCI image built here) holding --mib (default 256) MiB of
# touched memory. A private kybernated with durable=yes (the default). Each
# run, after one warm-up (run 0):
#   1. checkpoint, leave running, order alternating:
#      pod  `kybernatectl checkpoint --pod bench/hogs-PID` (all three frozen at
#           one instant, dumped one after the other with --tcp-established,
#           synced, then thawed); the frozen time from `inspect --json`
#           (frozen_usec: from the pod's freeze to its thaw);
#      raw  three `runc --root /run/containerd/runc/k8s.io checkpoint
#           --leave-running --tcp-established --image-path DIR` of the same
#           containers, each followed by the syncing kybernated does when
#           durable (fsync of every file and directory of the images, then of
#           the directory holding them: `find DIR -exec sync -- {} +; sync --
#           PARENT`); the sum of the three (runc + sync each).
#   2. restore, order alternating:
#      ours a new pod (RunPodSandbox not timed) whose three containers are
#           created and started in order with RESTORE_FROM=<member id> (our
#           shim restores each through kybernated), timed from the first
#           CreateContainer to the last StartContainer's return with all
#           three RUNNING; twice, order alternating: all six CRI calls from
#           one cri-client process (`createstart`, timed inside it, as
#           kubelet, a long-lived client, sees it), and one cri-client
#           process per call (node's start-up in each, timed here);
#      raw  three `runc restore -d --tcp-established` of step 1's raw images
#           (bundle: the original container's config.json, a plain rootfs
#           directory with the same files, a new cgroup; stdio on pipes), the
#           sum of the three, each timed until runc returns;
#      fresh the same pod created and started with `sleep` (no restore): what
#           CRI create + start through our shim cost anyway (both ways).
#      Beside each, containerd's own StartContainer times from its log (no
#      client start-up in them).
# `sync` before each measurement. Medians of --runs (default 3). Writes the
# "## Whole pods" section of docs/BENCHMARKS.md unless --no-docs. Needs root,
# runc, CRIU >= 4, containerd (1.7 by default, from scripts/setup.sh), node
# with the CRI client's modules, the CNI plugins in /usr/lib/cni, and a
# shim, kybernated and kybernatectl (with `checkpoint --pod`) in $BUILD.
# Logs (daemon, containerd, CRIU) in $BUILD/bench-logs/pod-bench/.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/common.sh
. "$(dirname "$0")/../tests/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

RUNS=3
MIB=256
WRITE_DOCS=1
CTD_V=1.7
CMDLINE="bench/pod-bench.sh${*:+ $*}"

usage() {
	sed -n '4,48p' "$0" | sed 's/^# \{0,1\}//'
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
case $CTD_V in 1.6 | 1.7) ;; *) die "--ctd 1.6 or 1.7" ;; esac

require_root
require_cmd runc criu ctr jq perl busybox cc ip du find
require_cri
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
criu check >/dev/null 2>&1 || skip_all "criu check fails here (CRIU >= 4 is needed: run scripts/setup.sh)"
CTL=$BUILD/kybernatectl
"$CTL" checkpoint --help 2>&1 | grep -q -- '--pod' || skip_all "$CTL has no 'checkpoint --pod' (issue 12's CLI)"
for p in bridge host-local loopback; do
	[ -x "/usr/lib/cni/$p" ] || skip_all "CNI plugin /usr/lib/cni/$p is missing (run scripts/setup.sh)"
done

TREE=$(git -C "$KYB_TOP" rev-parse --short HEAD 2>/dev/null)
DIRTY=
[ -z "$(git -C "$KYB_TOP" status --porcelain -- shim common kybernated kybernatectl proto 2>/dev/null)" ] ||
	DIRTY=" (plus uncommitted changes in shim/, common/, kybernated/ or kybernatectl/)"

# The binaries may come from another tree than this script (BUILD elsewhere).
BTREE=$(git -C "$(dirname "$BUILD")" rev-parse --short HEAD 2>/dev/null)
[ -z "$BTREE" ] || [ "$BTREE" = "$TREE" ] || DIRTY+=", binaries from the tree at $BTREE ($(dirname "$BUILD"))"

D=$KYB_TMP
LOGS=$BUILD/bench-logs/pod-bench
rm -rf --one-file-system "$LOGS"
mkdir -p "$LOGS" "$D/kyb" "$D/raw" "$D/work"
MEMHOG_IMAGE=docker.io/kybernate/memhog:bench
RUNC_ROOT=/run/containerd/runc/k8s.io # where CRI's containers are, for every private containerd
RAW_ROOT=$D/runc-raw
NS=bench
# Private containerds share $RUNC_ROOT, where kybernated looks a pod up by
# namespace and name: a name of this run's own.
POD=hogs-$$
RPOD=hogs-r-$$ # the restored pods' name (never a second running $POD)
CONTAINERS="hog1 hog2 hog3"
BRIDGE=kybbench0
SUBNET=10.233.9.0/24

# ---- kybernated (the shim finds it through $KYBERNATE_SOCKET, inherited from containerd) ----

export KYBERNATE_SOCKET=$D/kyb/sock
"$BUILD/kybernated" --config /dev/null --store "$D/kyb/store" -S "$KYBERNATE_SOCKET" \
	--runc-root-base /run/containerd/runc --durable=yes >>"$D/kyb/daemon.log" 2>&1 &
# shellcheck disable=SC2034 # used by the exit hook
DAEMON_PID=$!
kyb_on_exit 'kill "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null; cp "$D/kyb/daemon.log" "$LOGS/daemon.log" 2>/dev/null'
kyb_wait 10 "$CTL" status || die "kybernated did not come up: $(tail -n 20 "$D/kyb/daemon.log")"

# ---- images, containerd, CNI -------------------------------------------------------------

kyb_image_build
log "building memhog and its image"
kyb_rootfs_build "$D/rootfs"
cc -static -O2 -o "$D/rootfs/bin/memhog" "$KYB_TOP/bench/memhog.c" || die "cc -static bench/memhog.c failed"
tar -C "$D/rootfs" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -cf "$D/memhog-layer.tar" . ||
	die "tar of the memhog rootfs failed"
_kyb_oci_archive "$D/memhog.tar" "$D/memhog-layer.tar" "$MEMHOG_IMAGE" "[\"memhog\", \"$MIB\"]"

KYB_CTD_NS=k8s.io ctd_start podbench "$CTD_V"
kyb_on_exit 'cp "$CTD_LOG" "$LOGS/containerd.log" 2>/dev/null'
kyb_image_import k8s.io "$KYB_PAUSE_TAR" "$D/memhog.tar"

# A network namespace per pod: the CNI bridge plugin, host-local addresses.
mkdir -p "$CTD_ROOT/cni-bin" "$CTD_ROOT/cni-conf" "$CTD_ROOT/ipam"
ln -sf /usr/lib/cni/* "$CTD_ROOT/cni-bin/"
jq -n --arg br "$BRIDGE" --arg subnet "$SUBNET" --arg ipam "$CTD_ROOT/ipam" '{cniVersion: "0.4.0",
	name: "kybpod", plugins: [{type: "bridge", bridge: $br, isGateway: true, ipMasq: false,
	ipam: {type: "host-local", ranges: [[{subnet: $subnet}]], dataDir: $ipam}}]}' \
	>"$CTD_ROOT/cni-conf/10-kyb.conflist"
kyb_on_exit 'ip link del "$BRIDGE" >/dev/null 2>&1'
sleep 3
kyb_wait_eval 30 '[ "$(cri status | jq -r ".status.conditions[] | select(.type == \"NetworkReady\") | .status")" = true ]' ||
	die "containerd did not load the CNI network: $(cri status 2>&1 | jq -c . 2>&1)"

# ---- pods ------------------------------------------------------------------------------------

# Per pod (by uid): $D/pods/<uid>/{pod.json,<name>.json,logs/<name>/0.log}.
POD_UIDS=()
rm_pod_cgroups() {
	local u d
	for u in "${POD_UIDS[@]}"; do
		for d in /sys/fs/cgroup/*/kubepods/pod"$u" /sys/fs/cgroup/kubepods/pod"$u"; do
			[ ! -d "$d" ] || rmdir "$d" 2>/dev/null
		done
	done
	rmdir /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods 2>/dev/null
	return 0
}
kyb_on_exit 'rm_pod_cgroups'
# Pods are removed before containerd stops (registered after ctd_start: runs first).
kyb_on_exit 'for p in $(cri pods 2>/dev/null | jq -r ".[].id" 2>/dev/null); do cri stopp "$p"; cri rmp "$p"; done >/dev/null 2>&1'

pod_json() { # NAME UID
	jq -n --arg n "$1" --arg ns "$NS" --arg u "$2" --arg d "$D/pods/$2/logs" --arg cgp "/kubepods/pod$2" \
		'{metadata: {name: $n, uid: $u, namespace: $ns, attempt: 0}, hostname: $n, log_directory: $d,
		linux: {cgroup_parent: $cgp, security_context: {namespace_options: {network: "POD", pid: "CONTAINER"}}}}'
}
ctr_json() { # NAME MODE(hog|sleep|restore:ID)
	local cmd='["memhog", "'"$MIB"'"]' env='[]'
	case $2 in
	sleep) cmd='["sleep", "600"]' ;;
	restore:*) env=$(jq -cn --arg id "${2#restore:}" '[{key: "RESTORE_FROM", value: $id}]') ;;
	esac
	jq -n --arg n "$1" --arg img "$MEMHOG_IMAGE" --argjson cmd "$cmd" --argjson env "$env" '{metadata: {name: $n,
		attempt: 0}, image: {image: $img}, command: $cmd, envs: $env, log_path: ($n + "/0.log"),
		linux: {security_context: {namespace_options: {pid: "CONTAINER"}}}}'
}

# POD_ID, CID[name], T_TOTAL, T_CREATE, T_START (ms; the latter two sums) after
# run_pod NAME UID MODE [HOW]: the sandbox (not timed), then each container
# created and started in order. MODE as ctr_json's, "restore" taking each
# member's id from MEMBER[name]. HOW "one" (the default): all containers in one
# cri-client process (`createstart`), timed inside it, as kubelet (a long-lived
# client) would see it; "calls": one cri-client process per CRI call, timed
# here around them (each call pays node's start-up). Either way from the first
# CreateContainer to the last StartContainer's return, or to all RUNNING
# should CRI not say so by then. Returns 1 with RUN_ERR.
POD_ID=""
RUN_ERR=""
T_TOTAL=0 T_CREATE=0 T_START=0
declare -A CID MEMBER
run_pod() {
	local name=$1 uid=$2 mode=$3 how=${4:-one} c m out a b e t0 t1 cfgs=()
	POD_ID="" RUN_ERR="" T_TOTAL=0 T_CREATE=0 T_START=0
	CID=()
	POD_UIDS+=("$uid")
	for c in $CONTAINERS; do mkdir -p "$D/pods/$uid/logs/$c"; done
	pod_json "$name" "$uid" >"$D/pods/$uid/pod.json"
	for c in $CONTAINERS; do
		m=$mode
		[ "$mode" != restore ] || m=restore:${MEMBER[$c]}
		ctr_json "$c" "$m" >"$D/pods/$uid/$c.json"
		cfgs+=("$D/pods/$uid/$c.json")
	done
	if ! POD_ID=$(cri runp "$D/pods/$uid/pod.json" "$KYB_CRI_HANDLER" 2>&1); then
		RUN_ERR="RunPodSandbox: $POD_ID" POD_ID=""
		return 1
	fi
	sync
	if [ "$how" = one ]; then
		out=$(cri createstart "$POD_ID" "$D/pods/$uid/pod.json" "${cfgs[@]}" 2>"$D/createstart.err")
		local rc=$?
		while read -r a b e; do
			if [ -z "$e" ] && [ -n "$b" ]; then CID[$a]=$b; else read -r T_TOTAL T_CREATE T_START <<<"$a $b $e"; fi
		done <<<"$out"
		if [ $rc -ne 0 ] || [ "${#CID[@]}" -ne "${#cfgs[@]}" ] || ! [[ $T_TOTAL =~ ^[0-9.]+$ ]]; then
			RUN_ERR="cri createstart (exit $rc): $out $(cat "$D/createstart.err")"
			return 1
		fi
		return 0
	fi
	t0=$(now_ns)
	for c in $CONTAINERS; do
		a=$(now_ns)
		if ! CID[$c]=$(cri create "$POD_ID" "$D/pods/$uid/$c.json" "$D/pods/$uid/pod.json" 2>&1); then
			RUN_ERR="CreateContainer $c: ${CID[$c]}"
			return 1
		fi
		b=$(now_ns)
		if ! out=$(cri start "${CID[$c]}" 2>&1); then
			RUN_ERR="StartContainer $c: $out; status: $(cri inspect "${CID[$c]}" 2>/dev/null |
				jq -c '.status | {state, reason, message}')"
			return 1
		fi
		e=$(now_ns)
		T_CREATE=$(awk -v s="$T_CREATE" -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", s + (b - a) / 1e6 }')
		T_START=$(awk -v s="$T_START" -v b="$b" -v e="$e" 'BEGIN { printf "%.1f", s + (e - b) / 1e6 }')
	done
	t1=$(now_ns)
	# StartContainer returns once the task runs; should CRI not say RUNNING
	# yet, the time runs on until it does.
	if ! all_running; then
		kyb_wait_eval 60 all_running || {
			RUN_ERR="not all RUNNING: $(for c in $CONTAINERS; do cri inspect "${CID[$c]}" | jq -c '.status | {state, reason, message}'; done)"
			return 1
		}
		t1=$(now_ns)
	fi
	T_TOTAL=$(ms "$t0" "$t1")
}
all_running() {
	local c
	for c in $CONTAINERS; do
		[ "$(cri inspect "${CID[$c]}" 2>/dev/null | jq -r .status.state)" = CONTAINER_RUNNING ] || return 1
	done
}
# ctd_start_ms CID...: the sum of containerd's own StartContainer times for
# these containers (from its log: "StartContainer for ID" to "... returns
# successfully"), in ms; "-" unless every one is there. No client start-up in it.
ctd_start_ms() {
	perl -MTime::Local -e '
		my ($log, @ids) = @ARGV; my %want = map { $_ => 1 } @ids; my (%b, $sum, $n);
		sub t { my ($y, $mo, $d, $h, $mi, $s, $f) = $_[0] =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(\.\d+)?Z$/ or return 0;
			timegm($s, $mi, $h, $d, $mo - 1, $y) + ($f // 0) }
		open(my $fh, "<", $log) or exit 1;
		while (<$fh>) {
			next unless /^time="([^"]+)".*StartContainer for \\"([0-9a-f]{64})\\"( returns successfully)?/ && $want{$2};
			if ($3) { if (defined $b{$2}) { $sum += t($1) - $b{$2}; $n++ } } else { $b{$2} = t($1) }
		}
		if ($n == @ids) { printf "%.1f\n", $sum * 1000 } else { print "-\n" }' "$CTD_LOG" "$@"
}
rm_pod() { [ -z "$1" ] || { cri stopp "$1" && cri rmp "$1"; } >/dev/null 2>&1; }
# numbers UID NAME: the numbers memhog printed (CRI log lines "<time> stdout F <n>").
numbers() { sed -nE 's/^[^ ]+ stdout F ([0-9]+)$/\1/p' "$D/pods/$1/logs/$2/0.log" 2>/dev/null; }

# The pod checkpointed in every run.
UID0=podbench-$$
run_pod "$POD" "$UID0" hog || die "the pod does not run: $RUN_ERR"
SRC_POD=$POD_ID
declare -A SRC_CID
for c in $CONTAINERS; do
	SRC_CID[$c]=${CID[$c]}
	kyb_wait 120 sh -c "grep -qE ' stdout F [0-9]+$' '$D/pods/$UID0/logs/$c/0.log'" ||
		die "$c prints nothing: $(tail -n 3 "$D/pods/$UID0/logs/$c/0.log" 2>&1)"
done
RSS=$(for c in $CONTAINERS; do
	pid=$(cri inspect "${SRC_CID[$c]}" | jq -r '.info.info.pid // .info.pid // 0')
	awk '$1 == "VmRSS:" { printf "%.0f\n", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null
done | paste -sd/)
log "pod $NS/$POD ($SRC_POD) runs; RSS of its containers $RSS MiB"

# Raw restore bundles: each original container's spec (its pod's namespaces,
# mounts and all), a plain rootfs directory with the same files.
for c in $CONTAINERS; do
	mkdir -p "$D/rawb-$c"
	jq --arg root "$D/rootfs" '.root = {path: $root, readonly: false}' \
		"$(ctd_bundle "${SRC_CID[$c]}" k8s.io)/config.json" >"$D/rawb-$c/config.json" ||
		die "cannot read the spec of $c"
done
kyb_on_exit 'for c in $(runc --root "$RAW_ROOT" list -q 2>/dev/null); do runc --root "$RAW_ROOT" delete -f "$c"; done; rmdir /sys/fs/cgroup/*/podbench-raw/* /sys/fs/cgroup/*/podbench-raw 2>/dev/null'

declare -A R

# ---- 1. checkpoint ---------------------------------------------------------------------------

# ckpt_pod RUN: kybernatectl checkpoint --pod; R[RUN.pod.*], PODCK[RUN], MEMBER[name].
declare -A PODCK
ckpt_pod() {
	local i=$1 t0 t1 out j c id bytes=0 fz=0 fr=0 a b
	sync
	t0=$(now_ns)
	out=$("$CTL" checkpoint -q --pod "$NS/$POD" 2>"$D/ctl.err")
	local rc=$?
	t1=$(now_ns)
	id=$(echo "$out" | grep -E '^[0-9a-f]{32}$' | tail -n 1)
	[ $rc -eq 0 ] && [ -n "$id" ] || die "kybernatectl checkpoint --pod $NS/$POD failed (exit $rc): $out $(cat "$D/ctl.err")"
	R[$i.pod.t]=$(ms "$t0" "$t1")
	PODCK[$i]=$id
	j=$("$CTL" inspect --json "$id" | jq -c '.checkpoint // .')
	R[$i.pod.frozen]=$(jq -r '.frozen_usec // .frozenUsec // "-"' <<<"$j")
	MEMBER=()
	while read -r c id; do MEMBER[$c]=$id; done < <(jq -r '(.members // [])[] | (.k8s_container // .k8sContainer) + " " + .id' <<<"$j")
	for c in $CONTAINERS; do
		[ -n "${MEMBER[$c]:-}" ] || die "pod checkpoint ${PODCK[$i]} has no member $c: $j"
		local dir=$D/kyb/store/checkpoints/${MEMBER[$c]}
		bytes=$((bytes + $(du -sb "$dir/checkpoint" | cut -f1)))
		read -r a b < <(stats_dump "$dir/stats-dump")
		[ "$a" = - ] || fz=$((fz + a))
		[ "$b" = - ] || fr=$((fr + b))
		cp "$dir/dump.log" "$LOGS/ck-$i-pod-$c-dump.log" 2>/dev/null
	done
	R[$i.pod.bytes]=$bytes
	R[$i.pod.freezing]=$fz
	R[$i.pod.criufrozen]=$fr
}

# ckpt_raw RUN: the three raw checkpoints, each then synced; R[RUN.raw.*].
ckpt_raw() {
	local i=$1 c img w t0 t1 t2 a b sum_t=0 sum_ts=0 bytes=0 fz=0 fr=0
	rm -rf --one-file-system "$D/raw/$i"
	mkdir -p "$D/raw/$i"
	for c in $CONTAINERS; do
		img=$D/raw/$i/$c w=$D/raw/$i/work-$c
		sync
		t0=$(now_ns)
		runc --root "$RUNC_ROOT" checkpoint --leave-running --tcp-established --image-path "$img" \
			--work-path "$w" "${SRC_CID[$c]}" >"$D/raw/runc.out" 2>&1 ||
			die "runc checkpoint of $c failed: $(cat "$D/raw/runc.out") $(tail -n 5 "$w/dump.log" 2>/dev/null)"
		t1=$(now_ns)
		# kybernated's store_sync_tree + store_fsync_path, as checkpoint-bench.
		find "$img" -exec sync -- {} + && sync -- "$D/raw/$i"
		t2=$(now_ns)
		sum_t=$(awk -v s="$sum_t" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", s + (b - a) / 1e6 }')
		sum_ts=$(awk -v s="$sum_ts" -v a="$t0" -v b="$t2" 'BEGIN { printf "%.1f", s + (b - a) / 1e6 }')
		bytes=$((bytes + $(du -sb "$img" | cut -f1)))
		read -r a b < <(stats_dump "$w/stats-dump")
		[ "$a" = - ] || fz=$((fz + a))
		[ "$b" = - ] || fr=$((fr + b))
		cp "$w/dump.log" "$LOGS/ck-$i-raw-$c-dump.log" 2>/dev/null
	done
	R[$i.raw.t]=$sum_t
	R[$i.raw.ts]=$sum_ts
	R[$i.raw.bytes]=$bytes
	R[$i.raw.freezing]=$fz
	R[$i.raw.criufrozen]=$fr
}

# ---- 2. restore ------------------------------------------------------------------------------

# restore_ours RUN HOW: a new pod from the members of PODCK[RUN], run_pod's
# HOW; R[RUN.ours.*] (one client) or R[RUN.oursc.*] (a client per call).
restore_ours() {
	local i=$1 how=$2 k=ours uid=podbench-r$1$2-$$ c first
	[ "$how" = one ] || k=oursc
	if run_pod "$RPOD" "$uid" restore "$how"; then
		R[$i.$k.t]=$T_TOTAL
		R[$i.$k.create]=$T_CREATE
		R[$i.$k.start]=$T_START
		R[$i.$k.ctdstart]=$(ctd_start_ms "${CID[@]}")
		# memhog counts on: its first number after the restore is not 0.
		first=
		for c in $CONTAINERS; do
			kyb_wait 20 sh -c "grep -qE ' stdout F [0-9]+$' '$D/pods/$uid/logs/$c/0.log'"
			first+="${first:+/}$(numbers "$uid" "$c" | head -n 1)"
		done
		R[$i.$k.first]=$first
	else
		R[$i.$k.t]=fail
		log "restore of run $i through our shim ($how) failed: $RUN_ERR"
	fi
	rm_pod "$POD_ID"
}

# fresh_pod RUN HOW: the same pod with `sleep`, no restore; R[RUN.fresh.*]
# (one client) or R[RUN.freshc.*] (a client per call).
fresh_pod() {
	local i=$1 how=$2 k=fresh uid=podbench-f$1$2-$$
	[ "$how" = one ] || k=freshc
	if run_pod "$RPOD" "$uid" sleep "$how"; then
		R[$i.$k.t]=$T_TOTAL
		R[$i.$k.create]=$T_CREATE
		R[$i.$k.start]=$T_START
		R[$i.$k.ctdstart]=$(ctd_start_ms "${CID[@]}")
	else
		R[$i.$k.t]=fail
		log "fresh pod of run $i ($how) failed: $RUN_ERR"
	fi
	rm_pod "$POD_ID"
}

# restore_raw RUN: three `runc restore -d` of run RUN's raw images; R[RUN.raw.rt].
restore_raw() {
	local i=$1 c id b w rt s e rc sum=0 ok=1 ids=()
	for c in $CONTAINERS; do
		id=podbench-raw-$i-$c b=$D/rawb-$c w=$D/work/rw-$i-$c rt=$D/work/rt-$i-$c
		jq --arg cg "/podbench-raw/$id" '.linux.cgroupsPath = $cg' "$b/config.json" >"$b/config.json.new" &&
			mv "$b/config.json.new" "$b/config.json"
		rm -f "$rt"
		sync
		# stdio on pipes (as the shim's); runc restore -d returns once the process
		# runs. Timed inside, so the reader on the pipe is no part of it.
		(true | {
			s=$(now_ns)
			runc --root "$RAW_ROOT" restore -d --tcp-established --image-path "$D/raw/$i/$c" \
				--work-path "$w" -b "$b" "$id"
			rc=$?
			e=$(now_ns)
			echo "$s $e $rc" >"$rt"
		} 2>&1 | cat >"$D/work/$id.log") &
		kyb_wait 120 test -s "$rt"
		read -r s e rc <"$rt" || rc=1
		ids+=("$id")
		if [ "${rc:-1}" = 0 ]; then
			sum=$(awk -v x="$sum" -v a="$s" -v b="$e" 'BEGIN { printf "%.1f", x + (b - a) / 1e6 }')
		else
			ok=0
			log "raw runc restore of $c (run $i) failed: $(tail -n 3 "$D/work/$id.log")"
			cp "$w/restore.log" "$LOGS/$id-restore.log" 2>/dev/null
			break
		fi
	done
	if [ $ok = 1 ]; then R[$i.raw.rt]=$sum; else R[$i.raw.rt]=fail; fi
	for id in "${ids[@]}"; do
		runc --root "$RAW_ROOT" kill "$id" KILL >/dev/null 2>&1
	done
	sleep 0.3
	for id in "${ids[@]}"; do
		runc --root "$RAW_ROOT" delete -f "$id" >/dev/null 2>&1
		rmdir /sys/fs/cgroup/*/podbench-raw/"$id" 2>/dev/null
		kyb_rm_tree "$D/work/rw-$i-${id##*-}"
	done
}

# ---- the runs --------------------------------------------------------------------------------

START=$(date -u '+%Y-%m-%d %H:%M UTC')
UPTIME0=$(uptime)
for ((i = 0; i <= RUNS; i++)); do # run 0: warm-up
	if ((i % 2)); then
		ckpt_pod "$i"
		ckpt_raw "$i"
	else
		ckpt_raw "$i"
		ckpt_pod "$i"
	fi
	log "run $i checkpoint: pod ${R[$i.pod.t]} ms (frozen $(usms "${R[$i.pod.frozen]}") ms)," \
		"raw sum ${R[$i.raw.t]} ms, +sync ${R[$i.raw.ts]} ms"
	if ((i % 2)); then
		restore_ours "$i" one
		restore_raw "$i"
		restore_ours "$i" calls
		fresh_pod "$i" one
		fresh_pod "$i" calls
	else
		restore_ours "$i" calls
		restore_raw "$i"
		restore_ours "$i" one
		fresh_pod "$i" calls
		fresh_pod "$i" one
	fi
	log "run $i restore: ours ${R[$i.ours.t]} ms (create ${R[$i.ours.create]:--}, start ${R[$i.ours.start]:--})," \
		"a client per call ${R[$i.oursc.t]} ms, raw sum ${R[$i.raw.rt]} ms, fresh pod ${R[$i.fresh.t]} ms" \
		"(a client per call ${R[$i.freshc.t]} ms); first numbers after restore ${R[$i.ours.first]:--} / ${R[$i.oursc.first]:--}"
	"$CTL" delete "${PODCK[$i]}" >/dev/null 2>&1 || log "kybernatectl delete ${PODCK[$i]} failed"
	rm -rf --one-file-system "$D/raw/$i"
done
UPTIME1=$(uptime)

# ---- report ----------------------------------------------------------------------------------

med() { # FIELD: median over runs 1..RUNS of R[i.FIELD]
	local i
	for ((i = 1; i <= RUNS; i++)); do
		echo "${R[$i.$1]:-}"
	done | grep -E '^[0-9.]+$' | median
}
all() {
	local i out=
	for ((i = 1; i <= RUNS; i++)); do out+="${out:+, }${R[$i.$1]:--}"; done
	echo "$out"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2fx", a / b }'; }
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.1f", a - b }'; }

table_ckpt() {
	local pod raw raws
	pod=$(med pod.t) raw=$(med raw.t) raws=$(med raw.ts)
	echo "| way | total [ms] | vs raw + sync | pod frozen [ms] | CRIU freezing, sum [ms] | CRIU frozen, sum [ms] | images [MiB] |"
	echo "|:---|---:|---:|---:|---:|---:|---:|"
	echo "| \`kybernatectl checkpoint --pod\`, durable=yes | $pod | $(ratio "$pod" "$raws") | $(usms "$(med pod.frozen)") | $(usms "$(med pod.freezing)") | $(usms "$(med pod.criufrozen)") | $(mib "$(med pod.bytes)") |"
	echo "| 3 x raw \`runc checkpoint\` + fsync of every file, sum | $raws | 1.00x | (each its own) | $(usms "$(med raw.freezing)") | $(usms "$(med raw.criufrozen)") | $(mib "$(med raw.bytes)") |"
	echo "| 3 x raw \`runc checkpoint\`, unsynced, sum | $raw | | | | | |"
}
table_restore() {
	local ours oursc raw fresh freshc oc fc
	ours=$(med ours.t) oursc=$(med oursc.t) raw=$(med raw.rt) fresh=$(med fresh.t) freshc=$(med freshc.t)
	oc=$(med ours.ctdstart) fc=$(med fresh.ctdstart)
	echo "| way | total [ms] | vs raw | CreateContainer, sum [ms] | StartContainer, sum [ms] | StartContainer inside containerd, sum [ms] |"
	echo "|:---|---:|---:|---:|---:|---:|"
	echo "| ours: new pod, 3 x create + start with \`RESTORE_FROM=<member>\`, one client process | $ours | $(ratio "$ours" "$raw") | $(med ours.create) | $(med ours.start) | $oc |"
	echo "| the same, a client process per CRI call (six) | $oursc | $(ratio "$oursc" "$raw") | $(med oursc.create) | $(med oursc.start) | $(med oursc.ctdstart) |"
	echo "| 3 x raw \`runc restore -d\`, sum | $raw | 1.00x | | | |"
	echo "| fresh pod (ours, \`sleep\`, no restore): 3 x create + start, one client process | $fresh | | $(med fresh.create) | $(med fresh.start) | $fc |"
	echo "| the same, a client process per CRI call (six) | $freshc | | $(med freshc.create) | $(med freshc.start) | $(med freshc.ctdstart) |"
	echo "| ours minus the fresh pod, one client process each | $(diff_ms "$ours" "$fresh") | $(ratio "$(diff_ms "$ours" "$fresh")" "$raw") | | | $(diff_ms "$oc" "$fc") ($(ratio "$(diff_ms "$oc" "$fc")" "$raw") of raw) |"
}
detail() {
	echo "    checkpoint pod [ms]: $(all pod.t)"
	echo "    checkpoint pod frozen [us]: $(all pod.frozen)"
	echo "    checkpoint raw sum [ms]: $(all raw.t)"
	echo "    checkpoint raw sum + sync [ms]: $(all raw.ts)"
	echo "    checkpoint CRIU freezing sum pod / raw [us]: $(all pod.freezing) / $(all raw.freezing)"
	echo "    restore ours, one client [ms]: $(all ours.t)"
	echo "    restore ours, one client, create / start sums [ms]: $(all ours.create) / $(all ours.start)"
	echo "    restore ours, one client, StartContainer inside containerd, sum [ms]: $(all ours.ctdstart)"
	echo "    restore ours, a client per call [ms]: $(all oursc.t)"
	echo "    restore ours, a client per call, StartContainer inside containerd, sum [ms]: $(all oursc.ctdstart)"
	echo "    restore raw sum [ms]: $(all raw.rt)"
	echo "    fresh pod, one client / a client per call [ms]: $(all fresh.t) / $(all freshc.t)"
	echo "    fresh pod StartContainer inside containerd, sum, one client [ms]: $(all fresh.ctdstart)"
	echo "    first numbers after restore (hog1/hog2/hog3), one client / a client per call: $(all ours.first) / $(all oursc.first)"
	echo "    warm-up (run 0): pod ${R[0.pod.t]} ms, raw + sync ${R[0.raw.ts]} ms; restore ours ${R[0.ours.t]} ms (a client per call ${R[0.oursc.t]} ms), raw ${R[0.raw.rt]} ms, fresh ${R[0.fresh.t]} ms (${R[0.freshc.t]} ms)"
}
TAB1=$(table_ckpt)
TAB2=$(table_restore)
DETAIL=$(detail)
printf '%s\n\n%s\n\n%s\n' "$TAB1" "$TAB2" "$DETAIL"

section() {
	cat <<EOF
## Whole pods

A pod of three containers checkpointed as a unit (\`kybernatectl checkpoint --pod\`) against
three raw \`runc checkpoint\` runs of the same containers at the same durability, and a new pod
restored from it through our shim against three raw \`runc restore\` runs (issue 12's targets:
both within 1.1x of the raw sum; the time the pod stands frozen reported).

How: \`bench/pod-bench.sh\` (root), one private containerd $CTD_V driven through CRI
(\`tests/lib/cri-client.js\` standing in for kubelet), handler \`kybernate\`, one kybernated with
\`durable=yes\` (the default). The pod has a network namespace of its own (CNI bridge) and the
cgroup parent \`/kubepods/pod<uid>\` kubelet's cgroupfs driver gives it; its three containers are
each \`bench/memhog.c\` (static, in a one-layer OCI image built by the script) holding $MIB MiB of
touched, distinct pages (RSS $RSS MiB). Checkpoint, the containers left running, order
alternating: \`kybernatectl checkpoint --pod NS/POD\` (the pod's cgroup frozen, then each
container dumped with \`--tcp-established\` while all stay frozen, each checkpoint's files and
directories fsynced, then all thawed); against, for each container, \`runc --root
/run/containerd/runc/k8s.io checkpoint --leave-running --tcp-established --image-path DIR\`
followed by the syncing kybernated does when durable (fsync of every file and directory of the
images and of the directory holding them: \`find DIR -exec sync -- {} +; sync -- PARENT\`), the
three summed. "Pod frozen" is the pod checkpoint's \`frozen_usec\` (\`kybernatectl inspect
--json\`: from the freeze of the pod's cgroup to its thaw); CRIU freezing/frozen are the sums of
\`freezing_time\`/\`frozen_time\` of the three dumps' \`stats-dump\`. Restore: a new pod
(RunPodSandbox not timed) whose three containers are created and started in order with
\`RESTORE_FROM=<member checkpoint id>\`, timed from the first CreateContainer to the last
StartContainer's return with all three RUNNING. Two ways, order alternating: all six calls
from one cri-client process (\`cri-client.js createstart\`: connected before the clock starts,
timed inside with \`process.hrtime\`), as kubelet, one long-lived client, makes them; and one
cri-client process per call, timed by the script around them, each call paying a \`node\`
start-up that loads gRPC and the CRI proto (a second restore of the same checkpoint). Against
three \`runc restore -d --tcp-established\` of the raw images just taken (bundle: the original
container's \`config.json\` with a plain rootfs directory holding the same files and a new
cgroup; stdio on pipes), each timed until runc returns, summed. A fresh pod of the same three
containers running \`sleep\` (no restore), both ways, shows what CRI create + start cost
through containerd and our shim anyway. "Inside containerd": from containerd's log, its own
StartContainer lines for each container (request to "returns successfully"), summed: the
restore as containerd and our shim do it, without any client; the difference to the fresh
pod's is what the restore adds. \`sync\` before each measurement; checkpoints and images
deleted after each run. Medians of $RUNS runs after one warm-up.

Command, exactly as run:

    BUILD=\$PWD/build $CMDLINE

Run $START, tree at $TREE$DIRTY, containerd $CTD_V, runc $(runc --version | awk 'NR == 1 { print $3 }'), CRIU $(criu --version 2>/dev/null | awk '/^Version:/ { print $2 }'), kernel $(uname -r),
$(nproc) cores, local ext4, a shared VM with other engineers' tests running. \`uptime\` before:
\`${UPTIME0# }\`; after: \`${UPTIME1# }\`.

Checkpoint (leave running):

$TAB1

Restore:

$TAB2

Every run (in order):

$DETAIL
EOF
}

if [ "$WRITE_DOCS" = 1 ]; then
	section >"$KYB_TMP/section.md"
	if [ -n "${PODBENCH_NOTES:-}" ] && [ -s "$PODBENCH_NOTES" ]; then
		{
			echo
			cat "$PODBENCH_NOTES"
		} >>"$KYB_TMP/section.md"
	fi
	docs_write_section "Whole pods" "$KYB_TMP/section.md"
fi
kyb_finish
