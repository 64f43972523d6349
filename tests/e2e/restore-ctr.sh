#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Checkpoint and restore through the shim with ctr, against a private
# containerd, a private kybernated, real runc and CRIU: a counter is
# checkpointed (kybernatectl and ctr task checkpoint), killed, and brought back
# in new containers by RESTORE_FROM, continuing its count, with its files; and
# every way a restore can be refused fails Create with a clear message.
. "$(dirname "$0")/../lib/common.sh"
require_root
require_cmd runc ctr criu
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
kyb_image_build

RT=$KYB_RUNTIME
D=$KYB_TMP
STORE=$D/store
export KYBERNATE_SOCKET=$D/kybernated.sock
kctl() { "$BUILD/kybernatectl" "$@"; }
DPID=
start_daemon() {
	"$BUILD/kybernated" --config /dev/null --store "$STORE" --socket "$KYBERNATE_SOCKET" >>"$D/daemon.log" 2>&1 &
	DPID=$!
	kyb_wait 10 kctl status >/dev/null || die "kybernated did not come up: $(tail -n 20 "$D/daemon.log")"
}
stop_daemon() {
	[ -n "$DPID" ] || return 0
	kill "$DPID" 2>/dev/null
	kyb_wait 10 sh -c "! kill -0 $DPID" || kill -KILL "$DPID"
	DPID=
}
kyb_on_exit 'stop_daemon'
start_daemon

ctrx() { "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" "$@"; }
task_pid() { ctr_ task ls | awk -v id="$1" '$1 == id {print $2}'; }
# first_number FILE: the first line that is a number
first_number() { grep -m1 -E '^[0-9]+$' "$1"; }
last_number() { grep -E '^[0-9]+$' "$1" | tail -n 1; }

COUNTER='echo hello-from-before > /tmp/written; rm -f /bin/yes; i=0; while true; do echo $i; i=$((i+1)); usleep 200000; done'
IMG_ANN=io.kubernetes.cri.image-name

# run_bg ID OUT ARGS...: ctr run (foreground) in the background, output to OUT.
run_bg() {
	local id=$1 out=$2
	shift 2
	timeout -s KILL 300 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run --rm --runtime "$RT" "$@" >"$out" 2>&1 &
	kyb_on_exit "ctr_ task kill -s KILL $id >/dev/null 2>&1"
}
wait_numbers() { # wait_numbers FILE MIN
	kyb_wait 30 sh -c "[ \"\$(grep -cE '^[0-9]+$' '$1')\" -ge $2 ]"
}
kill_task() {
	ctr_ task kill -s KILL "$1" >/dev/null 2>&1
	kyb_wait 20 sh -c "! \"$CTD_CTR\" --address \"$CTD_ADDR\" -n \"$KYB_NS\" task ls | grep -q '^$1 '"
}

# run_suite VERSION: the whole flow on a private containerd of that version
# (containerd inherits KYBERNATE_SOCKET, and so every shim it starts).
run_suite() {
	local v=$1 t="[$1]" n=kybrst${1/./}
	if [ "$v" != 1.6 ] && ! ctd_have "$v"; then
		skip "$t restore suite" "containerd $v not installed in $(ctd_bin_dir "$v") (scripts/setup.sh)"
		return 0
	fi
	ctd_start "$n" "$v"
	kyb_image_import "$KYB_NS"

	# ---- checkpoint a counter -------------------------------------------------------------------------
	run_bg cnt "$D/cnt.out" --annotation "$IMG_ANN=$KYB_BUSYBOX" "$KYB_BUSYBOX" cnt sh -c "$COUNTER"
	wait_numbers "$D/cnt.out" 5 || die "counter did not count: $(cat "$D/cnt.out")"
	before=$(last_number "$D/cnt.out")
	ID=$(kctl checkpoint -q --namespace "$KYB_NS" cnt)
	expect_ne "$t kybernatectl checkpoint of a shim container returns an id" "" "$ID"
	expect_eq "$t the counter keeps running after the checkpoint" RUNNING "$(ctr_task_status cnt)"

	# containerd's own flow: ctr task checkpoint goes through the shim, which asks kybernated
	n0=$(kctl list --json | grep -o '"id"' | wc -l)
	out=$(ctrx task checkpoint cnt 2>&1)
	expect_ok "$t ctr task checkpoint succeeds" test -n "$out"
	expect_contains "$t ctr task checkpoint stored an image in the content store" "$(ctr_ image ls -q)" "$out"
	n1=$(kctl list --json | grep -o '"id"' | wc -l)
	expect_eq "$t ctr task checkpoint is recorded in kybernated's catalog" "$((n0 + 1))" "$n1"
	expect_eq "$t the counter still runs after ctr task checkpoint" RUNNING "$(ctr_task_status cnt)"
	kill_task cnt

	# ---- restore ------------------------------------------------------------------------------------------
	run_bg rst1 "$D/rst1.out" --annotation "$IMG_ANN=$KYB_BUSYBOX" --env "RESTORE_FROM=$ID" "$KYB_BUSYBOX" rst1 sh -c 'echo FRESH-START; sleep 100'
	run_bg rst2 "$D/rst2.out" --env "RESTORE_FROM=$ID" "$KYB_BUSYBOX" rst2 sh -c 'echo FRESH-START; sleep 100'
	wait_numbers "$D/rst1.out" 3
	wait_numbers "$D/rst2.out" 3
	f1=$(first_number "$D/rst1.out")
	f2=$(first_number "$D/rst2.out")
	log "before checkpoint: $before; restored: $f1 and $f2"
	if [ -n "$f1" ] && [ "$f1" -ge "$before" ] && [ "$f1" -gt 0 ]; then pass "$t restored counter continues ($before -> $f1)"; else fail "$t restored counter continues" "before=$before first=$f1: $(head -n 5 "$D/rst1.out")"; fi
	if [ -n "$f2" ] && [ "$f2" -ge "$before" ]; then pass "$t the same checkpoint restores a second time ($f2)"; else fail "$t the same checkpoint restores a second time" "$(head -n 5 "$D/rst2.out")"; fi
	expect_eq "$t no fresh process was started" "" "$(grep -h FRESH-START "$D/rst1.out" "$D/rst2.out")"
	expect_eq "$t the file written before the checkpoint is back" hello-from-before "$(ctrx task exec --exec-id chk rst1 cat /tmp/written 2>&1)"
	expect_ok "$t the image itself has the file deleted before the checkpoint" \
		timeout -s KILL 60 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run --rm --runtime "$RT" "$KYB_BUSYBOX" fresh test -e /bin/yes
	expect_fail "$t the file deleted before the checkpoint stays deleted" ctrx task exec --exec-id chk2 rst1 test -e /bin/yes
	pid=$(task_pid rst1)
	expect_contains "$t the restored process lives in the new container's cgroup" "$(cat "/proc/$pid/cgroup")" "rst1"
	kill_task rst1
	kill_task rst2

	# ---- restore after a daemon restart --------------------------------------------------------------
	stop_daemon
	start_daemon
	run_bg rst3 "$D/rst3.out" --env "RESTORE_FROM=$ID" "$KYB_BUSYBOX" rst3 sh -c 'echo FRESH-START; sleep 100'
	wait_numbers "$D/rst3.out" 2
	f3=$(first_number "$D/rst3.out")
	if [ -n "$f3" ] && [ "$f3" -ge "$before" ]; then pass "$t restore works after a kybernated restart"; else fail "$t restore works after a kybernated restart" "$(head -n 5 "$D/rst3.out")"; fi
	kill_task rst3

	# ---- refusals: each fails Create, never starts a fresh process ---------------------------------------
	refused() { # refused NAME EXPECTED-TEXT ctr-run-args...
		local name=$1 want=$2 out rc
		shift 2
		out=$(timeout -s KILL 60 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run --rm --runtime "$RT" "$@" 2>&1)
		rc=$?
		expect_ne "$name: ctr run fails" 0 "$rc"
		expect_contains "$name: the error says why" "$out" "$want"
		expect_eq "$name: no fresh process ran" "" "$(echo "$out" | grep FRESH-START)"
	}
	refused "$t unknown reference" "no checkpoint" --env RESTORE_FROM=deadbeefdeadbeef "$KYB_BUSYBOX" bad1 sh -c 'echo FRESH-START'
	refused "$t host path" "RESTORE_FROM" --env RESTORE_FROM=/var/lib/kybernate "$KYB_BUSYBOX" bad2 sh -c 'echo FRESH-START'
	refused "$t path traversal" "RESTORE_FROM" --env "RESTORE_FROM=../$ID" "$KYB_BUSYBOX" bad3 sh -c 'echo FRESH-START'
	refused "$t image mismatch" "image" --annotation "$IMG_ANN=$KYB_PAUSE" --env "RESTORE_FROM=$ID" "$KYB_PAUSE" bad4 sh -c 'echo FRESH-START'
	# An image reference with control characters is refused without being quoted.
	ESC_IMG=$(printf 'busybox\033]0;forged\007')
	refused "$t image reference with control characters" "printable ASCII" --annotation "$IMG_ANN=$ESC_IMG" --env "RESTORE_FROM=$ID" "$KYB_BUSYBOX" bad5 sh -c 'echo FRESH-START'
	out=$("$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run --rm --runtime "$RT" --annotation "$IMG_ANN=$ESC_IMG" --env "RESTORE_FROM=$ID" "$KYB_BUSYBOX" bad5b true 2>&1)
	expect_eq "$t image reference with control characters: none in the error" "" "$(printf '%s' "$out" | tr -d '\n' | tr -d '[:print:]')"
	KYB_NS_SAVE=$KYB_NS
	KYB_NS=other-tenant
	kyb_image_import "$KYB_NS"
	# Another tenant's checkpoint looks like a missing one (nothing says it exists).
	refused "$t another containerd namespace" "no checkpoint with id, id prefix or name" --env "RESTORE_FROM=$ID" "$KYB_BUSYBOX" bad6 sh -c 'echo FRESH-START'
	KYB_NS=$KYB_NS_SAVE

	# CRIU failing: the process held a file open on a bind mount the new container lacks
	mkdir -p "$D/data" && echo held >"$D/data/held"
	ctrx run -d --runtime "$RT" --mount "type=bind,src=$D/data,dst=/data,options=rbind:rw" "$KYB_BUSYBOX" holder \
		sh -c 'exec 3</data/held; while true; do usleep 200000; done' >/dev/null
	sleep 1
	ID_HELD=$(kctl checkpoint -q --namespace "$KYB_NS" holder)
	kill_task holder
	out=$(timeout -s KILL 60 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run --rm --runtime "$RT" \
		--env "RESTORE_FROM=$ID_HELD" "$KYB_BUSYBOX" bad7 sh -c 'echo FRESH-START' 2>&1)
	expect_contains "$t CRIU failure fails Create/Start with CRIU's error" "$out" "criu failed"
	expect_eq "$t CRIU failure: no fresh process ran" "" "$(echo "$out" | grep FRESH-START)"
	expect_contains "$t CRIU failure names its kept log" "$out" "CRIU log: /var/log/kybernate/"
	logf=$(echo "$out" | grep -o '/var/log/kybernate/[^ )]*' | head -n 1)
	expect_ok "$t the kept CRIU log exists" test -s "$logf"
	rm -f "$logf"

	# corrupted image file: the checksum refuses it
	img=$(find "$STORE" -path "*$ID*/checkpoint/pages-*.img" | head -n 1)
	printf 'x' >>"$img"
	refused "$t corrupted image" "checksum" --env "RESTORE_FROM=$ID" "$KYB_BUSYBOX" bad8 sh -c 'echo FRESH-START'

	# daemon down
	stop_daemon
	refused "$t kybernated not running" "kybernated is not running" --env "RESTORE_FROM=$ID" "$KYB_BUSYBOX" bad9 sh -c 'echo FRESH-START'
	start_daemon

	# ---- containerd's own flow: ctr containers checkpoint/restore (CreateTaskRequest.checkpoint) ------
	ctrx run -d --runtime "$RT" "$KYB_BUSYBOX" cnt2 sh -c "$COUNTER" >/dev/null
	sleep 2
	REF=docker.io/kybernate/restore-ctr-ckpt:1
	expect_ok "$t ctr containers checkpoint --task --rw through the shim" ctrx containers checkpoint --task --rw cnt2 "$REF"
	kill_task cnt2
	ctrx task delete cnt2 >/dev/null 2>&1
	ctrx container delete cnt2 >/dev/null 2>&1
	expect_ok "$t ctr containers restore --live --rw through the shim" timeout -s KILL 60 "$CTD_CTR" --address "$CTD_ADDR" \
		-n "$KYB_NS" containers restore --live --rw cnt2 "$REF"
	kyb_wait 10 sh -c "\"$CTD_CTR\" --address \"$CTD_ADDR\" -n \"$KYB_NS\" task ls | grep -q '^cnt2 .*RUNNING'"
	expect_eq "$t the restored task runs" RUNNING "$(ctr_task_status cnt2)"
	expect_eq "$t and has its files" hello-from-before "$(ctrx task exec --exec-id chk3 cnt2 cat /tmp/written 2>&1)"
	kill_task cnt2
	ctd_stop "$n"
}

# 1.7 behaves as 1.6 here (the same task API v2 and checkpoint flow); 2.1
# speaks task API v3 and checkpoints through its own ctr and content store.
run_suite 1.6
run_suite 2.1
kyb_finish
