#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Smoke test of the test environment itself, with containerd's own runc shim
# (not ours): CRIU works, private containerd 1.6 and 1.7 run a container from
# the test image, runc checkpoint/restore through CRIU resumes a counter, and
# a pod runs through the CRI plugin with tests/lib/cri-client.js.
# Container commands are single-quoted on purpose:
# shellcheck disable=SC2016
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

require_root
require_cmd runc criu ctr containerd busybox jq iptables-restore

N=infra-env # prefix of every name used here

# ---- CRIU ------------------------------------------------------------------

t_criu() {
	local out v
	out=$(criu check 2>&1) || true
	expect_contains "criu check says Looks good ($(command -v criu))" "$out" "Looks good"
	v=$(criu --version | sed -n 's/^Version: *//p')
	if [ -n "$v" ] && [ "${v%%.*}" -ge 4 ] 2>/dev/null; then pass "criu version >= 4 ($v)"; else fail "criu version >= 4" "got '$v'"; fi
	if command -v checkpointctl >/dev/null; then
		expect_ok "checkpointctl runs" checkpointctl --help
	else
		fail "checkpointctl runs" "checkpointctl is not installed (run scripts/setup.sh)"
	fi
}

# ---- containerd + ctr run ------------------------------------------------------

t_ctr_run() {
	local v=$1 name=$N-ctd${1/./} out
	ctd_start "$name" "$v"
	kyb_image_import "$KYB_NS"
	out=$(ctr_ image ls -q)
	expect_contains "containerd $v: busybox image imported" "$out" "$KYB_BUSYBOX"
	out=$(ctr_ run --rm --runtime "$KYB_RUNC_RUNTIME" "$KYB_BUSYBOX" "$N-c1" echo hello 2>&1) || true
	expect_eq "containerd $v: ctr run --rm prints hello" "hello" "$out"
	# A detached task that ctd_stop must clean up (shim, mounts, dirs).
	ctr_ run -d --runtime "$KYB_RUNC_RUNTIME" "$KYB_BUSYBOX" "$N-c2" sleep 600 >/dev/null
	out=$(ctr_ task ls -q)
	expect_contains "containerd $v: detached task runs" "$out" "$N-c2"
	expect_eq "containerd $v: bundle has init.pid" "$(ctr_ task ls | awk -v id="$N-c2" '$1 == id { print $2 }')" \
		"$(cat "$(ctd_bundle "$N-c2")/init.pid" 2>/dev/null)"
	ctd_restart "$name"
	expect_eq "containerd $v: task still RUNNING after a containerd restart" RUNNING "$(ctr_task_status "$N-c2")"
	t_ctr_cr "$v"
	local root=$CTD_ROOT state=$CTD_STATE
	ctd_stop "$name"
	if [ -e "$root" ] || [ -e "$state" ] || grep -q " $state/" /proc/self/mountinfo; then
		fail "containerd $v: ctd_stop leaves nothing behind" "left: $(ls -d "$root" "$state" 2>/dev/null)"
	else
		pass "containerd $v: ctd_stop leaves nothing behind"
	fi
}

# containerd's own checkpoint/restore (runc shim -> runc -> CRIU wrapper in PATH):
# `ctr containers checkpoint --task --rw` + `ctr containers restore --live --rw`.
t_ctr_cr() {
	local v=$1 id=$N-cr v1 v2 ref=docker.io/kybernate/infra-env-ckpt:1
	ctr_ run -d --runtime "$KYB_RUNC_RUNTIME" "$KYB_BUSYBOX" "$id" \
		sh -c 'i=0; while :; do echo $i >/tmp/count; i=$((i+1)); sleep 0.1; done' >/dev/null
	sleep 2
	v1=$(ctr_ task exec --exec-id e1 "$id" cat /tmp/count 2>&1 || true)
	if ! expect_ok "containerd $v: ctr containers checkpoint --task --rw (runc shim)" \
		ctr_ containers checkpoint --task --rw "$id" "$ref"; then
		return 0
	fi
	ctr_ task kill -s KILL "$id" >/dev/null 2>&1 || true
	kyb_wait_eval 10 '[ "$(ctr_task_status "$id")" = STOPPED ]' || true
	ctr_ task delete "$id" >/dev/null 2>&1 || true
	ctr_ container delete "$id" >/dev/null 2>&1 || true
	if ! expect_ok "containerd $v: ctr containers restore --live --rw (runc shim)" \
		ctr_ containers restore --live --rw "$id" "$ref"; then
		return 0
	fi
	v2=$(ctr_ task exec --exec-id e2 "$id" cat /tmp/count 2>&1 || true)
	# A fresh start would count from 0; the restored process goes on from v1.
	if [[ $v1 =~ ^[0-9]+$ ]] && [[ $v2 =~ ^[0-9]+$ ]] && [ "$v1" -ge 10 ] && [ "$v2" -ge "$v1" ]; then
		pass "containerd $v: restored task counts on ($v1 -> $v2)"
	else
		fail "containerd $v: restored task counts on" "before checkpoint: '$v1', after restore: '$v2'"
	fi
	ctr_ task kill -s KILL "$id" >/dev/null 2>&1 || true
}

# ---- runc checkpoint / restore through CRIU -------------------------------------

t_runc_cr() {
	local d=$KYB_TMP/runc b id=$N-counter root=/run/kyb-test/$N-runc last first n
	b=$d/bundle
	mkdir -p "$b/rootfs" "$d/img"
	kyb_on_exit "runc --root '$root' delete --force '$id' >/dev/null 2>&1; kyb_rm_tree '$root'"
	kyb_rootfs_build "$b/rootfs"
	(cd "$b" && runc spec)
	jq '.process.terminal = false
	    | .process.args = ["sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done"]
	    | .root.readonly = false' "$b/config.json" >"$b/config.json.new"
	mv "$b/config.json.new" "$b/config.json"
	# stdio are pipes (CRIU cannot dump a regular file on the host as fd 1);
	# stdin is the read end of a pipe from a sleep that is killed at exit.
	local in sp
	exec {in}< <(exec sleep 600)
	sp=$!
	kyb_on_exit "kill $sp 2>/dev/null"
	runc --root "$root" --log "$d/run.log" run -d --bundle "$b" "$id" \
		<&"$in" > >(cat >>"$d/out") 2> >(cat >>"$d/err")
	sleep 1
	local st
	st=$(runc --root "$root" state "$id" | jq -r .status)
	expect_eq "runc: counter container runs" running "$st" || return 0
	if ! runc --root "$root" --log "$d/run.log" checkpoint --image-path "$d/img" --work-path "$d/img" "$id" \
		>"$d/ckpt.log" 2>&1; then
		fail "runc checkpoint" "$(cat "$d/ckpt.log" "$d/run.log")" "$(tail -n 20 "$d/img/dump.log" 2>/dev/null)"
		return 0
	fi
	pass "runc checkpoint (CRIU dump)"
	sleep 0.5
	last=$(grep -E '^[0-9]+$' "$d/out" | tail -n 1)
	expect_ne "runc: counter printed before checkpoint" "" "$last" || return 0
	: >"$d/out2"
	if ! runc --root "$root" --log "$d/restore.log" restore -d --image-path "$d/img" --work-path "$d/img" \
		--bundle "$b" "$id" <&"$in" > >(cat >>"$d/out2") 2> >(cat >>"$d/err"); then
		fail "runc restore" "$(cat "$d/restore.log" "$d/err")" "$(tail -n 20 "$d/img/restore.log" 2>/dev/null)"
		return 0
	fi
	pass "runc restore (CRIU restore)"
	kyb_wait 10 sh -c "[ \$(grep -c . '$d/out2') -ge 3 ]" || true
	first=$(grep -E '^[0-9]+$' "$d/out2" | head -n 1)
	n=$(grep -cE '^[0-9]+$' "$d/out2" || true)
	expect_eq "runc: restored counter resumes after $last" "$((last + 1))" "$first"
	if [ "$n" -ge 3 ]; then pass "runc: restored counter keeps counting"; else fail "runc: restored counter keeps counting" "only $n lines"; fi
	runc --root "$root" kill "$id" KILL >/dev/null 2>&1 || true
	kyb_wait 5 sh -c "runc --root '$root' state '$id' | grep -q stopped" || true
	runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
}

# ---- CRI: a pod through containerd's CRI plugin (runc runtime) -------------------------

t_cri() {
	local v=$1 name=$N-cri${1/./} pod c out logs=$KYB_TMP/pod-logs-$1
	KYB_CTD_NS=k8s.io ctd_start "$name" "$v"
	kyb_image_import k8s.io
	mkdir -p "$logs"
	cri_pod_json infra-env-pod "$N-uid-$v" "$logs" >"$KYB_TMP/pod.json"
	cri_ctr_json echo echo.log sh -c "echo hello-cri; exec sleep 600" >"$KYB_TMP/ctr.json"
	if ! pod=$(cri runp "$KYB_TMP/pod.json" 2>&1); then
		fail "CRI $v: run pod sandbox (host network)" "$pod"
		ctd_stop "$name"
		return 0
	fi
	pass "CRI $v: run pod sandbox (host network)"
	if c=$(cri create "$pod" "$KYB_TMP/ctr.json" "$KYB_TMP/pod.json" 2>&1) && out=$(cri start "$c" 2>&1); then
		pass "CRI $v: create + start container"
		kyb_wait 10 grep -q hello-cri "$logs/echo.log" || true
		out=$(cat "$logs/echo.log" 2>/dev/null || true)
		expect_contains "CRI $v: container log has the output" "$out" " stdout F hello-cri"
		out=$(cri inspect "$c" | jq -r '.status.state + " " + .status.log_path' || true)
		expect_eq "CRI $v: status RUNNING with log path" "CONTAINER_RUNNING $logs/echo.log" "$out"
		out=$(cri inspect "$c" | jq -r '.info.info.runtimeSpec.linux.namespaces[] | select(.type == "pid") | .path // "own"' || true)
		expect_eq "CRI $v: container has its own PID namespace" "own" "$out"
		out=$(cri exec "$c" cat /proc/1/cmdline | tr '\0' ' ' || true)
		expect_contains "CRI $v: exec sees the container's pid 1" "$out" "sleep 600"
		expect_ok "CRI $v: stop + remove container" sh -c "node '$KYB_CRI_CLIENT' --endpoint '$CTD_CRI_ENDPOINT' stop '$c' 2 &&
			node '$KYB_CRI_CLIENT' --endpoint '$CTD_CRI_ENDPOINT' rm '$c'"
	else
		fail "CRI $v: create + start container" "$c" "$out"
	fi
	expect_ok "CRI $v: stop + remove pod" sh -c "node '$KYB_CRI_CLIENT' --endpoint '$CTD_CRI_ENDPOINT' stopp '$pod' &&
		node '$KYB_CRI_CLIENT' --endpoint '$CTD_CRI_ENDPOINT' rmp '$pod'"
	out=$(cri pods | jq length || true)
	expect_eq "CRI $v: no pods left" 0 "$out"
	ctd_stop "$name"
}

kyb_image_build
t_criu
t_ctr_run 1.6
if ctd_have_17; then t_ctr_run 1.7; else skip "containerd 1.7" "not installed in $KYB_CTD17_BIN"; fi
t_runc_cr
if (require_cri) >/dev/null 2>&1; then
	t_cri 1.6
	if ctd_have_17; then t_cri 1.7; fi
else
	skip "CRI pod smoke test" "node, the CRI api.proto or the grpc npm modules are missing (run scripts/setup.sh)"
fi
kyb_finish
