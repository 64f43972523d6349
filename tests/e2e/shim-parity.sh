#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Everything `ctr task` does with the runc shim works with ours: exec,
# terminals, stdin and CloseIO, pause/resume, metrics, OOM events, log URIs,
# and the runc shim's errors for bad requests. containerd 1.6, 1.7 and 2.1.
. "$(dirname "$0")/../lib/common.sh"
require_root
require_cmd runc ctr script
require_build containerd-shim-kybernate-v1
kyb_image_build

RT=$KYB_RUNTIME
ctrx() { timeout 60 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" "$@"; }
task_status() { ctr_ task ls | awk -v id="$1" '$1 == id {print $3}'; }
task_pid() { ctr_ task ls | awk -v id="$1" '$1 == id {print $2}'; }

run_suite() {
	local v=$1 n t out rc pid
	n=kybpar${v/./}
	t="[$v]"
	if [ "$v" != 1.6 ] && ! ctd_have "$v"; then
		skip "containerd $v parity suite" "containerd $v not installed (scripts/setup.sh)"
		return
	fi
	ctd_start "$n" "$v"
	kyb_image_import "$KYB_NS"

	ctrx run -d --runtime "$RT" "$KYB_BUSYBOX" p1 sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; usleep 100000; done' >/dev/null
	kyb_wait 10 test -s "/proc/$(task_pid p1)/root/tmp/count" || fail "$t p1 counts"

	# exec
	out=$(ctrx task exec --exec-id x1 p1 echo hi 2>&1)
	rc=$?
	expect_eq "$t exec prints hi" hi "$out"
	expect_eq "$t exec exits 0" 0 "$rc"
	ctrx task exec --exec-id x2 p1 sh -c 'exit 5' >/dev/null 2>&1
	expect_eq "$t exec exit status 5" 5 "$?"
	ctrx task exec --exec-id x3 p1 sleep 30 >/dev/null 2>&1 &
	local execpid=$!
	kyb_wait 10 sh -c "\"$CTD_CTR\" --address \"$CTD_ADDR\" -n \"$KYB_NS\" task ps p1 | grep -q x3"
	expect_contains "$t ctr task ps shows the exec id" "$(ctr_ task ps p1)" x3
	out=$(ctrx task exec --exec-id x3 p1 true 2>&1)
	expect_contains "$t duplicate exec id refused" "$out" "already exists"
	ctr_ task kill --exec-id x3 -s KILL p1
	wait "$execpid"
	expect_eq "$t exec killed reports 137" 137 "$?"

	# terminals
	# exec: timeout must be the session leader script starts, or its own process
	# group is not the terminal's foreground and ctr stops (SIGTTOU) on setting
	# raw mode; /bin/sh (dash, when SHELL is unset) would not exec it by itself
	out=$(script -qec "exec timeout -s KILL 30 $CTD_CTR --address $CTD_ADDR -n $KYB_NS task exec -t --exec-id tty1 p1 sh -c 'tty; echo ok-tty'" /dev/null 2>&1 | tr -d '\r')
	expect_contains "$t exec -t has a pty" "$out" "/dev/pts/"
	expect_contains "$t exec -t output" "$out" "ok-tty"
	out=$(script -qec "exec timeout -s KILL 30 $CTD_CTR --address $CTD_ADDR -n $KYB_NS run -t --rm --runtime $RT $KYB_BUSYBOX ptty sh -c 'tty; echo ok-run-tty'" /dev/null 2>&1 | tr -d '\r')
	expect_contains "$t run -t has a pty" "$out" "/dev/pts/"
	expect_contains "$t run -t output" "$out" "ok-run-tty"

	# stdin and CloseIO: cat ends when its input does
	out=$(echo data | ctrx run --rm --runtime "$RT" "$KYB_BUSYBOX" pcat cat 2>&1)
	expect_eq "$t piped stdin reaches cat and ends" data "$out"

	# pause / resume
	pid=$(task_pid p1)
	expect_ok "$t pause" ctr_ task pause p1
	expect_eq "$t paused state" PAUSED "$(task_status p1)"
	local c1 c2 c3
	c1=$(cat "/proc/$pid/root/tmp/count")
	sleep 1
	c2=$(cat "/proc/$pid/root/tmp/count")
	expect_eq "$t paused process does not run" "$c1" "$c2"
	out=$(ctrx task pause p1 2>&1)
	expect_ne "$t pausing a paused container fails" "" "$out"
	expect_ok "$t resume" ctr_ task resume p1
	expect_eq "$t running again" RUNNING "$(task_status p1)"
	sleep 1
	c3=$(cat "/proc/$pid/root/tmp/count")
	expect_ne "$t resumed process runs" "$c2" "$c3"

	# metrics move when the container works
	local m1 m2
	m1=$(ctr_ task metrics p1 2>&1)
	expect_contains "$t metrics has memory" "$m1" "memory.usage_in_bytes"
	ctrx task exec --exec-id burn p1 sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done' >/dev/null 2>&1
	m2=$(ctr_ task metrics p1 2>&1)
	local u1 u2
	u1=$(echo "$m1" | awk '$1 == "cpuacct.usage" {print $2}')
	u2=$(echo "$m2" | awk '$1 == "cpuacct.usage" {print $2}')
	if [ -n "$u1" ] && [ -n "$u2" ] && [ "$u2" -gt "$u1" ]; then pass "$t cpu usage grows with work"; else fail "$t cpu usage grows with work" "$u1 -> $u2"; fi

	# bad requests get the runc shim's errors and the shim keeps serving
	ctr_ task kill -s KILL p1
	kyb_wait 10 sh -c "\"$CTD_CTR\" --address \"$CTD_ADDR\" -n \"$KYB_NS\" task ls | grep -q '^p1 .*STOPPED'"
	out=$(ctrx task pause p1 2>&1)
	expect_ne "$t pause of a stopped container fails" "" "$out"
	out=$(ctrx task exec --exec-id late p1 true 2>&1)
	expect_ne "$t exec into a stopped container fails" "" "$out"
	expect_eq "$t shim still serves State" STOPPED "$(task_status p1)"
	ctr_ task delete p1 >/dev/null
	ctr_ container delete p1 >/dev/null

	# OOM event
	ctr_ events >"$KYB_TMP/events-$n" 2>&1 &
	local evpid=$!
	ctrx run --rm --runtime "$RT" --memory-limit 16777216 "$KYB_BUSYBOX" poom sh -c 'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo $x' >/dev/null 2>&1
	sleep 1
	kill "$evpid" 2>/dev/null
	expect_contains "$t /tasks/oom event" "$(cat "$KYB_TMP/events-$n")" "/tasks/oom"

	# log URI
	rm -f "$KYB_TMP/out-$n.log"
	ctrx run --rm --runtime "$RT" --log-uri "file://$KYB_TMP/out-$n.log" "$KYB_BUSYBOX" plog sh -c 'echo to-file; echo err-file >&2' >/dev/null 2>&1
	expect_contains "$t file:// log gets stdout" "$(cat "$KYB_TMP/out-$n.log" 2>/dev/null)" "to-file"
	expect_contains "$t file:// log gets stderr" "$(cat "$KYB_TMP/out-$n.log" 2>/dev/null)" "err-file"
	ctd_stop "$n"
}

run_suite 1.6
run_suite 1.7
run_suite 2.1
kyb_finish
