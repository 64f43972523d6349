#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The Kubernetes checkpoint API (issue 11, Performance): CRI CheckpointContainer
# of a running container through our shim (handler "kybernate") against
# containerd 2.1's own runc shim (handler "runc", containerd-shim-runc-v2),
# side by side in one run of one private containerd 2.1.
#
#   BUILD=$PWD/build bench/kubelet-bench.sh [--runs N] [--mib N] [--small-mib N]
#                                           [--durable yes|no] [--store DIR]
#                                           [--drop-store-cache yes|no] [--runc-keep yes|no]
#
# Two sizes: "small", bench/memhog.c holding --small-mib (default 4) MiB, and
# "large", memhog holding --mib (default 1024) MiB of touched memory, each in a
# pod of its own per handler (all four pods run at once, host network, PID
# namespace of their own; image: a busybox root filesystem with memhog, built
# and imported here). Our handler talks to a private kybernated started with
# durable = --durable (default no: containerd's runc path does not fsync the
# archive either) and its store in --store DIR (default: a directory in the
# script's temporary directory, on the same filesystem as containerd's; DIR
# must exist, e.g. a tmpfs mount point, and is left in place). A diagnosis:
# --drop-store-cache yes drops the page cache of kybernated's store (dd
# iflag=nocache) as containerd's log shows its checkpoint image, i.e. as its
# archive step starts, in odd rounds only (even rounds are the control); only
# clean pages are dropped, so it needs --durable yes. Another: --runc-keep yes
# makes runc's path keep its dump as our catalog does, in odd rounds only (even
# rounds are the control): while the runc handler checkpoints the large pod, a
# watcher finds the `runc checkpoint` of that container, hard-links every
# regular file of its --image-path (containerd's temporary ctrd-checkpoint
# directory, which containerd removes once it has its checkpoint image) into a
# holding directory beside it, and the links are removed only at the end of the
# round; in even rounds the same watcher runs and only looks. Each keep round
# prints what was kept; the 1 GiB medians are then also given by round parity
# (odd: ours first, runc's dump kept; even: runc first, control). Each round checkpoints every pod once, as kubelet asks it
# (tests/lib/cri-client.js `checkpoint ID PATH 0`: CRI CheckpointContainer
# with location <root>/checkpoints/checkpoint-<pod>_<ns>-<ctr>-<time>.tar and
# no timeout), the handlers' order alternating per round. `sync` runs before
# each; the time is the wall time of the CRI client (its own start, a node
# process, is in both: the "client floor" line is `cri status` alone). After
# each checkpoint: the archive exists, the container still runs; then the
# archive and kybernated's checkpoints are deleted. Prints every run and the
# medians (and the ratio ours/runc), then where each run's time went, from
# kybernated's and containerd's log lines (request to kybernated's dump, the
# dump, to containerd's checkpoint image, to its archive, to the client's
# return), and the page cache during the archive step: the most memory that
# was dirty or under writeback, and what the kernel wrote back (machine-wide,
# /proc/meminfo and /proc/vmstat sampled every 100 ms); writes nothing to
# docs/. Needs root,
# runc, CRIU >= 4, node with the CRI client, containerd 2.1 (scripts/setup.sh)
# and a built shim, kybernated and kybernatectl.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/common.sh
. "$(dirname "$0")/../tests/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

RUNS=3
MIB=1024
SMALL_MIB=4
DURABLE=no
STORE=
DROP=no
KEEP=no
usage="usage: bench/kubelet-bench.sh [--runs N] [--mib N] [--small-mib N] [--durable yes|no] [--store DIR] [--drop-store-cache yes|no] [--runc-keep yes|no]"
while [ $# -gt 0 ]; do
	case $1 in
	--runs) RUNS=${2:-} && shift 2 ;;
	--mib) MIB=${2:-} && shift 2 ;;
	--small-mib) SMALL_MIB=${2:-} && shift 2 ;;
	--durable) DURABLE=${2:-} && shift 2 ;;
	--store) STORE=${2:-} && shift 2 ;;
	--drop-store-cache) DROP=${2:-} && shift 2 ;;
	--runc-keep) KEEP=${2:-} && shift 2 ;;
	*) die "$usage" ;;
	esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ && $MIB =~ ^[0-9]+$ && $SMALL_MIB =~ ^[0-9]+$ ]] || die "$usage"
[[ $DURABLE =~ ^(yes|no)$ && $DROP =~ ^(yes|no)$ && $KEEP =~ ^(yes|no)$ ]] || die "$usage"
[ -z "$STORE" ] || [ -d "$STORE" ] || die "--store $STORE: no such directory"

require_root
require_cmd runc criu jq tar cc
require_cri
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
ctd_have 2.1 || die "containerd 2.1 is not installed in $(ctd_bin_dir 2.1) (scripts/setup.sh)"
criu check >/dev/null 2>&1 || die "criu check fails here (CRIU >= 4 is needed: run scripts/setup.sh)"

D=$KYB_TMP
STORE=${STORE:-$D/store}
CTL=$BUILD/kybernatectl
NS=bench
IMG=docker.io/kybernate/memhog:bench
HANDLERS=(kybernate runc)

# ---- private kybernated and containerd 2.1 ------------------------------------------

SOCK_DIR=$(mktemp -d /run/kybkbench.XXXXXX)
kyb_on_exit "rm -rf --one-file-system '$SOCK_DIR'"
export KYBERNATE_SOCKET=$SOCK_DIR/kybernated.sock
printf 'durable = %s\n' "$DURABLE" >"$D/kybernated.conf"
"$BUILD/kybernated" --config "$D/kybernated.conf" --store "$STORE" --socket "$KYBERNATE_SOCKET" \
	--runc-root-base /run/containerd/runc >"$D/kybernated.log" 2>&1 &
DAEMON_PID=$!
kyb_on_exit "kill $DAEMON_PID 2>/dev/null; wait $DAEMON_PID 2>/dev/null"
kyb_wait 10 "$CTL" status || die "kybernated did not come up: $(tail -n 20 "$D/kybernated.log")"

KYB_CTD_NS=k8s.io ctd_start "kybkbench-$$" 2.1
if [ "$DROP" = yes ]; then
	(
		tail -n 0 -F "$CTD_LOG" 2>/dev/null | grep --line-buffered -F 'ImageCreate event name:\"containerd.io/checkpoint/' |
			while read -r _; do
				[ -e "$D/drop" ] || continue
				find "$STORE/checkpoints" -type f -exec dd iflag=nocache count=0 status=none if={} \; 2>/dev/null
				echo "$(now_ns) dropped" >>"$D/drops.txt"
			done
	) &
	DROP_PID=$!
	kyb_on_exit "pkill -P $DROP_PID 2>/dev/null; kill $DROP_PID 2>/dev/null"
fi
kyb_image_build
kyb_image_import k8s.io "$KYB_PAUSE_TAR"

log "building memhog and its image"
mkdir -p "$D/img"
kyb_rootfs_build "$D/img/rootfs"
cc -static -O2 -o "$D/img/rootfs/bin/memhog" "$KYB_TOP/bench/memhog.c" || die "cc -static bench/memhog.c failed"
tar -C "$D/img/rootfs" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -cf "$D/img/layer.tar" .
_kyb_oci_archive "$D/img/memhog.tar" "$D/img/layer.tar" "$IMG" '["memhog","4"]'
kyb_image_import k8s.io "$D/img/memhog.tar"
rm -rf --one-file-system "$D/img"

# ---- pods -----------------------------------------------------------------------------

declare -A POD CTR LOGF
ctr_state() { cri inspect "$1" 2>/dev/null | jq -r .status.state; }
# start_pod KEY HANDLER MIB: a pod "KEY" running memhog MIB; waits for its first count.
start_pod() {
	local key=$1 handler=$2 mib=$3 uid=kybkb-$1-$$ logdir
	logdir=$D/pods/${NS}_${key}_$uid
	mkdir -p "$logdir/main"
	jq -n --arg n "$key" --arg ns "$NS" --arg u "$uid" --arg d "$logdir" '{metadata: {name: $n, uid: $u,
		namespace: $ns, attempt: 0}, log_directory: $d,
		linux: {security_context: {namespace_options: {network: "NODE"}}}}' >"$D/$key.pod.json"
	jq -n --arg img "$IMG" --arg mib "$mib" '{metadata: {name: "main", attempt: 0},
		image: {image: $img}, command: ["memhog", $mib], log_path: "main/0.log",
		linux: {security_context: {namespace_options: {pid: "CONTAINER"}}}}' >"$D/$key.ctr.json"
	POD[$key]=$(cri runp "$D/$key.pod.json" "$handler") || die "pod $key ($handler) does not run"
	kyb_on_exit "cri stopp '${POD[$key]}' >/dev/null 2>&1; cri rmp '${POD[$key]}' >/dev/null 2>&1"
	CTR[$key]=$(cri create "${POD[$key]}" "$D/$key.ctr.json" "$D/$key.pod.json") || die "container of $key does not create"
	cri start "${CTR[$key]}" >/dev/null || die "container of $key ($handler) does not start"
	LOGF[$key]=$logdir/main/0.log
	# memhog prints its first count once every page is touched
	kyb_wait 300 grep -q ' stdout F [0-9]' "${LOGF[$key]}" ||
		die "memhog $mib MiB in $key printed nothing: $(tail -n 5 "${LOGF[$key]}" 2>&1)"
}

SIZES=(small large)
declare -A SZ=([small]=$SMALL_MIB [large]=$MIB)
for s in "${SIZES[@]}"; do
	for h in "${HANDLERS[@]}"; do
		log "starting pod $s-$h (memhog ${SZ[$s]} MiB)"
		start_pod "$s-$h" "$h" "${SZ[$s]}"
	done
done

# ---- --runc-keep: runc's dump kept as our catalog keeps ours ------------------------------

# containerd's tasks service makes its temporary checkpoint directory with
# os.MkdirTemp($XDG_RUNTIME_DIR, "ctrd-checkpoint") (os.TempDir() when unset) and
# removes it once the checkpoint image is in its content store: the holding
# directory goes beside it, on the same filesystem, so the links can be made.
KEEP_HOLD=
if [ "$KEEP" = yes ]; then
	keep_base=$(tr '\0' '\n' <"/proc/$CTD_PID/environ" | sed -n 's/^XDG_RUNTIME_DIR=//p')
	[ -n "$keep_base" ] || keep_base=$(tr '\0' '\n' <"/proc/$CTD_PID/environ" | sed -n 's/^TMPDIR=//p')
	KEEP_HOLD=${keep_base:-/tmp}/kybkbench-keep.$$
	kyb_on_exit "rm -f '$D/keep.on'; rm -rf --one-file-system '$KEEP_HOLD'"
fi
# keep_watch ID MODE: until $D/keep.on is gone, finds the `runc checkpoint` of container ID
# (its --image-path is containerd's temporary checkpoint directory) and, with MODE link,
# hard-links every regular file of that directory not linked yet into $KEEP_HOLD; with MODE
# look it only lists them (the control does the same work but keeps nothing). Logs to
# $D/keep.log "dir DIR" and, per link, "link NAME LINKS" (the file's link count just after).
keep_watch() {
	local id=$1 mode=$2 dir='' line f n
	while [ -e "$D/keep.on" ]; do
		if [ -z "$dir" ]; then
			line=$(pgrep -a -x runc | grep -F ' checkpoint ' | grep -E " $id\$" | head -n 1)
			if [[ $line =~ --image-path[=\ ]([^ ]+) ]]; then
				dir=${BASH_REMATCH[1]}
				echo "dir $dir $(stat -c %d "$dir" 2>/dev/null) $(stat -c %d "$KEEP_HOLD")" >>"$D/keep.log"
			fi
		fi
		if [ -n "$dir" ] && [ -d "$dir" ]; then
			while IFS= read -r -d '' f; do
				[ "$mode" = link ] || continue
				n=${f#"$dir"/}
				n=${n//\//%}
				ln "$f" "$KEEP_HOLD/$n" 2>/dev/null && echo "link $n $(stat -c %h "$f" 2>/dev/null)" >>"$D/keep.log"
			done < <(find "$dir" -type f -links 1 -print0 2>/dev/null)
		fi
		sleep 0.05
	done
}

# ---- the runs -------------------------------------------------------------------------

declare -A R PARITY
# keep_report: after a large runc checkpoint with --runc-keep yes, what the watcher did, for the run's
# line: in a keep round the files and bytes held, the link count of each pages-*.img just after its
# link (2: containerd's and ours) and whether containerd's directory is gone (so the holding
# directory has the only links); in a control round only that the directory was found.
keep_report() {
	local dir dev hdev files bytes links gone
	read -r _ dir dev hdev < <(grep '^dir ' "$D/keep.log" | head -n 1)
	if [ -z "${dir:-}" ]; then
		echo "  (runc checkpoint not seen: nothing kept)"
		return
	fi
	gone=yes
	[ ! -d "$dir" ] || gone=no
	if [ "$keep_mode" = look ]; then
		echo "  (control: nothing kept; containerd's dir gone: $gone)"
		return
	fi
	[ "$dev" = "$hdev" ] || log "warning: $dir and $KEEP_HOLD are on different filesystems"
	files=$(find "$KEEP_HOLD" -type f | wc -l)
	bytes=$(du -sb "$KEEP_HOLD" | cut -f1)
	links=$(awk '$1 == "link" && $2 ~ /^pages-.*\.img$/ { printf "%s%s=%s", s, $2, $3; s = "," }' "$D/keep.log")
	echo "  kept $files files, $(mib "$bytes") MiB in $KEEP_HOLD (links when linked: ${links:-none}; containerd's dir gone: $gone)"
	[ "$bytes" -gt $((MIB * 1048576 / 2)) ] || log "warning: round $r kept only $bytes bytes of runc's dump"
}
rec() { R[$1]+="$2 "; }
kyb_clean_store() {
	local id
	for id in $("$CTL" list --json | jq -r '.[].id'); do
		"$CTL" delete "$id" >/dev/null 2>&1 || log "warning: kybernatectl delete $id failed"
	done
}

# The page cache, every 100 ms: "ns Dirty_KiB Writeback_KiB nr_written nr_dirtied".
perl -MTime::HiRes=time,sleep -e '$| = 1;
	while (1) { my %m; for my $f ("/proc/meminfo", "/proc/vmstat") { open(my $h, "<", $f) or next;
			while (<$h>) { $m{$1} = $2 if /^(Dirty|Writeback|nr_written|nr_dirtied):?\s+(\d+)/ } close $h }
		printf "%.0f %d %d %d %d\n", time * 1e9, @m{qw(Dirty Writeback nr_written nr_dirtied)}; sleep 0.1 }' \
	>"$D/pagecache.txt" 2>/dev/null &
SAMPLER_PID=$!
kyb_on_exit "kill $SAMPLER_PID 2>/dev/null; wait $SAMPLER_PID 2>/dev/null"

RUNLOG=$D/runs.txt
: >"$RUNLOG"
for ((r = 1; r <= RUNS; r++)); do
	if ((r % 2)); then order=(kybernate runc); else order=(runc kybernate); fi
	if [ "$DROP" = yes ] && ((r % 2)); then touch "$D/drop"; else rm -f "$D/drop"; fi
	if ((r % 2)); then parity=odd keep_mode=link; else parity=even keep_mode=look; fi
	for s in "${SIZES[@]}"; do
		for h in "${order[@]}"; do
			key=$s-$h
			loc=$D/kubelet/checkpoints/checkpoint-${key}_$NS-main-$(date -u +%Y-%m-%dT%H:%M:%SZ).tar
			mkdir -p "$(dirname "$loc")"
			keep_pid=''
			if [ "$KEEP" = yes ] && [ "$key" = large-runc ]; then
				: >"$D/keep.log"
				mkdir -p "$KEEP_HOLD"
				touch "$D/keep.on"
				keep_watch "${CTR[$key]}" "$keep_mode" &
				keep_pid=$!
			fi
			sync
			t0=$(now_ns)
			out=$(cri checkpoint "${CTR[$key]}" "$loc" 0 2>&1) || die "round $r: CheckpointContainer of $key failed: $out"
			t1=$(now_ns)
			t=$(ms "$t0" "$t1")
			kept=''
			if [ -n "$keep_pid" ]; then
				rm -f "$D/keep.on"
				wait "$keep_pid"
				kept=$(keep_report)
			fi
			[ -s "$loc" ] || die "round $r: no archive of $key at $loc"
			bytes=$(stat -c %s "$loc")
			[ "$(ctr_state "${CTR[$key]}")" = CONTAINER_RUNNING ] || die "round $r: $key does not run after its checkpoint"
			rec "$key" "$t"
			if [ "$KEEP" = yes ] && [ "$s" = large ]; then
				rec "$key@$parity" "$t"
				PARITY[$t0]=$parity
			fi
			echo "$key ${CTR[$key]} $t0 $t1 $loc" >>"$D/phases.in"
			printf 'round %d  %-6s %-9s %9s ms  archive %8s MiB%s\n' "$r" "$s" "$h" "$t" "$(mib "$bytes")" "$kept" | tee -a "$RUNLOG"
			rm -f "$loc"
			[ "$h" != kybernate ] || kyb_clean_store
		done
	done
	t0=$(now_ns)
	cri status >/dev/null 2>&1
	t1=$(now_ns)
	rec floor "$(ms "$t0" "$t1")"
	# the round's timing is done: runc's kept dump goes now
	[ -z "$KEEP_HOLD" ] || rm -rf --one-file-system "$KEEP_HOLD"
done

# ---- report ----------------------------------------------------------------------------

med() { tr ' ' '\n' <<<"${R[$1]}" | grep . | median; }
medp() { tr ' ' '\n' <<<"${R[$1]:-}" | grep -v '^-*$' | median; }
# iso_ns TIME: an RFC 3339 time as ns since the epoch.
iso_ns() { date -d "$1" +%s%N; }
# phases CTR_ID T0 T1 ARCHIVE: "req dump image archive rest" in ms ("-" where a log line is missing),
# then kybernated's dump's start and end and the archive step's start and end in ns ("-" likewise).
phases() {
	local id=$1 a=$2 b=$3 loc=$4 ks ke ci ca x
	x=$(sed -nE "s/^([^ ]+) kybernated\[[0-9]+\] info: Checkpoint [0-9a-f]+ of k8s\.io\/$id started.*/\1/p" "$D/kybernated.log" |
		while read -r x; do [ "$(iso_ns "$x")" -ge "$a" ] && [ "$(iso_ns "$x")" -le "$b" ] && echo "$x"; done | head -n 1)
	ks=${x:+$(iso_ns "$x")}
	x=$(sed -nE "s/^([^ ]+) kybernated\[[0-9]+\] info: Checkpoint [0-9a-f]+ of k8s\.io\/$id ready.*/\1/p" "$D/kybernated.log" |
		while read -r x; do [ "$(iso_ns "$x")" -ge "$a" ] && [ "$(iso_ns "$x")" -le "$b" ] && echo "$x"; done | head -n 1)
	ke=${x:+$(iso_ns "$x")}
	x=$(sed -nE "s/^time=\"([^\"]+)\" level=info msg=\"ImageCreate event name:\\\\\"containerd\.io\/checkpoint\/$id:.*/\1/p" "$CTD_LOG" |
		while read -r x; do [ "$(iso_ns "$x")" -ge "$a" ] && [ "$(iso_ns "$x")" -le "$b" ] && echo "$x"; done | head -n 1)
	ci=${x:+$(iso_ns "$x")}
	x=$(grep -F "Wrote checkpoint archive to $loc " "$CTD_LOG" | sed -nE 's/^time="([^"]+)".*/\1/p' | head -n 1)
	ca=${x:+$(iso_ns "$x")}
	echo "$([ -n "$ks" ] && ms "$a" "$ks" || echo -) $([ -n "$ks" ] && [ -n "$ke" ] && ms "$ks" "$ke" || echo -)" \
		"$([ -n "$ci" ] && ms "${ke:-$a}" "$ci" || echo -) $([ -n "$ci" ] && [ -n "$ca" ] && ms "$ci" "$ca" || echo -)" \
		"$([ -n "$ca" ] && ms "$ca" "$b" || echo -)" "${ks:--}" "${ke:--}" "${ci:--}" "${ca:--}"
}
# pagecache A B: "dirty written" in MiB between ns A and B: the most memory dirty or under
# writeback at one sample, and what the kernel wrote back (nr_written) ("- -" without samples).
pagecache() {
	awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b { n++; d = ($2 + $3) / 1024; if (d > m) m = d
			if (n == 1) w0 = $4; w1 = $4 }
		END { if (!n) print "- -"; else printf "%.0f %.0f\n", m, (w1 - w0) * 4 / 1024 }' "$D/pagecache.txt"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
echo
echo "containerd 2.1, CRI CheckpointContainer, $RUNS rounds, kybernated durable = $DURABLE, store $STORE ($(stat -f -c %T "$STORE"))"
[ "$KEEP" = no ] || echo "runc's dump of the large pod kept (hard links) until the round's end in odd rounds ($(grep -c 'kept [0-9]' "$RUNLOG") rounds kept it)"
[ "$DROP" = no ] || echo "the store's page cache dropped at the start of containerd's archive step in odd rounds ($(wc -l <"$D/drops.txt" 2>/dev/null || echo 0) drops)"
echo "load: $(uptime)"
echo "writeback: the kernel starts it at $(awk '/^nr_dirty_background_threshold / { printf "%.0f", $2 * 4 / 1024 }' /proc/vmstat) MiB dirty and throttles writers from $(awk '/^nr_dirty_threshold / { printf "%.0f", $2 * 4 / 1024 }' /proc/vmstat) MiB (vm.dirty_background_ratio $(cat /proc/sys/vm/dirty_background_ratio), vm.dirty_ratio $(cat /proc/sys/vm/dirty_ratio))"
echo
echo "| workload | ours (kybernate) median ms | runc shim median ms | ours/runc |"
echo "|---|---:|---:|---:|"
for s in "${SIZES[@]}"; do
	a=$(med "$s-kybernate") b=$(med "$s-runc")
	echo "| memhog ${SZ[$s]} MiB | $a | $b | $(ratio "$a" "$b") |"
done
echo
echo "client floor (cri status), median: $(med floor) ms; runs: ${R[floor]}"
echo "every run:"
cat "$RUNLOG"
echo
echo "where the time goes, per run (ms, from kybernated's and containerd's logs): req = request to"
echo "kybernated's start of the dump, dump = kybernated's dump (ours only), image = to containerd's"
echo "checkpoint image in its content store (runc: from the request, so its dump is in it),"
echo "archive = to containerd's \"Wrote checkpoint archive\", rest = to the client's return;"
echo "during the archive step (machine-wide, MiB): dirty = the most page cache dirty or under"
echo "writeback, written = what the kernel wrote back"
while read -r key id a b loc; do
	phases "$id" "$a" "$b" "$loc" >"$D/ph"
	read -r rq dp im ar rs ks ke ci ca <"$D/ph"
	echo "$key $a $ks $ke $ci $ca $b" >>"$D/windows.txt"
	if [ "$ar" = - ]; then dt=- wr=-; else read -r dt wr < <(pagecache "$ci" "$ca"); fi
	for f in req:"$rq" dump:"$dp" image:"$im" archive:"$ar" rest:"$rs" dirty:"$dt" written:"$wr"; do
		rec "$key.${f%%:*}" "${f#*:}"
		[ -z "${PARITY[$a]:-}" ] || rec "$key@${PARITY[$a]}.${f%%:*}" "${f#*:}"
	done
	printf '%-16s req %8s  dump %8s  image %8s  archive %8s  rest %8s  dirty %6s  written %6s\n' \
		"$key" "$rq" "$dp" "$im" "$ar" "$rs" "$dt" "$wr"
done <"$D/phases.in"
echo "medians:"
for s in "${SIZES[@]}"; do
	for h in "${HANDLERS[@]}"; do
		printf '%-16s req %8s  dump %8s  image %8s  archive %8s  rest %8s  dirty %6s  written %6s\n' \
			"$s-$h" "$(medp "$s-$h.req")" "$(medp "$s-$h.dump")" "$(medp "$s-$h.image")" \
			"$(medp "$s-$h.archive")" "$(medp "$s-$h.rest")" "$(medp "$s-$h.dirty")" "$(medp "$s-$h.written")"
	done
done
if [ "$KEEP" = yes ]; then
	echo
	echo "--runc-keep yes: memhog ${SZ[large]} MiB by round, medians in ms; odd rounds: ours first, runc's dump"
	echo "kept until the round's end; even rounds: runc first, runc's dump removed by containerd (control)"
	echo
	echo "| rounds | ours total | ours archive | runc total | runc archive | ours/runc total | ours/runc archive |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for p in odd even; do
		[ -n "${R[large-runc@$p]:-}" ] || continue
		a=$(med "large-kybernate@$p") b=$(med "large-runc@$p")
		c=$(medp "large-kybernate@$p.archive") e=$(medp "large-runc@$p.archive")
		[ "$p" = odd ] && l="odd (runc keeps)" || l="even (control)"
		echo "| $l | $a | $c | $b | $e | $(ratio "$a" "$b") | $(ratio "$c" "$e") |"
	done
fi

for s in "${SIZES[@]}"; do
	for h in "${HANDLERS[@]}"; do
		cri stopp "${POD[$s-$h]}" >/dev/null 2>&1
		cri rmp "${POD[$s-$h]}" >/dev/null 2>&1
	done
done
kyb_clean_store
kill "$DAEMON_PID" 2>/dev/null
wait "$DAEMON_PID" 2>/dev/null
mkdir -p "$BUILD/bench-logs" && cp "$D/kybernated.log" "$BUILD/bench-logs/kubelet-bench-kybernated.log"
# the page cache samples and each run's "key start dump-start dump-end archive-start archive-end end" (ns)
cp "$D/pagecache.txt" "$BUILD/bench-logs/kubelet-bench-pagecache.txt"
cp "$D/windows.txt" "$BUILD/bench-logs/kubelet-bench-windows.txt"
kyb_finish
