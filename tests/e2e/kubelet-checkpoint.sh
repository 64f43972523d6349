#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The Kubernetes checkpoint API through our shim (issue 11, items 2 and 3), on
# containerd 2.1 only (1.6/1.7 answer CheckpointContainer "not implemented"), the CRI
# client standing in for kubelet, handler "kybernate", private kybernateds:
#   - kubelet: `POST /checkpoint/{ns}/{pod}/{container}` is CRI
#     CheckpointContainer with container_id, location =
#     <root>/checkpoints/checkpoint-<pod>_<namespace>-<container>-<RFC3339>.tar
#     (pkg/kubelet/kubelet.go CheckpointContainer) and timeout = the request's
#     ?timeout= in seconds, 0 when not given (pkg/kubelet/server/server.go);
#     containerd 2.1.9 ignores the timeout and asks the task for a checkpoint
#     with no options for a runtime other than runc v2
#     (internal/cri/server/container_checkpoint_linux.go withCheckpointOpts):
#     the shim's default, leave running, is what kubelet wants;
#   - the archive is at the path and `checkpointctl show` reads it, the
#     container keeps running, `kybernatectl list --json` has the checkpoint
#     under the pod's Kubernetes namespace/pod/container, and a new pod with
#     RESTORE_FROM=<ns>/<pod>/<container> continues the count;
#   - a paused container (ctr task pause: CRI has no pause, CRI still says
#     RUNNING) and an exiting one (SIGTERM'd as the checkpoint is asked for):
#     whatever the outcome, a clear answer and nothing frozen or left behind;
#   - `kybernatectl import` of kubelet's archive into another kybernated's
#     store: the row has the pod identity, and RESTORE_FROM=<its id> restores
#     there through CRI;
#   - containerd 2.1's own restore from a checkpoint (CreateContainer with a
#     checkpoint as the container's image, internal/cri/server/
#     container_create.go: taken when the image is a file on the host, or an
#     image in the CRI store whose target blob has the annotation
#     org.criu.checkpoint.container.name; no config switch): kubelet's
#     archive and a Kybernate checkpoint image (kybernatectl push, ctr pull),
#     each with the runc handler and ours; the outcome is recorded
#     (docs/INTEROP.md).
# Container commands are single-quoted on purpose:
# shellcheck disable=SC2016
set -u -o pipefail # no -e: a failed check must not end the suite
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/registry.sh
. "$(dirname "$0")/../lib/registry.sh"

require_root
require_cmd runc criu jq checkpointctl
require_cri
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
ctd_have 2.1 || skip_all "containerd 2.1 is not installed in $(ctd_bin_dir 2.1) (scripts/setup.sh)"
criu check >/dev/null 2>&1 || skip_all "criu check fails here (CRIU >= 4 is needed: run scripts/setup.sh)"
kyb_image_build
export KYB_CTD_LOG_LEVEL=${KYB_CTD_LOG_LEVEL:-debug}

CTL=$BUILD/kybernatectl
NS=team-a
COUNTER='i=0; while true; do echo $i; i=$((i+1)); sleep 1; done'
T="[2.1]"

SOCK_DIR=$(mktemp -d /run/kybkubelet.XXXXXX)
kyb_on_exit "rm -rf --one-file-system '$SOCK_DIR'"
SOCK=$SOCK_DIR/kybernated.sock
export KYBERNATE_SOCKET=$SOCK
DAEMON_PID=
DAEMON_LOG=

start_daemon() { # start_daemon STORE
	DAEMON_LOG=$1.log
	"$BUILD/kybernated" --config /dev/null --store "$1" --socket "$SOCK" \
		--runc-root-base /run/containerd/runc --durable=no >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	kyb_wait 10 "$CTL" status || die "kybernated did not come up: $(tail -n 20 "$DAEMON_LOG")"
}
stop_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
	if [ "$_kyb_fail" -gt 0 ] && [ -f "$DAEMON_LOG" ]; then
		log "--- kybernated log:"
		tail -n 40 "$DAEMON_LOG" >&2
	fi
	mkdir -p "$BUILD/test-logs" && cp "$DAEMON_LOG" "$BUILD/test-logs/kybernated-$KYB_TEST-$(basename "$DAEMON_LOG")" 2>/dev/null
	return 0
}
kyb_on_exit 'stop_daemon'

pod_json() { # pod_json NAME K8S_NS UID LOG_DIR
	jq -n --arg n "$1" --arg ns "$2" --arg u "$3" --arg d "$4" '{metadata: {name: $n, uid: $u,
		namespace: $ns, attempt: 0}, log_directory: $d,
		linux: {security_context: {namespace_options: {network: "NODE"}}}}'
}
# ctr_json [RESTORE_ENV] [SCRIPT] [IMAGE]: the container "main".
ctr_json() {
	cri_ctr_json main main/0.log /bin/sh -c "${2:-$COUNTER}" |
		jq --arg env "${1:-}" --arg img "${3:-}" '
			(if $env != "" then .envs = [{key: "RESTORE_FROM", value: $env}] else . end)
			| (if $img != "" then .image.image = $img else . end)'
}
numbers() { sed -nE 's/^[^ ]+ stdout F ([0-9]+)$/\1/p' "$1" 2>/dev/null; }
ctr_state() { cri inspect "$1" 2>/dev/null | jq -r .status.state; }

# run_pod NAME UID CTR.json [HANDLER]: POD_ID, CTR_ID, LOGDIR; created, not started.
POD_ID="" CTR_ID="" LOGDIR=""
run_pod() {
	local name=$1 uid=$2 cj=$3 handler=${4:-$KYB_CRI_HANDLER}
	POD_ID="" CTR_ID=""
	LOGDIR=$KYB_TMP/pods/${NS}_${name}_$uid
	mkdir -p "$LOGDIR/main"
	pod_json "$name" "$NS" "$uid" "$LOGDIR" >"$KYB_TMP/$uid.pod.json"
	POD_ID=$(cri runp "$KYB_TMP/$uid.pod.json" "$handler") || return 1
	CTR_ID=$(cri create "$POD_ID" "$cj" "$KYB_TMP/$uid.pod.json") || return 1
}
rm_pod() { cri stopp "$1" && cri rmp "$1"; }

# kubelet_ckpt POD CTR_ID [TIMEOUT]: CRI CheckpointContainer as kubelet sends
# it (timeout: the API's ?timeout=, 0 without); prints the archive's path; the
# request's status is its own.
kubelet_ckpt() {
	local loc
	loc=$KYB_TMP/kubelet/checkpoints/checkpoint-${1}_$NS-main-$(date -u +%Y-%m-%dT%H:%M:%SZ).tar
	mkdir -p "$(dirname "$loc")"
	echo "$loc"
	cri checkpoint "$2" "$loc" "${3:-0}" >&2
}

# continues NAME FIRST LO HI: LO < FIRST <= HI + 1.
continues() {
	if [[ $2 =~ ^[0-9]+$ ]] && [[ $3 =~ ^[0-9]+$ ]] && [[ $4 =~ ^[0-9]+$ ]] && [ "$2" -gt "$3" ] && [ "$2" -le $(($4 + 1)) ]; then
		pass "$1 ($3 < $2 <= $4 + 1)"
	else
		fail "$1" "before the checkpoint: '$3', after it: '$4', first after restore: '$2'"
	fi
}

# restore_pod NAME REF LO HI: a pod with RESTORE_FROM=REF continues the count.
restore_pod() {
	local name=$1 ref=$2 lo=$3 hi=$4 uid out first
	uid=kybkc-$name-$$
	ctr_json "$ref" >"$KYB_TMP/$uid.ctr.json"
	if run_pod "$name" "$uid" "$KYB_TMP/$uid.ctr.json" && out=$(cri start "$CTR_ID" 2>&1); then
		pass "$T $name: pod with RESTORE_FROM=$ref starts"
		kyb_wait_eval 20 '[ -n "$(numbers "$LOGDIR/main/0.log")" ]' || true
		first=$(numbers "$LOGDIR/main/0.log" | head -n 1)
		continues "$T $name: the restored counter continues the count" "$first" "$lo" "$hi"
	else
		fail "$T $name: pod with RESTORE_FROM=$ref starts" "${out:-}" \
			"status: $(cri inspect "$CTR_ID" 2>/dev/null | jq -c '.status | {state, reason, message}')"
	fi
	[ -z "$POD_ID" ] || expect_ok "$T $name: pod stops and is removed" rm_pod "$POD_ID"
}

# no_leftovers WHAT CTR_ID: the container's cgroup is not frozen and runc's
# state of it agrees with CRI's.
not_frozen() {
	local pid fz
	pid=$(cri inspect "$2" | jq -r '.info.info.pid // 0')
	fz=$(cat "/sys/fs/cgroup/freezer$(sed -n 's/^[0-9]*:freezer:\(.*\)$/\1/p' "/proc/$pid/cgroup" 2>/dev/null)/freezer.state" 2>/dev/null)
	expect_eq "$T $1: the container's freezer cgroup is THAWED" THAWED "$fz"
	expect_eq "$T $1: runc says running" running \
		"$(runc --root /run/containerd/runc/k8s.io state "$2" 2>/dev/null | jq -r .status)"
}

N=kybkc21-$$
kyb_registry_start
start_daemon "$KYB_TMP/store-a"
KYB_CTD_NS=k8s.io ctd_start "$N" 2.1
kyb_image_import k8s.io

# ---- 1. kubelet's checkpoint of a running counter ------------------------------------
POD=counter
uid=kybkc-counter-$$
ctr_json >"$KYB_TMP/$uid.ctr.json"
if ! run_pod "$POD" "$uid" "$KYB_TMP/$uid.ctr.json" || ! cri start "$CTR_ID"; then
	die "$T the counter pod runs (pod '$POD_ID' container '$CTR_ID')"
fi
SRC_POD=$POD_ID SRC_CTR=$CTR_ID SRC_LOG=$LOGDIR/main/0.log
kyb_wait_eval 20 '[ "$(numbers "$SRC_LOG" | wc -l)" -ge 3 ]' ||
	fail "$T the counter prints numbers" "$(cat "$SRC_LOG" 2>&1)"
LO=$(numbers "$SRC_LOG" | tail -n 1)
if ARCHIVE=$(kubelet_ckpt "$POD" "$SRC_CTR" 2>"$KYB_TMP/ckpt.err"); then
	pass "$T CRI CheckpointContainer (kubelet's request) through our shim"
else
	fail "$T CRI CheckpointContainer (kubelet's request) through our shim" "$(cat "$KYB_TMP/ckpt.err")"
fi
sleep 1.2
HI=$(numbers "$SRC_LOG" | tail -n 1)
A_LO=$LO A_HI=$HI # kubelet's archive continues from here
log "$T counter at $LO..$HI around kubelet's checkpoint, archive $ARCHIVE"
expect_eq "$T kubelet's archive is at the path" yes "$([ -s "$ARCHIVE" ] && echo yes || echo no)"
out=$(checkpointctl show "$ARCHIVE" 2>&1)
expect_match "$T checkpointctl show reads kubelet's archive (container main, its id, our runtime)" \
	"\\| main +\\| $KYB_BUSYBOX +\\| ${SRC_CTR:0:12} +\\| $KYB_RUNTIME +\\|" "$out"
expect_eq "$T the container keeps running" CONTAINER_RUNNING "$(ctr_state "$SRC_CTR")"
sleep 1.5
expect_ne "$T the counter goes on after the checkpoint" "$HI" "$(numbers "$SRC_LOG" | tail -n 1)"
json=$("$CTL" list --json)
expect_eq "$T kybernatectl list: ready, $NS/$POD/main" "ready $NS $POD main" \
	"$(jq -r --arg p "$POD" '[.[] | select((.k8s_pod // .k8sPod) == $p)][0] | [.state,
		(.k8s_namespace // .k8sNamespace), (.k8s_pod // .k8sPod), (.k8s_container // .k8sContainer)] | join(" ")' <<<"$json")"

# ---- paused ---------------------------------------------------------------------------------
expect_ok "$T ctr task pause of the counter" ctr_ task pause "$SRC_CTR"
expect_eq "$T CRI still says RUNNING for the paused container" CONTAINER_RUNNING "$(ctr_state "$SRC_CTR")"
sleep 1.2
P=$(numbers "$SRC_LOG" | tail -n 1)
# As POST /checkpoint/team-a/counter/main?timeout=30.
if out=$(kubelet_ckpt "$POD" "$SRC_CTR" 30 2>&1); then
	pass "$T checkpoint of a paused container: succeeds"
	# The newest checkpoint of the pod: RESTORE_FROM below continues from it.
	LO=$((P - 1)) HI=$P
	expect_eq "$T checkpoint of a paused container: archive written" yes \
		"$([ -s "$(head -n 1 <<<"$out")" ] && echo yes || echo no)"
	expect_eq "$T checkpoint of a paused container: it stays paused" PAUSED "$(ctr_task_status "$SRC_CTR")"
else
	log "$T checkpoint of a paused container said: $out"
	expect_match "$T checkpoint of a paused container: a clear error" "checkpointing container .* failed: .+" "$out"
fi
expect_ok "$T the paused container resumes" ctr_ task resume "$SRC_CTR"
expect_eq "$T task RUNNING after resume" RUNNING "$(ctr_task_status "$SRC_CTR")"
not_frozen "after the paused checkpoint" "$SRC_CTR"
l1=$(numbers "$SRC_LOG" | tail -n 1)
sleep 2.2
expect_ne "$T the counter counts after resume" "$l1" "$(numbers "$SRC_LOG" | tail -n 1)"
expect_eq "$T no checkpoint left half-made" "" \
	"$("$CTL" list --json | jq -r '.[] | select(.state != "ready") | .id + " " + .state')"

# ---- exiting ----------------------------------------------------------------------------------
uid=kybkc-exiting-$$
ctr_json "" 'trap "exit 3" TERM; while :; do sleep 0.2; done' >"$KYB_TMP/$uid.ctr.json"
if run_pod exiting "$uid" "$KYB_TMP/$uid.ctr.json" && cri start "$CTR_ID" >/dev/null; then
	sleep 1
	ctr_ task kill -s TERM "$CTR_ID" &
	kill_pid=$!
	rc=0
	out=$(kubelet_ckpt exiting "$CTR_ID" 2>&1) || rc=$?
	wait "$kill_pid"
	log "$T checkpoint of an exiting container: rc $rc: $out"
	if [ "$rc" = 0 ]; then
		pass "$T checkpoint of an exiting container: succeeded (the dump won the race)"
	else
		expect_match "$T checkpoint of an exiting container: a clear error" \
			"(checkpointing container .* failed|is in .* state|not running|exited)" "$out"
	fi
	kyb_wait_eval 10 '[ "$(ctr_state "$CTR_ID")" = CONTAINER_EXITED ]' || true
	expect_eq "$T the exiting container ended with its own status" "CONTAINER_EXITED 3" \
		"$(cri inspect "$CTR_ID" | jq -r '.status.state + " " + (.status.exit_code | tostring)')"
	expect_ne "$T no runc state of the exiting container is running" running \
		"$(runc --root /run/containerd/runc/k8s.io state "$CTR_ID" 2>/dev/null | jq -r .status)"
	expect_eq "$T no checkpoint of the exiting one left half-made" "" \
		"$("$CTL" list --json | jq -r '.[] | select(.state != "ready") | .id + " " + .state')"
	expect_ok "$T the exiting pod stops and is removed" rm_pod "$POD_ID"
else
	fail "$T the exiting pod runs" "pod '$POD_ID' container '$CTR_ID'"
fi

# ---- RESTORE_FROM=<ns>/<pod>/<container> ------------------------------------------------------
expect_ok "$T the counter pod stops and is removed" rm_pod "$SRC_POD"
restore_pod restored "$NS/$POD/main" "$LO" "$HI"

# Our checkpoint (kybernated's archive of it) as a checkpoint image, for 3. below.
IMG=$REG/kubelet/counter:v1
KYB_ID=$("$CTL" list --json | jq -r --arg p "$POD" '[.[] | select((.k8s_pod // .k8sPod) == $p)][0].id')
if out=$("$CTL" push -q --authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR" "$KYB_ID" "$IMG" 2>&1); then
	pass "$T kybernatectl push of the checkpoint"
	if out=$(ctr_ image pull --hosts-dir "$REG_DIR/certs.d" --user "$REG_USER:$REG_PASS" "$IMG" 2>&1); then
		pass "$T ctr image pull of our checkpoint image into k8s.io"
	else
		fail "$T ctr image pull of our checkpoint image into k8s.io" "$out"
		IMG=
	fi
else
	fail "$T kybernatectl push of the checkpoint" "$out"
	IMG=
fi

# ---- 2. kubelet's archive imported into another kybernated's store ------------------------------
stop_daemon
start_daemon "$KYB_TMP/store-b"
if ij=$("$CTL" import --json "$ARCHIVE" 2>"$KYB_TMP/import.err"); then
	pass "$T kybernatectl import of kubelet's archive"
	IMP_ID=$(jq -r '.id // empty' <<<"$ij")
	log "$T imported as $IMP_ID: $(jq -c . <<<"$ij")"
	row=$("$CTL" list --json | jq -c --arg id "$IMP_ID" '.[] | select(.id == $id)')
	expect_eq "$T the imported row has the pod identity" "ready $NS $POD main $KYB_BUSYBOX" \
		"$(jq -r '[.state, .k8s_namespace, .k8s_pod, .k8s_container, .image_ref] | join(" ")' <<<"$row")"
	# kubelet's archive says nothing of the containerd namespace: a Kubernetes
	# container's checkpoint takes CRI's, k8s.io, where it restores.
	expect_eq "$T the imported row is in containerd's CRI namespace" k8s.io \
		"$(jq -r '.containerd_namespace // ""' <<<"$row")"
	restore_pod imported "$IMP_ID" "$A_LO" "$A_HI"
else
	fail "$T kybernatectl import of kubelet's archive" "$(cat "$KYB_TMP/import.err")"
fi

# ---- 3. containerd 2.1's own restore from a checkpoint --------------------------------------------
# peer_restore NAME IMAGE HANDLER NEEDLE: CreateContainer (+ StartContainer)
# with the checkpoint as the image; NEEDLE: what containerd says (recorded in
# docs/INTEROP.md); a fresh process must not start either way.
peer_restore() {
	local name=$1 img=$2 handler=$3 needle=$4 uid out rc=0 first
	uid=kybkc-$name-$$
	ctr_json "" "" "$img" >"$KYB_TMP/$uid.ctr.json"
	mkdir -p "$KYB_TMP/pods/${NS}_${name}_$uid/main"
	pod_json "$name" "$NS" "$uid" "$KYB_TMP/pods/${NS}_${name}_$uid" >"$KYB_TMP/$uid.pod.json"
	POD_ID=$(cri runp "$KYB_TMP/$uid.pod.json" "$handler") || { fail "$T $name: pod runs"; return 0; }
	if out=$(cri create "$POD_ID" "$KYB_TMP/$uid.ctr.json" "$KYB_TMP/$uid.pod.json" 2>&1); then
		CTR_ID=$out
		out=$(cri start "$CTR_ID" 2>&1) || rc=$?
		sleep 2
		first=$(numbers "$KYB_TMP/pods/${NS}_${name}_$uid/main/0.log" | tail -n +2 | head -n 1)
		log "$T $name: CreateContainer took it; StartContainer rc $rc: $out; first new number '$first'"
	else
		rc=1
		log "$T $name: CreateContainer said: $out"
	fi
	if [ "$rc" = 0 ]; then
		fail "$T $name: containerd's own restore (image $img, handler $handler) as recorded" \
			"it started (first number '$first'): update docs/INTEROP.md"
	else
		expect_contains "$T $name: containerd's own restore (handler $handler) fails as recorded" "$out" "$needle"
	fi
	rm_pod "$POD_ID" >/dev/null 2>&1 || fail "$T $name: pod stops and is removed"
}
peer_restore peer-archive-runc "$ARCHIVE" runc "failed to pull checkpoint base image"
peer_restore peer-archive-kyb "$ARCHIVE" "$KYB_CRI_HANDLER" "failed to pull checkpoint base image"

# Our checkpoint image (kybernated's archive: no status.dump).
if [ -n "$IMG" ]; then
	peer_restore peer-image-runc "$IMG" runc 'failed to read "status.dump"'
	peer_restore peer-image-kyb "$IMG" "$KYB_CRI_HANDLER" 'failed to read "status.dump"'
fi

expect_eq "$T no pods left" 0 "$(cri pods | jq length || true)"
stop_daemon
kyb_finish
