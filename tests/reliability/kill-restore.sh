#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# kill -9 during a restore, N times for each of three victims (issue 9): runc,
# CRIU and the shim. A busybox counter is checkpointed through kybernated, then
# restored (RESTORE_FROM) under a private containerd N times per victim; a
# criu wrapper first in containerd's PATH (tests/lib/criu-kill.sh) lists and
# checksums the rootfs as CRIU sees it when CRIU starts for the restore, and
# kills the victim after a random delay within the length of one restore.
# Then containerd's clean-up: ctr task rm -f (after a dead shim containerd has
# run the shim's delete action already), the rootfs snapshot listed again, ctr
# container rm. Counted: entries of the rootfs lost or changed (listing and
# sha256 before/after) and mounts left below runc's state dir, the bundle and
# containerd's task directories (where CRIU's work dir is).
#
#   tests/reliability/kill-restore.sh [N]     (N default 50; root; after make)
#
# Not part of tests/run. Prints one line per round and a summary; the rounds
# go to $KILL_CSV (default $BUILD/kill-restore.csv):
#   victim,round,delay_ms,killed,restore_ok,runc_hung,entries_lost,mounts_left
# A kill of CRIU can leave runc restore waiting for ever (a CRIU child keeps its
# socket open): after 5 s the script kills that runc and CRIU's leftovers, by
# pid, and counts the round as runc_hung.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/criu-kill.sh"

N=${1:-50}
require_root
require_cmd runc ctr criu
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
kyb_image_build

RT=$KYB_RUNTIME
D=$KYB_TMP
CSV=${KILL_CSV:-$BUILD/kill-restore.csv}
RUNC_BASE=/run/containerd/runc
STORE=$D/store
export KYBERNATE_SOCKET=$D/kybernated.sock
kctl() { "$BUILD/kybernatectl" "$@"; }
"$BUILD/kybernated" --config /dev/null --store "$STORE" --socket "$KYBERNATE_SOCKET" >>"$D/daemon.log" 2>&1 &
DPID=$!
kyb_on_exit "kill $DPID 2>/dev/null"
kyb_wait 10 kctl status >/dev/null || die "kybernated did not come up: $(tail -n 20 "$D/daemon.log")"

W=$D/criu-wrapper
criu_kill_install "$W"
export KYB_CTD_PATH_PREFIX=$W
kyb_on_exit "kyb_rm_tree '$RUNC_BASE/kybkr'; rm -f /var/log/kybernate/kr-*-restore.log"
ctd_start kybkr 1.6
kyb_image_import "$KYB_NS"
ctrx() { "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" "$@"; }
task_gone() { ! ctrx task ls | grep -q "^$1 "; }
now_ms() { date +%s%3N; }

COUNTER='echo hello-from-before > /tmp/written; rm -f /bin/yes; i=0; while true; do echo $i; i=$((i+1)); usleep 200000; done'
ctrx run -d --runtime "$RT" "$KYB_BUSYBOX" cnt sh -c "$COUNTER" >/dev/null
sleep 2
CKPT=$(kctl checkpoint -q --namespace "$KYB_NS" cnt) || die "checkpoint of the counter failed"
ctr_ task kill -s KILL cnt >/dev/null 2>&1
kyb_wait 20 task_gone cnt
ctr_ task rm cnt >/dev/null 2>&1
ctr_ container rm cnt >/dev/null 2>&1

# One restore without a kill gives the span the kill delays are drawn from.
t0=$(now_ms)
ctrx run -d --runtime "$RT" --env "RESTORE_FROM=$CKPT" "$KYB_BUSYBOX" kr-probe sh -c 'echo FRESH-START; sleep 100' \
	>/dev/null || die "a restore without a kill fails"
span=$(($(now_ms) - t0))
ctr_ task kill -s KILL kr-probe >/dev/null 2>&1
kyb_wait 20 task_gone kr-probe
ctr_ task rm kr-probe >/dev/null 2>&1
ctr_ container rm kr-probe >/dev/null 2>&1
log "one restore takes $span ms; each victim killed at a random moment in 0..$span ms after CRIU starts"

# kill_restore_leftovers ID: after its CRIU was killed, a child CRIU had
# forked can keep the swrk socket open, and runc restore then waits for ever
# (and the shim for runc). Kills that runc restore and the CRIU processes
# beside it, by pid; false if there is no such runc.
kill_restore_leftovers() {
	local id=$1 runc shim p
	runc=$(pgrep -f "^runc .* restore .* $id\$") || return 1
	shim=$(awk '{ print $4 }' "/proc/$runc/stat" 2>/dev/null)
	for p in $(pgrep -P "$runc") $(pgrep -P "$shim" -f criu); do
		kill -KILL "$p" 2>/dev/null
	done
	kill -KILL "$runc" 2>/dev/null
	log "round $id: runc restore hung after its CRIU was killed; killed it and CRIU's leftovers"
}

echo "victim,round,delay_ms,killed,restore_ok,runc_hung,entries_lost,mounts_left" >"$CSV"
declare -A lost_total rounds_lost mounts_total killed_total ok_total nolist_total hung_total
for victim in runc criu shim; do
	lost_total[$victim]=0 rounds_lost[$victim]=0 mounts_total[$victim]=0 killed_total[$victim]=0
	ok_total[$victim]=0 nolist_total[$victim]=0 hung_total[$victim]=0
	for round in $(seq 1 "$N"); do
		id=kr-$victim-$round
		bundle=$(ctd_bundle "$id")
		delay=$((RANDOM * span / 32768))
		criu_kill_arm "$W" "$victim" "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
		ok=0 hung=0
		timeout -s KILL 120 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run -d --runtime "$RT" \
			--env "RESTORE_FROM=$CKPT" "$KYB_BUSYBOX" "$id" sh -c 'echo FRESH-START; sleep 100' \
			>"$D/run.out" 2>&1 &
		run=$!
		t_hit=
		for _ in $(seq 1 1200); do
			kill -0 "$run" 2>/dev/null || break
			if [ -e "$W/hit" ]; then
				t_hit=${t_hit:-$(now_ms)}
				# runc restore still waiting 5 s after its CRIU was killed: hung
				if [ $(($(now_ms) - t_hit)) -gt 5000 ] && [ "$hung" = 0 ] && kill_restore_leftovers "$id"; then
					hung=1
				fi
			fi
			sleep 0.1
		done
		wait "$run" && ok=1
		# the delayed kill may still be on its way
		kyb_wait 5 test -e "$W/hit" || true
		sleep 0.3
		killed=0
		[ -e "$W/hit" ] && killed=1
		criu_kill_disarm "$W"
		[ "$victim" != shim ] || kyb_wait 30 task_gone "$id" || true
		ctr_ task rm -f "$id" >/dev/null 2>&1
		kyb_wait 30 task_gone "$id" || log "round $victim/$round: the task is still there"
		lost=
		if [ -s "$W/before.list" ]; then
			snapshot_listing "$id" "$D/view" >"$D/after.list" 2>/dev/null
			lost=$(LC_ALL=C comm -23 <(LC_ALL=C sort "$W/before.list") <(LC_ALL=C sort "$D/after.list") | wc -l)
		else
			nolist_total[$victim]=$((nolist_total[$victim] + 1))
		fi
		ctr_ container rm "$id" >/dev/null 2>&1
		left=$(mounts_below "$RUNC_BASE/$KYB_NS/$id" "$bundle" "$CTD_ROOT/io.containerd.runtime.v2.task" \
			"$CTD_STATE/io.containerd.runtime.v2.task" | grep -c . || true)
		echo "$victim,$round,$delay,$killed,$ok,$hung,${lost:-NA},$left" >>"$CSV"
		log "$victim round $round: kill at $delay ms ($([ $killed = 1 ] && echo killed || echo 'restore done first')), restore $([ $ok = 1 ] && echo ran || echo failed)$([ $hung = 1 ] && echo ' (runc hung)'), ${lost:-?} entries lost, $left mounts left"
		killed_total[$victim]=$((killed_total[$victim] + killed))
		ok_total[$victim]=$((ok_total[$victim] + ok))
		hung_total[$victim]=$((hung_total[$victim] + hung))
		if [ -n "$lost" ] && [ "$lost" -gt 0 ]; then
			lost_total[$victim]=$((lost_total[$victim] + lost))
			rounds_lost[$victim]=$((rounds_lost[$victim] + 1))
		fi
		mounts_total[$victim]=$((mounts_total[$victim] + left))
		# leftovers must not pile up over the rounds (a failed round's mounts were counted)
		kyb_umount_below "$RUNC_BASE/$KYB_NS/$id" "$bundle"
	done
done

for victim in runc criu shim; do
	log "kill -9 of $victim, $N restores: ${killed_total[$victim]} killed mid-restore, ${ok_total[$victim]} restores ran, ${hung_total[$victim]} runc restores hung (killed by the script), ${lost_total[$victim]} rootfs entries lost or changed (in ${rounds_lost[$victim]} rounds), ${mounts_total[$victim]} mounts left, ${nolist_total[$victim]} rounds without a listing"
	expect_eq "kill -9 of $victim: no rootfs entry lost" 0 "${lost_total[$victim]}"
	expect_eq "kill -9 of $victim: no mount left behind" 0 "${mounts_total[$victim]}"
	expect_eq "kill -9 of $victim: every round listed the rootfs" 0 "${nolist_total[$victim]}"
done
log "rounds in $CSV"
kyb_finish
