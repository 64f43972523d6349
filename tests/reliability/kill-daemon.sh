#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# kill -9 of kybernated at a random moment of a checkpoint, N times (issue 9):
# a busybox counter under real runc on an overlay rootfs (so the daemon pauses
# it to save its writable layer) is checkpointed (--leave-running); after a
# random delay within the length of one checkpoint the daemon is killed and
# started again. After each restart: is the container frozen (runc state
# "paused") or does it count on, are pending rows left, is there one directory
# per row, does every ready row verify (kybernatectl inspect --verify).
#
#   tests/reliability/kill-daemon.sh [N]     (N default 50; root; after make)
#
# Not part of tests/run. Prints one line per round and a summary; the rounds
# go to $KILL_CSV (default $BUILD/kill-daemon.csv) for a figure:
#   round,delay_ms,outcome_before_kill,frozen_after_restart,counting,pending,rows,dirs,unverified
. "$(dirname "$0")/../lib/common.sh"

N=${1:-50}
require_root
require_cmd runc criu jq busybox
require_build kybernated kybernatectl
criu check >/dev/null 2>&1 || skip_all "criu check fails here (CRIU >= 4 is needed: run scripts/setup.sh)"

D=$KYB_TMP
STORE=$D/store
SOCK=$D/kybernated.sock
export KYBERNATE_SOCKET=$SOCK
NS=kill-daemon
RUNC_ROOT=$D/runc/$NS
CTL=$BUILD/kybernatectl
CSV=${KILL_CSV:-$BUILD/kill-daemon.csv}
DAEMON_PID=
C=kill-c1

start_daemon() {
	"$BUILD/kybernated" --config /dev/null --store "$STORE" --runc-root-base "$D/runc" -S "$SOCK" \
		>>"$D/daemon.log" 2>&1 &
	DAEMON_PID=$!
	kyb_wait 20 "$CTL" status >/dev/null || die "kybernated did not come up: $(tail -n 20 "$D/daemon.log")"
}
stop_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}
kyb_on_exit 'stop_daemon'

kyb_rootfs_build "$D/lower"
mkdir -p "$D/upper" "$D/work" "$D/bundle/rootfs" "$RUNC_ROOT"
mount -t overlay overlay -o "lowerdir=$D/lower,upperdir=$D/upper,workdir=$D/work" "$D/bundle/rootfs" ||
	skip_all "mount -t overlay failed"
kyb_on_exit "umount -l '$D/bundle/rootfs' 2>/dev/null"
(cd "$D/bundle" && runc spec)
jq '.process.terminal = false | .root.readonly = false
    | .process.args = ["sh", "-c", "echo x >/file; i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done"]
    | .linux.namespaces |= map(select(.type != "network"))' \
	"$D/bundle/config.json" >"$D/bundle/config.json.new"
mv "$D/bundle/config.json.new" "$D/bundle/config.json"
(true | runc --root "$RUNC_ROOT" run -d -b "$D/bundle" "$C" 2>&1 | cat >>"$D/out") &
kyb_wait 10 test -s "$D/out" || die "container did not start: $(cat "$D/out")"
kyb_on_exit "runc --root '$RUNC_ROOT' delete -f $C 2>/dev/null"

status() { runc --root "$RUNC_ROOT" state "$C" 2>/dev/null | jq -r .status; }
counting() {
	local n
	n=$(wc -l <"$D/out")
	kyb_wait 3 sh -c "[ \$(wc -l <'$D/out') -gt $n ]"
}
now_ms() { date +%s%3N; }

start_daemon
# One checkpoint without a kill: its length bounds the random delay.
t0=$(now_ms)
"$CTL" checkpoint -q -n "$NS" "$C" >/dev/null || die "a checkpoint without a kill fails"
span=$(($(now_ms) - t0))
log "one checkpoint takes $span ms; killing at a random moment in 0..$((span * 12 / 10)) ms"
for id in $("$CTL" list --json | jq -r '.[].id'); do "$CTL" delete "$id" >/dev/null; done

echo "round,delay_ms,outcome_before_kill,frozen_after_restart,counting,pending,rows,dirs,unverified" >"$CSV"
frozen_total=0 pending_total=0 mismatch_total=0 unverified_total=0 stuck_total=0 done_total=0
for round in $(seq 1 "$N"); do
	delay=$((RANDOM * span * 12 / 10 / 32768))
	"$CTL" checkpoint -q -n "$NS" "$C" >"$D/ck.out" 2>&1 &
	ck=$!
	sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
	kill -9 "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
	wait "$ck" && before=completed || before=interrupted
	[ "$before" = completed ] && done_total=$((done_total + 1))
	start_daemon

	st=$(status)
	frozen=0
	[ "$st" = paused ] && frozen=1
	count=0
	counting && count=1
	pending=$("$CTL" list --json --state pending | jq length)
	rows=$("$CTL" list --json | jq -r '.[].id' | sort)
	dirs=$(ls "$STORE/checkpoints" | sort)
	unverified=0
	for id in $rows; do
		"$CTL" inspect --verify "$id" >/dev/null 2>&1 || unverified=$((unverified + 1))
	done
	nrows=$(echo "$rows" | grep -c . || true)
	ndirs=$(echo "$dirs" | grep -c . || true)
	echo "$round,$delay,$before,$frozen,$count,$pending,$nrows,$ndirs,$unverified" >>"$CSV"
	log "round $round: kill at $delay ms ($before), container $st$([ $count = 1 ] && echo ', counting'), $pending pending, $nrows rows, $ndirs directories, $unverified not verifying"

	frozen_total=$((frozen_total + frozen))
	[ "$count" = 1 ] || [ "$frozen" = 1 ] || stuck_total=$((stuck_total + 1))
	pending_total=$((pending_total + pending))
	[ "$rows" = "$dirs" ] || mismatch_total=$((mismatch_total + 1))
	unverified_total=$((unverified_total + unverified))
	# Next round from a clean state: thaw by hand what was left frozen, drop the checkpoints.
	[ "$frozen" = 1 ] && runc --root "$RUNC_ROOT" resume "$C"
	for id in $rows; do "$CTL" delete "$id" >/dev/null 2>&1; done
	[ "$(status)" = running ] || die "round $round: the container is $(status); stopping"
done

summary="$N kills: $frozen_total left the container frozen, $stuck_total left it not counting otherwise, $pending_total pending rows left, $mismatch_total rounds with rows != directories, $unverified_total ready rows not verifying ($done_total checkpoints had completed before the kill)"
log "$summary"
log "rounds in $CSV"
expect_eq "no container left frozen" 0 "$frozen_total"
expect_eq "no container left stuck" 0 "$stuck_total"
expect_eq "no pending row left" 0 "$pending_total"
expect_eq "one directory per row" 0 "$mismatch_total"
expect_eq "every ready row verifies" 0 "$unverified_total"
kyb_finish
