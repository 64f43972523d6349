#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The shim runs ordinary containers under real containerd (1.6, and 1.7 and 2.1
# where installed), checked with ctr exactly as with containerd-shim-runc-v2.
. "$(dirname "$0")/../lib/common.sh"
require_root
require_cmd runc ctr
require_build containerd-shim-kybernate-v1
kyb_image_build

RT=$KYB_RUNTIME

# ctd_restart: kills containerd (not its shims) and starts it again on the same state.
ctd_restart() {
	local bin path
	bin=$(tr '\0' '\n' <"/proc/$CTD_PID/cmdline" | head -n 1)
	path=$(tr '\0' '\n' <"/proc/$CTD_PID/environ" | sed -n 's/^PATH=//p')
	kill -KILL "$CTD_PID"
	kyb_wait 10 sh -c "! kill -0 $CTD_PID" || die "containerd did not die"
	PATH=$path setsid "$bin" --config "$CTD_CONFIG" >>"$CTD_LOG" 2>&1 </dev/null &
	CTD_PID=$!
	echo "$CTD_PID" >"$KYB_TEST_RUN/$CTD_NAME.pid"
	kyb_wait 30 "$CTD_CTR" --address "$CTD_ADDR" version >/dev/null || die "containerd did not come back"
}

# shims_of ID...: pids of our shims serving these container ids in this instance.
our_shims() {
	local p
	for p in $(pgrep -f "containerd-shim-kybernate-v1 .*-address $CTD_ADDR" || true); do
		echo "$p"
	done
}

task_field() { # task_field ID COLUMN(2=pid,3=status)
	ctr_ task ls | awk -v id="$1" -v c="$2" '$1 == id {print $c}'
}

run_suite() {
	local v=$1 n=kybshim${v/./}
	if [ "$v" != 1.6 ] && ! ctd_have "$v"; then
		skip "containerd $v suite" "containerd $v not installed (scripts/setup.sh)"
		return
	fi
	ctd_start "$n" "$v"
	kyb_image_import "$KYB_NS"
	local t="[$v]"

	# echo hello
	out=$(timeout 60 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run --rm --runtime "$RT" "$KYB_BUSYBOX" c-hello echo hello 2>&1)
	expect_eq "$t ctr run --rm echo hello prints hello" "hello" "$out"

	# exit status passes through
	timeout 60 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run --rm --runtime "$RT" "$KYB_BUSYBOX" c-exit3 sh -c 'exit 3' >/dev/null 2>&1
	expect_eq "$t exit 3 makes ctr run exit 3" 3 "$?"

	# SIGKILL -> 137
	timeout 60 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run --rm --runtime "$RT" "$KYB_BUSYBOX" c-kill sleep 300 >/dev/null 2>&1 &
	local runpid=$!
	kyb_wait 20 sh -c "\"$CTD_CTR\" --address \"$CTD_ADDR\" -n \"$KYB_NS\" task ls | grep -q '^c-kill .*RUNNING'" || fail "$t c-kill reached RUNNING"
	ctr_ task kill -s KILL c-kill
	wait "$runpid"
	expect_eq "$t ctr task kill -s KILL reports 137" 137 "$?"

	# run -d, ls, ps
	ctr_ run -d --runtime "$RT" "$KYB_BUSYBOX" c-bg sleep 300 >/dev/null
	expect_eq "$t ctr run -d task is RUNNING" RUNNING "$(task_field c-bg 3)"
	local pid
	pid=$(task_field c-bg 2)
	expect_eq "$t task pid is the container's sleep" "sleep 300" "$(tr '\0' ' ' <"/proc/$pid/cmdline" | sed 's/ $//')"
	expect_contains "$t ctr task ps lists the pid" "$(ctr_ task ps c-bg)" "$pid"
	# What start announced: containerd 2 writes the bootstrap parameters it
	# parsed from our output (version 3: it dials containerd.task.v3.Task);
	# 1.x gets the plain address (1.6 would dial a JSON text, 1.7 refuses 3).
	local b
	b=$(ctd_bundle c-bg)
	if [ "$(ctd_major "$v")" -ge 2 ]; then
		expect_eq "$t containerd $v speaks task API v3 with the shim" "3 ttrpc" \
			"$(jq -r '"\(.version) \(.protocol)"' "$b/bootstrap.json" 2>&1)"
	else
		expect_match "$t containerd $v is given the plain address" '^unix:///run/containerd/s/[0-9a-f]{64}$' \
			"$(cat "$b/address" 2>&1)"
		expect_eq "$t containerd $v keeps no bootstrap.json" "" "$(ls "$b/bootstrap.json" 2>/dev/null)"
	fi

	# containerd restart keeps the task
	ctd_restart
	expect_eq "$t task still RUNNING after containerd restart" RUNNING "$(task_field c-bg 3)"
	ctr_ task kill -s KILL c-bg
	kyb_wait 10 sh -c "\"$CTD_CTR\" --address \"$CTD_ADDR\" -n \"$KYB_NS\" task ls | grep -q '^c-bg .*STOPPED'"
	expect_eq "$t task killable after containerd restart" STOPPED "$(task_field c-bg 3)"
	expect_ok "$t ctr task delete after exit" ctr_ task delete c-bg
	expect_eq "$t task gone after delete" "" "$(task_field c-bg 3)"
	ctr_ container delete c-bg

	# runc refuses the spec: Create fails with runc's message, nothing left behind
	out=$(timeout 60 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run --rm --runtime "$RT" "$KYB_BUSYBOX" c-bad /no/such/binary 2>&1)
	expect_contains "$t bad spec fails with runc's message" "$out" "no such file or directory"
	ctr_ container delete c-bad >/dev/null 2>&1
	expect_eq "$t bad spec leaves no mount" "" "$(grep -F "/c-bad/rootfs" /proc/self/mountinfo || true)"

	# 20 at once
	local i pids=()
	for i in $(seq 1 20); do
		timeout 120 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run -d --runtime "$RT" "$KYB_BUSYBOX" "c-many-$i" sleep 300 >/dev/null 2>&1 &
		pids+=($!)
	done
	local failed_starts=0
	for p in "${pids[@]}"; do wait "$p" || failed_starts=$((failed_starts + 1)); done
	expect_eq "$t 20 concurrent ctr run -d succeed" 0 "$failed_starts"
	expect_eq "$t 20 containers RUNNING" 20 "$(ctr_ task ls | grep -c '^c-many-.*RUNNING')"
	for i in $(seq 1 20); do ctr_ task kill -s KILL "c-many-$i" >/dev/null 2>&1; done
	kyb_wait 20 sh -c "! \"$CTD_CTR\" --address \"$CTD_ADDR\" -n \"$KYB_NS\" task ls | grep -q '^c-many-.*RUNNING'"
	for i in $(seq 1 20); do ctr_ task delete "c-many-$i" >/dev/null 2>&1; ctr_ container delete "c-many-$i" >/dev/null 2>&1; done
	kyb_wait 10 sh -c "[ -z \"\$(pgrep -f 'containerd-shim-kybernate-v1 .*-address $CTD_ADDR')\" ]"
	expect_eq "$t no shim left after 20 containers" "" "$(our_shims)"
	expect_eq "$t no rootfs mount left" "" "$(grep -F "$CTD_STATE/" /proc/self/mountinfo || true)"
	local left=0 h
	for i in $(seq 1 20); do
		h=$(printf '%s' "$CTD_ADDR/$KYB_NS/c-many-$i" | sha256sum | cut -d' ' -f1)
		[ -e "/run/containerd/s/$h" ] && left=$((left + 1))
	done
	expect_eq "$t no shim socket left" 0 "$left"
	ctd_stop "$n"
}

run_suite 1.6
run_suite 1.7
run_suite 2.1
kyb_finish
