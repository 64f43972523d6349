#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Checkpoint and restore of a Kubernetes-style pod through containerd's CRI
# plugin (1.6, and 1.7 and 2.1 where installed), tests/lib/cri-client.js standing in
# for kubelet, runtime handler "kybernate", a private kybernated:
#   - the pod of manifests/cpu-test-pod.yaml (namespace kybernate-demo, pod
#     cpu-test, container "counter": a busybox counter printing one number a
#     second) runs and is checkpointed with `kybernatectl checkpoint` (left
#     running, as docs/CPU_CHECKPOINT.md does);
#   - the pod is stopped and removed;
#   - the pod of manifests/cpu-restore-pod.yaml (same namespace, pod
#     cpu-restore, env RESTORE_FROM=kybernate-demo/cpu-test/counter) continues
#     the count in its CRI log (first number = the one at the dump + 1);
#   - a restored container checkpointed through the shim (ctr task checkpoint)
#     restores into a third pod, which is then checkpointed with --exit;
#   - the same checkpoint restores a second time, named by the annotation
#     kybernate.io/restore-from (a handler that passes kybernate.io/* container
#     annotations into the OCI spec);
#   - a pod in another Kubernetes namespace naming the same checkpoint fails to
#     start, refused exactly as if the checkpoint did not exist (tenant rule);
#   - two pods restore the same checkpoint at the same time;
#   - the restored process is in the new container's cgroup (with its limit),
#     the file written and the file deleted before the checkpoint are so after
#     it, exec works, StopContainer reports 137;
#   - RESTORE_FROM=/some/host/path is refused (not below allowed_restore_dirs),
#     and so are an unknown reference and any reference while kybernated is
#     down; in no refused case does a fresh process start.
# Container commands are single-quoted on purpose:
# shellcheck disable=SC2016
set -u -o pipefail # no -e: a failed check must not end the suite
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

require_root
require_cmd runc criu ctr containerd jq iptables-restore
require_cri
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
criu check >/dev/null 2>&1 || skip_all "criu check fails here (CRIU >= 4 is needed: run scripts/setup.sh)"
kyb_image_build
# The shim logs into containerd's log at debug level: keep it for diagnosis.
export KYB_CTD_LOG_LEVEL=${KYB_CTD_LOG_LEVEL:-debug}

SHIM=containerd-shim-kybernate-v1
CTL=$BUILD/kybernatectl
NS=kybernate-demo         # the manifests' Kubernetes namespace
OTHER_NS=kybcri-other     # another tenant
REF=$NS/cpu-test/counter  # what cpu-restore-pod.yaml names
ANN_HANDLER=kybcri-ann    # our runtime, with kybernate.io/* container annotations passed on
COUNTER='i=0; while true; do echo $i; i=$((i+1)); sleep 1; done'

# A private daemon socket; containerd passes its environment on to the shims,
# so exporting it before ctd_start makes the shims use this daemon.
SOCK_DIR=$(mktemp -d /run/kybcri-restore.XXXXXX)
kyb_on_exit "rm -rf --one-file-system '$SOCK_DIR'"
SOCK=$SOCK_DIR/kybernated.sock
export KYBERNATE_SOCKET=$SOCK
kyb_on_exit 'kyb_daemon_stop'

# pod_json NAME K8S_NAMESPACE UID LOG_DIR: a host-network pod sandbox config.
pod_json() {
	jq -n --arg n "$1" --arg ns "$2" --arg u "$3" --arg d "$4" '{metadata: {name: $n, uid: $u,
		namespace: $ns, attempt: 0}, log_directory: $d,
		labels: {"app.kubernetes.io/name": $n, "app.kubernetes.io/part-of": "kybernate-demo"},
		linux: {security_context: {namespace_options: {network: "NODE"}}}}'
}

# counter_json [RESTORE_ENV] [RESTORE_ANNOTATION]: the "counter" container of
# the manifests (their image is busybox:1.36; no registry here, so the test
# image), log path counter/0.log and resources as kubelet sets them
# (requests cpu 10m -> 10 shares, limits memory 64Mi).
counter_json() {
	cri_ctr_json counter counter/0.log /bin/sh -c "$COUNTER" |
		jq --arg env "${1:-}" --arg ann "${2:-}" '
			.linux.resources = {cpu_shares: 10, cpu_period: 100000, memory_limit_in_bytes: 67108864}
			|
			(if $env != "" then .envs = [{key: "RESTORE_FROM", value: $env}] else . end)
			| (if $ann != "" then .annotations = {"kybernate.io/restore-from": $ann} else . end)'
}

# stop_instance NAME-PID: ctd_stop, keeping the containerd log under the name
# without the PID (build/test-logs/containerd-NAME.log, the latest run's).
stop_instance() {
	ctd_stop "$1"
	mv -f "$BUILD/test-logs/containerd-$1.log" "$BUILD/test-logs/containerd-${1%-*}.log" 2>/dev/null
	return 0
}

# kyb_shims: our shims started by the current containerd.
kyb_shims() {
	local p
	for p in $(_ctd_shim_pids "$CTD_ADDR"); do
		[[ $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") == *"$SHIM"* ]] && echo "$p"
	done
	return 0
}

# numbers LOG: the counter's numbers in a CRI log file, one a line.
numbers() { sed -nE 's/^[^ ]+ stdout F ([0-9]+)$/\1/p' "$1" 2>/dev/null; }

# check_cgroup NAME CTR_ID: the container's pid 1 is in the container's own
# memory cgroup, which has the 64Mi limit.
check_cgroup() {
	local pid cg
	pid=$(cri inspect "$2" | jq -r '.info.info.pid // 0')
	cg=$(sed -n 's/^[0-9]*:memory:\(.*\)$/\1/p' "/proc/$pid/cgroup" 2>/dev/null)
	expect_contains "$1 container's process is in its own memory cgroup" "$cg" "$2"
	expect_eq "$1 container's memory limit is 64Mi" 67108864 \
		"$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes" 2>/dev/null)"
}

ctr_state() { cri inspect "$1" 2>/dev/null | jq -r .status.state; }

# POD_ID and CTR_ID after run_pod; run_pod NAME K8S_NS UID LOGDIR CTR.json [HANDLER]:
# runs the sandbox and creates the container (not started).
POD_ID="" CTR_ID=""
run_pod() {
	local name=$1 ns=$2 uid=$3 logdir=$4 cj=$5 handler=${6:-$KYB_CRI_HANDLER}
	POD_ID="" CTR_ID=""
	mkdir -p "$logdir/counter"
	pod_json "$name" "$ns" "$uid" "$logdir" >"$KYB_TMP/$uid.pod.json"
	POD_ID=$(cri runp "$KYB_TMP/$uid.pod.json" "$handler") || return 1
	CTR_ID=$(cri create "$POD_ID" "$cj" "$KYB_TMP/$uid.pod.json") || return 1
}

# rm_pod POD_ID: stops and removes a pod.
rm_pod() { cri stopp "$1" && cri rmp "$1"; }

# expect_refused NAME K8S_NS POD RESTORE_ENV NEEDLE...: the container of a pod
# naming RESTORE_ENV does not start; its CRI status message has each NEEDLE;
# no number was printed.
expect_refused() {
	local t=$1 ns=$2 name=$3 ref=$4 uid logdir out st msg n
	shift 4
	uid=kybcri-$name-$ns-$CTD_VERSION
	uid=${uid//./}
	logdir=$KYB_TMP/pods/${ns}_${name}_$uid
	counter_json "$ref" >"$KYB_TMP/$uid.ctr.json"
	if ! run_pod "$name" "$ns" "$uid" "$logdir" "$KYB_TMP/$uid.ctr.json"; then
		fail "$t: pod and container created" "pod $POD_ID ctr $CTR_ID"
		[ -z "$POD_ID" ] || rm_pod "$POD_ID" >/dev/null 2>&1 || true
		return 0
	fi
	if out=$(cri start "$CTR_ID" 2>&1); then
		fail "$t: StartContainer fails" "it succeeded: state $(ctr_state "$CTR_ID")"
	else
		pass "$t: StartContainer fails"
		log "$t: StartContainer said: $out"
	fi
	st=$(cri inspect "$CTR_ID" | jq -c '.status | {state, exit_code, reason, message}' || true)
	log "$t: container status: $st"
	expect_ne "$t: container is not RUNNING" CONTAINER_RUNNING "$(jq -r .state <<<"$st")"
	msg="$(jq -r '.reason + ": " + .message' <<<"$st")"
	for n in "$@"; do
		expect_contains "$t: status reason/message names the cause ('$n')" "$msg" "$n"
	done
	sleep 2
	n=$(numbers "$logdir/counter/0.log" | head -n 1)
	expect_eq "$t: no fresh process started (no number in the log)" "" "$n"
	rm_pod "$POD_ID" >/dev/null 2>&1 || fail "$t: pod stops and is removed"
}

# continues NAME FIRST: FIRST is the number after the one printed at the dump
# of the checkpoint: LO < FIRST <= HI + 1 (LO, HI: the last numbers in the log
# before and after the checkpoint; the same with --exit).
continues() {
	if [[ $2 =~ ^[0-9]+$ ]] && [ -n "$LO" ] && [ -n "$HI" ] && [ "$2" -gt "$LO" ] && [ "$2" -le $((HI + 1)) ]; then
		pass "$1 ($LO < $2 <= $HI + 1)"
	else
		fail "$1" "last number before the checkpoint: '$LO', after it: '$HI', first after restore: '$2'"
		return 1
	fi
}
LO="" HI=""

# parallel_restores: two pods restore the same checkpoint at the same time;
# both continue the count.
parallel_restores() {
	local i uid pids=() rc first ok=1
	for i in 1 2; do
		uid=kybcri-cpu-par$i-${CTD_VERSION/./}
		counter_json "$REF" >"$KYB_TMP/$uid.ctr.json"
		(
			run_pod cpu-par$i "$NS" "$uid" "$KYB_TMP/pods/${NS}_cpu-par${i}_$uid" "$KYB_TMP/$uid.ctr.json" &&
				echo "$POD_ID" >"$KYB_TMP/$uid.podid" && cri start "$CTR_ID"
		) >"$KYB_TMP/$uid.out" 2>&1 &
		pids+=($!)
	done
	for i in 1 2; do
		rc=0
		wait "${pids[i - 1]}" || rc=$?
		uid=kybcri-cpu-par$i-${CTD_VERSION/./}
		[ "$rc" = 0 ] || { ok=0 && log "$t parallel restore $i: $(cat "$KYB_TMP/$uid.out")"; }
	done
	expect_eq "$t two pods restore the same checkpoint at the same time" 1 "$ok"
	for i in 1 2; do
		uid=kybcri-cpu-par$i-${CTD_VERSION/./}
		kyb_wait_eval 20 '[ -n "$(numbers "$KYB_TMP/pods/${NS}_cpu-par${i}_$uid/counter/0.log")" ]' || true
		first=$(numbers "$KYB_TMP/pods/${NS}_cpu-par${i}_$uid/counter/0.log" | head -n 1)
		continues "$t parallel restore $i continues the count" "$first"
		[ ! -s "$KYB_TMP/$uid.podid" ] || rm_pod "$(cat "$KYB_TMP/$uid.podid")" >/dev/null 2>&1 ||
			fail "$t parallel restore $i: pod stops and is removed"
	done
}

# chain_restore LOGDIR CTR_ID: a restored container is checkpointed through
# the shim (ctr task checkpoint: containerd's own flow, the shim asks
# kybernated) and restored into a third pod, which continues its count.
chain_restore() {
	local logdir=$1 ctr=$2 l1 l2 out uid first pod_keep=$POD_ID
	sleep 1.5
	l1=$(numbers "$logdir/counter/0.log" | tail -n 1)
	if out=$(ctr_ task checkpoint "$ctr" 2>&1); then
		pass "$t ctr task checkpoint of a restored CRI container (through the shim)"
	else
		fail "$t ctr task checkpoint of a restored CRI container (through the shim)" "$out"
		return 0
	fi
	expect_contains "$t ctr task checkpoint made an image in containerd's store" \
		"$(ctr_ image ls -q 2>&1)" "checkpoint"
	sleep 1
	l2=$(numbers "$logdir/counter/0.log" | tail -n 1)
	expect_eq "$t container keeps running after ctr task checkpoint" CONTAINER_RUNNING "$(ctr_state "$ctr")"
	expect_eq "$t catalog has the shim's checkpoint of cpu-restore-ann" "ready" \
		"$("$CTL" list --json -p cpu-restore-ann | jq -r '.[0].state')"
	uid=kybcri-cpu-again-${CTD_VERSION/./}
	logdir=$KYB_TMP/pods/${NS}_cpu-again_$uid
	counter_json "$NS/cpu-restore-ann/counter" >"$KYB_TMP/$uid.ctr.json"
	if run_pod cpu-again "$NS" "$uid" "$logdir" "$KYB_TMP/$uid.ctr.json" && out=$(cri start "$CTR_ID" 2>&1); then
		kyb_wait_eval 20 '[ "$(numbers "$logdir/counter/0.log" | wc -l)" -ge 1 ]' || true
		first=$(numbers "$logdir/counter/0.log" | head -n 1)
		LO=$l1 HI=$l2 continues "$t restore of the restored-and-checkpointed counter continues" "$first"
		# --exit: the container stops after the dump, and the CRI plugin
		# deletes its task (bundle, rootfs mount) as soon as it sees the exit.
		if out=$("$CTL" checkpoint --exit -q -n k8s.io "$CTR_ID" 2>&1); then
			pass "$t kybernatectl checkpoint --exit of a CRI container"
			kyb_wait_eval 10 '[ "$(ctr_state "$CTR_ID")" = CONTAINER_EXITED ]' || true
			expect_eq "$t container checkpointed with --exit is EXITED" CONTAINER_EXITED "$(ctr_state "$CTR_ID")"
			expect_eq "$t its checkpoint is ready" ready \
				"$("$CTL" list --json -p cpu-again | jq -r '.[0].state')"
		else
			fail "$t kybernatectl checkpoint --exit of a CRI container" "$out"
		fi
	else
		fail "$t third pod from the shim's checkpoint starts" "${out:-}" \
			"status: $(cri inspect "$CTR_ID" 2>/dev/null | jq -c '.status | {state, reason, message}')"
	fi
	[ -z "$POD_ID" ] || expect_ok "$t third pod stops and is removed" rm_pod "$POD_ID"
	POD_ID=$pod_keep
}

run_suite() {
	local v=$1 n t uid logdir out first later id json ann_ok=1
	# The PID keeps two runs of this test (a CI clone and a work tree) apart.
	n=kybcri-rst${v/./}-$$
	t="[$v]"
	if [ "$v" != 1.6 ] && ! ctd_have "$v"; then
		skip "$t CRI restore suite" "containerd $v not installed in $(ctd_bin_dir "$v") (scripts/setup.sh)"
		return 0
	fi
	kyb_daemon_start "$KYB_TMP/store-$n" "${n%-*}"
	KYB_CTD_NS=k8s.io KYB_CTD_EXTRA_CONFIG="
[$(ctd_cri_runtimes "$v").$ANN_HANDLER]
  runtime_type = \"$KYB_RUNTIME\"
  container_annotations = [\"kybernate.io/*\"]
  pod_annotations = [\"kybernate.io/*\"]" ctd_start "$n" "$v"
	kyb_image_import k8s.io

	# ---- the pod of cpu-test-pod.yaml -------------------------------------------
	uid=kybcri-cpu-test-${v/./}
	logdir=$KYB_TMP/pods/${NS}_cpu-test_$uid
	counter_json >"$KYB_TMP/$uid.ctr.json"
	if ! run_pod cpu-test "$NS" "$uid" "$logdir" "$KYB_TMP/$uid.ctr.json" || ! cri start "$CTR_ID"; then
		fail "$t cpu-test pod runs" "pod '$POD_ID' container '$CTR_ID'"
		stop_instance "$n"
		kyb_daemon_stop
		return 0
	fi
	pass "$t cpu-test pod runs"
	local test_pod=$POD_ID test_ctr=$CTR_ID
	kyb_wait_eval 20 '[ "$(numbers "$logdir/counter/0.log" | wc -l)" -ge 3 ]' ||
		fail "$t cpu-test counter prints numbers" "$(cat "$logdir/counter/0.log" 2>&1)"
	check_cgroup "$t cpu-test" "$CTR_ID"
	# Files written and deleted in the container's rootfs come back with it.
	expect_ok "$t write a file and delete one in the cpu-test rootfs" \
		cri exec "$CTR_ID" sh -c 'echo kept-across-restore >/kybcri-file && rm /bin/vi'
	out=$(for p in $(kyb_shims); do tr '\0' '\n' <"/proc/$p/environ" | grep '^KYBERNATE_SOCKET=' || true; done | sort -u)
	expect_eq "$t the shim inherited KYBERNATE_SOCKET from containerd" "KYBERNATE_SOCKET=$SOCK" "$out"

	# ---- checkpoint with kybernatectl ---------------------------------------------------
	# As docs/CPU_CHECKPOINT.md: checkpoint (the pod keeps running), delete the pod.
	LO=$(numbers "$logdir/counter/0.log" | tail -n 1)
	if id=$("$CTL" checkpoint -q -n k8s.io "$test_ctr" 2>"$KYB_TMP/ckpt-$n.err"); then
		pass "$t kybernatectl checkpoint of the counter"
	else
		fail "$t kybernatectl checkpoint of the counter" "$(cat "$KYB_TMP/ckpt-$n.err")"
		stop_instance "$n"
		kyb_daemon_stop
		return 0
	fi
	id=$(tail -n 1 <<<"$id")
	sleep 1.2 # containerd drains the FIFO into the log
	HI=$(numbers "$logdir/counter/0.log" | tail -n 1)
	expect_eq "$t checkpointed container keeps running" CONTAINER_RUNNING "$(ctr_state "$test_ctr")"
	log "$t counter at $LO..$HI around checkpoint $id"
	json=$("$CTL" list --json)
	expect_eq "$t catalog: ready, kybernate-demo/cpu-test/counter" "ready $NS cpu-test counter" \
		"$(jq -r --arg id "$id" '.[] | select(.id == $id) | [.state, (.k8s_namespace // .k8sNamespace),
			(.k8s_pod // .k8sPod), (.k8s_container // .k8sContainer)] | join(" ")' <<<"$json")"
	# The daemon's half of the rules (dry runs, as the shim's target would be):
	# a failure below but not here points at the shim.
	expect_eq "$t daemon: $REF resolves for kybernate-demo" "$KYB_TMP/store-$n/checkpoints/$id/checkpoint" \
		"$("$CTL" resolve -q -n k8s.io --k8s-namespace "$NS" -p cpu-restore -c counter \
			--image-ref "$KYB_BUSYBOX" "$REF" 2>&1)"
	# Another tenant's checkpoint looks exactly like a missing one (no id of it).
	out=$("$CTL" resolve -q -n k8s.io --k8s-namespace "$OTHER_NS" -p cpu-restore -c counter "$REF" 2>&1)
	expect_contains "$t daemon: $REF refused for $OTHER_NS as if missing (tenant rule)" "$out" \
		"no ready checkpoint of Kubernetes container $REF"
	expect_eq "$t daemon: the refusal does not name the checkpoint" "" "$(grep -o "$id" <<<"$out" || true)"
	expect_contains "$t daemon: /some/host/path refused" \
		"$("$CTL" resolve -q -n k8s.io --k8s-namespace "$NS" /some/host/path 2>&1)" "refused"
	expect_ok "$t cpu-test pod stops and is removed" rm_pod "$test_pod"
	kyb_wait_eval 10 '[ -z "$(kyb_shims)" ]' || fail "$t no shim left after cpu-test is removed" "$(kyb_shims)"

	# ---- the pod of cpu-restore-pod.yaml: RESTORE_FROM in the env -------------------------
	uid=kybcri-cpu-restore-${v/./}
	logdir=$KYB_TMP/pods/${NS}_cpu-restore_$uid
	counter_json "$REF" >"$KYB_TMP/$uid.ctr.json"
	if run_pod cpu-restore "$NS" "$uid" "$logdir" "$KYB_TMP/$uid.ctr.json" &&
		out=$(cri start "$CTR_ID" 2>&1); then
		pass "$t cpu-restore pod (RESTORE_FROM=$REF) starts"
		kyb_wait_eval 20 '[ "$(numbers "$logdir/counter/0.log" | wc -l)" -ge 2 ]' || true
		first=$(numbers "$logdir/counter/0.log" | head -n 1)
		later=$(numbers "$logdir/counter/0.log" | tail -n 1)
		log "$t restored counter printed: $(numbers "$logdir/counter/0.log" | head -n 5 | paste -sd' ')"
		continues "$t restored counter continues the count" "$first" ||
			log "log: $(head -n 5 "$logdir/counter/0.log" 2>&1)"
		expect_ne "$t restored counter does not start from 0" 0 "$first"
		expect_eq "$t restored container RUNNING" CONTAINER_RUNNING "$(ctr_state "$CTR_ID")"
		if [ -n "$later" ] && [ -n "$first" ] && [ "$later" -gt "$first" ]; then
			pass "$t restored counter keeps counting"
		else
			fail "$t restored counter keeps counting" "first '$first', latest '$later'"
		fi
		out=$(cri exec "$CTR_ID" cat /proc/1/cmdline 2>/dev/null | tr '\0' ' ' || true)
		expect_contains "$t exec into the restored container sees the counter" "$out" "while true"
		check_cgroup "$t restored" "$CTR_ID"
		expect_eq "$t the file written before the checkpoint is there" kept-across-restore \
			"$(cri exec "$CTR_ID" cat /kybcri-file 2>&1)"
		expect_eq "$t the file deleted before the checkpoint is gone" gone \
			"$(cri exec "$CTR_ID" sh -c 'test -e /bin/vi && echo present || echo gone' 2>&1)"
		# The shim reaps the restored process: StopContainer ends it (PID 1
		# ignores SIGTERM: SIGKILL after the 2 s grace period, 137).
		expect_ok "$t StopContainer of the restored container" cri stop "$CTR_ID" 2
		expect_eq "$t restored container EXITED with 137" "CONTAINER_EXITED 137" \
			"$(cri inspect "$CTR_ID" | jq -r '.status.state + " " + (.status.exit_code | tostring)')"
		expect_eq "$t catalog counts the restore" 1 \
			"$("$CTL" list --json | jq -r --arg id "$id" '.[] | select(.id == $id) | (.restore_count // .restoreCount)')"
	else
		fail "$t cpu-restore pod (RESTORE_FROM=$REF) starts" "pod '$POD_ID' container '$CTR_ID'" "${out:-}" \
			"status: $(cri inspect "$CTR_ID" 2>/dev/null | jq -c '.status | {state, reason, message}')"
		ann_ok=0
	fi
	[ -z "$POD_ID" ] || expect_ok "$t cpu-restore pod stops and is removed" rm_pod "$POD_ID"

	# ---- the same checkpoint again, named by the annotation ---------------------------------
	if [ "$ann_ok" = 1 ]; then
		uid=kybcri-cpu-restore-ann-${v/./}
		logdir=$KYB_TMP/pods/${NS}_cpu-restore-ann_$uid
		counter_json "" "$REF" >"$KYB_TMP/$uid.ctr.json"
		if run_pod cpu-restore-ann "$NS" "$uid" "$logdir" "$KYB_TMP/$uid.ctr.json" "$ANN_HANDLER" &&
			out=$(cri start "$CTR_ID" 2>&1); then
			pass "$t second restore (annotation kybernate.io/restore-from) starts"
			out=$(cri inspect "$CTR_ID" | jq -r '.info.info.runtimeSpec.annotations["kybernate.io/restore-from"] // ""' || true)
			expect_eq "$t the annotation reached the OCI spec" "$REF" "$out"
			kyb_wait_eval 20 '[ "$(numbers "$logdir/counter/0.log" | wc -l)" -ge 1 ]' || true
			first=$(numbers "$logdir/counter/0.log" | head -n 1)
			continues "$t second restore continues the count too" "$first"
			chain_restore "$logdir" "$CTR_ID"
		else
			fail "$t second restore (annotation kybernate.io/restore-from) starts" "${out:-}" \
				"status: $(cri inspect "$CTR_ID" 2>/dev/null | jq -c '.status | {state, reason, message}')"
		fi
		[ -z "$POD_ID" ] || expect_ok "$t annotation pod stops and is removed" rm_pod "$POD_ID"
	else
		skip "$t second restore by annotation" "the first restore failed"
	fi

	if [ "$ann_ok" = 1 ]; then
		parallel_restores
	fi

	# ---- refusals ---------------------------------------------------------------------------
	expect_refused "$t other Kubernetes namespace (tenant rule: as if missing)" "$OTHER_NS" cpu-restore "$REF" \
		"no ready checkpoint of Kubernetes container $REF"
	expect_refused "$t host path" "$NS" cpu-hostpath /some/host/path "/some/host/path" "refused"
	expect_refused "$t unknown reference" "$NS" cpu-unknown "$NS/no-such-pod/counter" "$NS/no-such-pod/counter"
	kyb_daemon_stop
	expect_refused "$t kybernated not running" "$NS" cpu-nodaemon "$REF" "kybernated"

	finish_suite "$n"
}

# finish_suite NAME: nothing may be left behind; stops containerd and the daemon.
finish_suite() {
	local n=$1 t="[$CTD_VERSION]" out
	expect_eq "$t no pods left" 0 "$(cri pods | jq length || true)"
	if kyb_wait_eval 15 '[ -z "$(kyb_shims)" ]'; then
		pass "$t no $SHIM process left"
	else
		fail "$t no $SHIM process left" "$(kyb_shims)"
	fi
	out=$(awk -v d="$CTD_STATE" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo)
	expect_eq "$t no mount left under the instance's state dir" "" "$out"
	stop_instance "$n"
	kyb_daemon_stop
}

run_suite 1.6
run_suite 1.7
run_suite 2.1
kyb_finish
