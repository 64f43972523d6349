#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Pods through containerd's CRI plugin with the runtime handler "kybernate"
# (containerd 1.6, and 1.7 and 2.1 where installed), driven by tests/lib/cri-client.js
# standing in for kubelet: a host-network pod with two containers runs under
# ONE kybernate shim (grouped by io.kubernetes.cri.sandbox-id); both are
# RUNNING; their output lands in the CRI log files in CRI format; ExecSync
# works and passes exit codes; a container that exits non-zero shows its code
# in the CRI status, one past its memory limit reason OOMKilled; ContainerStats
# and UpdateContainerResources work; the pod survives a containerd restart;
# stopping and removing the pod leaves no shim process, no mount under the
# instance's state dir and no shim socket. A pod whose shim is SIGKILLed is
# reported exited and can be removed without leftovers.
# Container commands are single-quoted on purpose:
# shellcheck disable=SC2016
set -u -o pipefail # no -e: a failed check must not end the suite
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

require_root
require_cmd runc ctr containerd jq sha256sum
require_cri
require_build containerd-shim-kybernate-v1
kyb_image_build
# The shim logs into containerd's log at debug level: keep it for diagnosis.
export KYB_CTD_LOG_LEVEL=${KYB_CTD_LOG_LEVEL:-debug}

SHIM=containerd-shim-kybernate-v1

# stop_instance NAME-PID: ctd_stop, keeping the containerd log under the name
# without the PID (build/test-logs/containerd-NAME.log, the latest run's).
stop_instance() {
	ctd_stop "$1"
	mv -f "$BUILD/test-logs/containerd-$1.log" "$BUILD/test-logs/containerd-${1%-*}.log" 2>/dev/null
	return 0
}

# kyb_shims: pids of our shims started by the current containerd.
kyb_shims() {
	local p
	for p in $(_ctd_shim_pids "$CTD_ADDR"); do
		[[ $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") == *"$SHIM"* ]] && echo "$p"
	done
	return 0
}

# shim_socket ID: the socket path of the shim for (k8s.io, ID) of this instance.
shim_socket() {
	echo "/run/containerd/s/$(printf '%s' "$CTD_ADDR/k8s.io/$1" | sha256sum | cut -d' ' -f1)"
}

# mounts_below DIR: mount points at or below DIR.
mounts_below() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo
}

# ctr_state ID: CONTAINER_RUNNING, CONTAINER_EXITED, ...
ctr_state() { cri inspect "$1" 2>/dev/null | jq -r .status.state; }

# wait_log FILE PATTERN: waits up to 20 s for an extended regex in FILE.
wait_log() { kyb_wait 20 grep -qE "$2" "$1"; }

TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})'

# killed_shim VERSION: a pod whose shim is SIGKILLed: containerd reports its
# containers exited, their processes are gone (shim `delete` action: 1.x runs
# it per container, 2.x with task API v3 for the sandbox only, which then
# deletes the pod's containers), and the pod can be stopped and removed with
# nothing left.
killed_shim() {
	local t="[$1]" pod c shim out ok=1 marker
	marker=$((RANDOM + 7000))
	cri_pod_json "kybcri-killed" "kybcri-killed-${1/./}" "$KYB_TMP/logs-killed" >"$KYB_TMP/kpod.json"
	cri_ctr_json k k.log sh -c "exec sleep $marker" >"$KYB_TMP/k.json"
	if ! pod=$(cri runp "$KYB_TMP/kpod.json" "$KYB_CRI_HANDLER" 2>&1) ||
		! c=$(cri create "$pod" "$KYB_TMP/k.json" "$KYB_TMP/kpod.json" 2>&1) || ! cri start "$c" >/dev/null 2>&1; then
		fail "$t killed shim: pod runs" "$pod" "${c:-}"
		return 0
	fi
	shim=$(kyb_shims)
	kill -KILL "$shim"
	kyb_wait_eval 20 '[ "$(ctr_state "$c")" = CONTAINER_EXITED ]' || ok=0
	expect_eq "$t killed shim: its container reported EXITED" CONTAINER_EXITED "$(ctr_state "$c")"
	kyb_wait 10 sh -c "! pgrep -f '^sleep $marker\$'" || ok=0
	expect_eq "$t killed shim: the container's process is gone" "" "$(pgrep -f "^sleep $marker\$" || true)"
	expect_ok "$t killed shim: pod stops" cri stopp "$pod"
	expect_ok "$t killed shim: pod is removed" cri rmp "$pod"
	expect_eq "$t killed shim: no shim left" "" "$(kyb_shims)"
	out=$(mounts_below "$CTD_STATE")
	expect_eq "$t killed shim: no mount left" "" "$out"
	# The socket of a SIGKILLed shim stays behind, as with containerd-shim-runc-v2
	# 1.6 and 1.7 (checked here); the next start of that id replaces it.
	rm -f "$(shim_socket "$pod")"
	[ "$ok" = 1 ] || log "$t killed shim: waits timed out"
}

run_suite() {
	local v=$1 n t pod c1 c2 c3 out rc logs sock pids st
	# The PID keeps two runs of this test (a CI clone and a work tree) apart.
	n=kybcri-shim${v/./}-$$
	t="[$v]"
	if [ "$v" != 1.6 ] && ! ctd_have "$v"; then
		skip "$t CRI suite" "containerd $v not installed in $(ctd_bin_dir "$v") (scripts/setup.sh)"
		return 0
	fi
	KYB_CTD_NS=k8s.io ctd_start "$n" "$v"
	kyb_image_import k8s.io
	logs=$KYB_TMP/logs-$n
	mkdir -p "$logs"
	cri_pod_json "kybcri-pod" "kybcri-uid-${v/./}" "$logs" >"$KYB_TMP/pod-$n.json"
	cri_ctr_json one one.log sh -c "echo line-one-$v; exec sleep 600" >"$KYB_TMP/one-$n.json"
	cri_ctr_json two two.log sh -c "echo line-two-$v; echo err-two-$v >&2; exec sleep 600" >"$KYB_TMP/two-$n.json"
	cri_ctr_json three three.log sh -c "echo bye-$v; exit 3" >"$KYB_TMP/three-$n.json"

	if ! pod=$(cri runp "$KYB_TMP/pod-$n.json" "$KYB_CRI_HANDLER" 2>&1); then
		fail "$t run pod sandbox with handler $KYB_CRI_HANDLER" "$pod"
		stop_instance "$n"
		return 0
	fi
	pass "$t run pod sandbox with handler $KYB_CRI_HANDLER"
	# The handler: 1.x has it in the verbose info only; 2.x fills the CRI field
	# PodSandboxStatus.runtime_handler instead (its info no longer names it).
	local hq='.info.info.runtimeHandler'
	[ "$(ctd_major "$v")" -lt 2 ] || hq='.status.runtime_handler'
	out=$(cri inspectp "$pod" | jq -r ".status.state + \" \" + ($hq // \"\")" || true)
	expect_eq "$t pod sandbox READY with handler kybernate" "SANDBOX_READY kybernate" "$out"

	if ! c1=$(cri create "$pod" "$KYB_TMP/one-$n.json" "$KYB_TMP/pod-$n.json" 2>&1) ||
		! out=$(cri start "$c1" 2>&1); then
		fail "$t create + start container one" "$c1" "${out:-}"
		stop_instance "$n"
		return 0
	fi
	pass "$t create + start container one"
	if ! c2=$(cri create "$pod" "$KYB_TMP/two-$n.json" "$KYB_TMP/pod-$n.json" 2>&1) ||
		! out=$(cri start "$c2" 2>&1); then
		fail "$t create + start container two" "$c2" "${out:-}"
		stop_instance "$n"
		return 0
	fi
	pass "$t create + start container two"

	# One shim for the pod: sandbox and both containers.
	pids=$(kyb_shims)
	expect_eq "$t exactly one $SHIM process for the pod" 1 "$(echo "$pids" | grep -c . || true)" ||
		ps -o pid,args -p "$(echo "$pids" | paste -sd,)" >&2 || true
	expect_eq "$t no runc v2 shim for the pod" "" \
		"$(for p in $(_ctd_shim_pids "$CTD_ADDR"); do tr '\0' ' ' <"/proc/$p/cmdline" | grep -o 'containerd-shim-runc-v2' || true; done)"
	sock=$(shim_socket "$pod")
	expect_ok "$t shim socket of the sandbox exists ($sock)" test -S "$sock"
	if [ "$(ctd_major "$v")" -ge 2 ]; then
		# containerd 2 was told task API v3 by the sandbox's start: it
		# attaches the pod's containers to that shim itself, without running
		# start for them, and records the bootstrap parameters it dials.
		expect_eq "$t the sandbox's shim speaks task API v3" "3 ttrpc unix://$sock" \
			"$(jq -r '"\(.version) \(.protocol) \(.address)"' "$(ctd_bundle "$pod" k8s.io)/bootstrap.json" 2>&1)"
		for c in "$c1" "$c2"; do
			expect_eq "$t containerd attached the container to the sandbox's shim (v3)" \
				"$pod 3 ttrpc unix://$sock" \
				"$(cat "$(ctd_bundle "$c" k8s.io)/sandbox" 2>&1) $(jq -r '"\(.version) \(.protocol) \(.address)"' \
					"$(ctd_bundle "$c" k8s.io)/bootstrap.json" 2>&1)"
		done
	else
		for c in "$c1" "$c2"; do
			expect_eq "$t the containers' bundles point at the sandbox's shim" \
				"unix://$sock" "$(cat "$(ctd_bundle "$c" k8s.io)/address" 2>/dev/null || true)"
		done
	fi

	expect_eq "$t container one RUNNING" CONTAINER_RUNNING "$(ctr_state "$c1")"
	expect_eq "$t container two RUNNING" CONTAINER_RUNNING "$(ctr_state "$c2")"
	out=$(cri inspect "$c1" | jq -r .status.log_path || true)
	expect_eq "$t status log_path" "$logs/one.log" "$out"
	out=$(cri ps "$pod" | jq -r '[.[] | .state] | sort | join(" ")' || true)
	expect_eq "$t ListContainers shows both RUNNING" "CONTAINER_RUNNING CONTAINER_RUNNING" "$out"

	# CRI log format: "<RFC 3339 timestamp> <stream> <P|F> <line>"
	wait_log "$logs/one.log" "line-one-$v" || true
	wait_log "$logs/two.log" "err-two-$v" || true
	out=$(cat "$logs/one.log" 2>/dev/null || true)
	if grep -qE "^$TS stdout F line-one-$v\$" <<<"$out"; then
		pass "$t container one's output in its CRI log, CRI format"
	else
		fail "$t container one's output in its CRI log, CRI format" "log: $out"
	fi
	out=$(cat "$logs/two.log" 2>/dev/null || true)
	if grep -qE "^$TS stdout F line-two-$v\$" <<<"$out" && grep -qE "^$TS stderr F err-two-$v\$" <<<"$out"; then
		pass "$t container two's stdout and stderr in its CRI log, CRI format"
	else
		fail "$t container two's stdout and stderr in its CRI log, CRI format" "log: $out"
	fi
	expect_eq "$t each log holds only its container's lines" 1 "$(grep -c . "$logs/one.log" || true)"

	# ExecSync through the shim.
	out=$(cri exec "$c1" echo exec-hi 2>&1 || true)
	expect_eq "$t exec echo prints its output" "exec-hi" "$out"
	out=$(cri exec "$c2" cat /proc/1/cmdline 2>/dev/null | tr '\0' ' ' || true)
	expect_contains "$t exec sees the container's own pid 1" "$out" "sleep 600"
	rc=0
	cri exec "$c1" sh -c 'echo to-err >&2; exit 7' >/dev/null 2>"$KYB_TMP/exec-err" || rc=$?
	expect_eq "$t exec exit code 7 passes through" 7 "$rc"
	expect_eq "$t exec stderr passes through" "to-err" "$(cat "$KYB_TMP/exec-err")"
	expect_eq "$t container one still RUNNING after execs" CONTAINER_RUNNING "$(ctr_state "$c1")"

	# ContainerStats (kubectl top): the shim's Stats decoded by the CRI plugin.
	out=$(cri stats "$c1" 2>&1 | jq -r '[(.cpu.usage_core_nano_seconds.value // "0"),
		(.memory.working_set_bytes.value // "0")] | map(tonumber > 0) | all' 2>&1 || true)
	expect_eq "$t ContainerStats has cpu and memory figures" true "$out" || cri stats "$c1" >&2

	# UpdateContainerResources (in-place resize, CPU manager): the shim's Update.
	echo '{"memory_limit_in_bytes": 100663296, "cpu_shares": 512, "cpu_period": 100000}' >"$KYB_TMP/res-$n.json"
	expect_ok "$t UpdateContainerResources" cri update "$c1" "$KYB_TMP/res-$n.json"
	out=$(cri inspect "$c1" | jq -r '.info.info.pid // 0' || true)
	out=$(sed -n 's/^[0-9]*:memory:\(.*\)$/\1/p' "/proc/$out/cgroup" 2>/dev/null || true)
	expect_eq "$t the new memory limit is in the container's cgroup" 100663296 \
		"$(cat "/sys/fs/cgroup/memory$out/memory.limit_in_bytes" 2>/dev/null || true)"
	expect_eq "$t the new cpu shares are in the container's cgroup" 512 \
		"$(cat "/sys/fs/cgroup/cpu$out/cpu.shares" 2>/dev/null || cat "/sys/fs/cgroup/cpu,cpuacct$out/cpu.shares" 2>/dev/null || true)"

	# containerd restarts (upgrades do that): the pod lives on, one shim serves it.
	ctd_restart "$n"
	expect_eq "$t after containerd restart: both containers RUNNING" "CONTAINER_RUNNING CONTAINER_RUNNING" \
		"$(cri ps "$pod" | jq -r '[.[] | .state] | sort | join(" ")' || true)"
	expect_eq "$t after containerd restart: exec works" "again" "$(cri exec "$c2" echo again 2>&1 || true)"
	expect_eq "$t after containerd restart: still one shim, the same" "$pids" "$(kyb_shims)"

	# A container that exits non-zero: its code in the CRI status.
	if c3=$(cri create "$pod" "$KYB_TMP/three-$n.json" "$KYB_TMP/pod-$n.json" 2>&1) &&
		out=$(cri start "$c3" 2>&1); then
		pass "$t create + start container three (exits 3)"
		kyb_wait_eval 20 '[ "$(ctr_state "$c3")" = CONTAINER_EXITED ]' || true
		st=$(cri inspect "$c3" | jq -c '.status | {state, exit_code, reason}' || true)
		expect_eq "$t exited container: state, exit code 3, reason Error" \
			'{"state":"CONTAINER_EXITED","exit_code":3,"reason":"Error"}' "$st"
		wait_log "$logs/three.log" "bye-$v" || true
		expect_contains "$t exited container's output in its log" "$(cat "$logs/three.log" 2>/dev/null)" " stdout F bye-$v"
		expect_eq "$t still one shim after the third container" 1 "$(kyb_shims | grep -c . || true)"
		expect_ok "$t remove the exited container" cri rm "$c3"
	else
		fail "$t create + start container three (exits 3)" "$c3" "${out:-}"
	fi
	# Past its memory limit: the shim's /tasks/oom event makes the CRI reason OOMKilled.
	cri_ctr_json oom oom.log sh -c 'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo ${#x}' |
		jq '.linux.resources = {memory_limit_in_bytes: 16777216}' >"$KYB_TMP/oom-$n.json"
	if c3=$(cri create "$pod" "$KYB_TMP/oom-$n.json" "$KYB_TMP/pod-$n.json" 2>&1) &&
		out=$(cri start "$c3" 2>&1); then
		kyb_wait_eval 30 '[ "$(ctr_state "$c3")" = CONTAINER_EXITED ]' || true
		st=$(cri inspect "$c3" | jq -c '.status | {state, exit_code, reason}' || true)
		expect_eq "$t container past its memory limit: reason OOMKilled" \
			'{"state":"CONTAINER_EXITED","exit_code":137,"reason":"OOMKilled"}' "$st"
		expect_ok "$t remove the OOM-killed container" cri rm "$c3"
	else
		fail "$t create + start the OOM container" "$c3" "${out:-}"
	fi
	expect_eq "$t pod's other containers unaffected" "CONTAINER_RUNNING CONTAINER_RUNNING" \
		"$(cri ps "$pod" | jq -r '[.[] | .state] | sort | join(" ")' || true)"

	# Stop one container alone: the shim stays for the rest of the pod.
	expect_ok "$t stop container two" cri stop "$c2" 5
	expect_eq "$t stopped container EXITED" CONTAINER_EXITED "$(ctr_state "$c2")"
	expect_eq "$t shim still serves the pod" 1 "$(kyb_shims | grep -c . || true)"
	expect_eq "$t container one still RUNNING" CONTAINER_RUNNING "$(ctr_state "$c1")"

	# Stop and remove the pod: nothing left behind.
	expect_ok "$t stop pod" cri stopp "$pod"
	expect_ok "$t remove pod" cri rmp "$pod"
	expect_eq "$t no pods left" 0 "$(cri pods | jq length || true)"
	expect_eq "$t no containers left" 0 "$(cri ps | jq length || true)"
	if kyb_wait_eval 15 '[ -z "$(kyb_shims)" ]'; then
		pass "$t no $SHIM process left"
	else
		fail "$t no $SHIM process left" "$(ps -o pid,args -p "$(kyb_shims | paste -sd,)" 2>&1)"
	fi
	out=$(mounts_below "$CTD_STATE"; mounts_below "$CTD_ROOT")
	expect_eq "$t no mount left under the instance's state and root dirs" "" "$out"
	expect_fail "$t no shim socket left" test -e "$sock"
	out=$(ls "$CTD_STATE/io.containerd.runtime.v2.task/k8s.io" 2>/dev/null || true)
	expect_eq "$t no bundle left" "" "$out"
	expect_eq "$t no runc state left" "" "$(runc --root /run/containerd/runc/k8s.io list -q 2>/dev/null | grep -F -e "$pod" -e "$c1" -e "$c2" || true)"
	killed_shim "$v"

	out=$(grep -E 'level=(error|fatal|panic)' "$CTD_LOG" | grep -v 'cni' | tail -n 20 || true)
	[ -z "$out" ] || log "errors in the containerd log (for information):" "$out"
	stop_instance "$n"
}

run_suite 1.6
run_suite 1.7
run_suite 2.1
kyb_finish
