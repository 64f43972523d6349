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
#   - through a handler naming our shim under runc's runtime type (which
#     gets CRIU's work path): kubelet's archive has dump.log and stats-dump
#     at its top, as with runc, and `checkpointctl inspect --stats` reads it;
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
#     each with the runc handler and ours, continue the count. containerd
#     pulls the base image config.dump names (rootfsImageRef) with its
#     default resolver (plain HTTP to a loopback registry, no credentials):
#     the pods run the busybox test image from a plain, anonymous registry on
#     127.0.0.1, pulled through CRI (so it has a repository digest).
#   - Podman 4.3 (private root, when installed): `podman container restore
#     --import` of kubelet's archive is refused, and why (docs/INTEROP.md);
#     a Podman --create-image checkpoint as a CRI container's image is an
#     ordinary image to containerd 2.1 (no org.criu annotation): it does not
#     start, with either handler, and nothing runs.
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

kyb_on_exit 'kyb_daemon_stop'

pod_json() { # pod_json NAME K8S_NS UID LOG_DIR
	jq -n --arg n "$1" --arg ns "$2" --arg u "$3" --arg d "$4" '{metadata: {name: $n, uid: $u,
		namespace: $ns, attempt: 0}, log_directory: $d,
		linux: {security_context: {namespace_options: {network: "NODE"}}}}'
}
# ctr_json [RESTORE_ENV] [SCRIPT] [IMAGE]: the container "main", image $BASE by default.
ctr_json() {
	cri_ctr_json main main/0.log /bin/sh -c "${2:-$COUNTER}" |
		jq --arg env "${1:-}" --arg img "${3:-$BASE}" '
			(if $env != "" then .envs = [{key: "RESTORE_FROM", value: $env}] else . end)
			| .image.image = $img'
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
kyb_registry_plain_start
kyb_daemon_start "$KYB_TMP/store-a" "$KYB_TEST-store-a"
# A second handler names our shim under runc's runtime type (README): containerd
# then sends it runc's checkpoint options, with CRIU's work path.
KYB_CTD_NS=k8s.io KYB_CTD_EXTRA_CONFIG="
[$(ctd_cri_runtimes 2.1).kybernate-runc]
  runtime_type = \"io.containerd.runc.v2\"
  runtime_path = \"$BUILD/containerd-shim-kybernate-v1\"" ctd_start "$N" 2.1
kyb_image_import k8s.io

# The base image: the busybox test image in the plain registry, pulled
# through CRI, so that CRI's image ref of it is NAME@DIGEST.
BASE=$PREG/kyb/busybox:v1
kyb_oci_layout "$KYB_TMP/base-layout"
out=$(skopeo copy -q --dest-tls-verify=false oci:"$KYB_TMP/base-layout" docker://"$BASE" 2>&1) ||
	die "skopeo copy of the base image to $BASE: $out"
out=$(cri pull "$BASE" 2>&1) || die "CRI PullImage $BASE: $out"
expect_match "$T CRI pulled the base image, with a repository digest" "^$PREG/kyb/busybox@sha256:[0-9a-f]{64}\$" \
	"$(cri images | jq -r --arg t "$BASE" '.[] | select(.repo_tags | index($t)) | .repo_digests[0] // empty')"

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
	"\\| main +\\| $BASE +\\| ${SRC_CTR:0:12} +\\| $KYB_RUNTIME +\\|" "$out"
# What containerd's own restore pulls (3. below): CRI's image ref, NAME@DIGEST.
expect_match "$T kubelet's archive names the base image as NAME@DIGEST (config.dump rootfsImageRef)" \
	"^$PREG/kyb/busybox@sha256:[0-9a-f]{64}\$" "$(tar -xOf "$ARCHIVE" config.dump 2>/dev/null | jq -r .rootfsImageRef)"
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

# ---- our shim under runc's runtime type -------------------------------------------------------
# containerd 2.1 gives CRIU's work path (its archive directory) to runc's type
# only; there runc's CRIU writes dump.log and stats-dump, which kubelet's
# archive carries at its top (checkpointctl inspect --stats reads them there).
uid=kybkc-rt-$$
ctr_json >"$KYB_TMP/$uid.ctr.json"
if run_pod counter-rt "$uid" "$KYB_TMP/$uid.ctr.json" kybernate-runc && cri start "$CTR_ID" >/dev/null; then
	pass "$T a pod of handler kybernate-runc (runc's type, our shim) runs"
	kyb_wait_eval 20 '[ -n "$(numbers "$LOGDIR/main/0.log")" ]' || true
	if RT_ARCHIVE=$(kubelet_ckpt counter-rt "$CTR_ID" 2>"$KYB_TMP/ckpt-rt.err"); then
		pass "$T kubelet's checkpoint through handler kybernate-runc"
		names=$(tar -tf "$RT_ARCHIVE" 2>/dev/null)
		expect_match "$T its archive has CRIU's stats-dump and dump.log at the top, as with runc" \
			"^dump.log stats-dump\$" "$(grep -xE 'dump.log|stats-dump' <<<"$names" | sort | tr '\n' ' ' | sed 's/ $//')"
		expect_contains "$T its archive has the images under checkpoint/" "$names" "checkpoint/pages-1.img"
		out=$(checkpointctl inspect --stats "$RT_ARCHIVE" 2>&1)
		expect_contains "$T checkpointctl inspect --stats reads its stats-dump" "$out" "Pages scanned"
		expect_eq "$T kybernatectl list: the checkpoint is in the catalog, ready" "ready $NS counter-rt main" \
			"$("$CTL" list --json | jq -r '[.[] | select((.k8s_pod // .k8sPod) == "counter-rt")][0] | [.state,
				(.k8s_namespace // .k8sNamespace), (.k8s_pod // .k8sPod), (.k8s_container // .k8sContainer)] | join(" ")')"
		expect_eq "$T the container keeps running" CONTAINER_RUNNING "$(ctr_state "$CTR_ID")"
	else
		fail "$T kubelet's checkpoint through handler kybernate-runc" "$(cat "$KYB_TMP/ckpt-rt.err")"
	fi
else
	fail "$T a pod of handler kybernate-runc (runc's type, our shim) runs" "pod '$POD_ID' container '$CTR_ID'"
fi
[ -z "$POD_ID" ] || expect_ok "$T the kybernate-runc pod stops and is removed" rm_pod "$POD_ID"

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
kyb_daemon_stop
kyb_daemon_start "$KYB_TMP/store-b" "$KYB_TEST-store-b"
if ij=$("$CTL" import --json "$ARCHIVE" 2>"$KYB_TMP/import.err"); then
	pass "$T kybernatectl import of kubelet's archive"
	IMP_ID=$(jq -r '.id // empty' <<<"$ij")
	log "$T imported as $IMP_ID: $(jq -c . <<<"$ij")"
	row=$("$CTL" list --json | jq -c --arg id "$IMP_ID" '.[] | select(.id == $id)')
	expect_eq "$T the imported row has the pod identity" "ready $NS $POD main $BASE" \
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
# peer_restore NAME IMAGE HANDLER LO HI SKIP: CreateContainer + StartContainer
# with the checkpoint as the container's image (no RESTORE_FROM), in a new pod
# with HANDLER; the restored counter continues from the checkpoint (LO..HI).
# containerd copies the checkpoint's container.log into the new log first:
# the first SKIP numbers of it are the old ones.
peer_restore() {
	local name=$1 img=$2 handler=$3 lo=$4 hi=$5 skip=$6 uid out log first
	uid=kybkc-$name-$$
	log=$KYB_TMP/pods/${NS}_${name}_$uid/main/0.log
	ctr_json "" "" "$img" >"$KYB_TMP/$uid.ctr.json"
	mkdir -p "$(dirname "$log")"
	pod_json "$name" "$NS" "$uid" "$KYB_TMP/pods/${NS}_${name}_$uid" >"$KYB_TMP/$uid.pod.json"
	POD_ID=$(cri runp "$KYB_TMP/$uid.pod.json" "$handler") || { fail "$T $name: pod runs"; return 0; }
	if ! out=$(cri create "$POD_ID" "$KYB_TMP/$uid.ctr.json" "$KYB_TMP/$uid.pod.json" 2>&1); then
		fail "$T $name: containerd's CRI restore (image $img, handler $handler): CreateContainer" "$out"
	else
		CTR_ID=$out
		pass "$T $name: CreateContainer takes the checkpoint (handler $handler)"
		if out=$(cri start "$CTR_ID" 2>&1); then
			pass "$T $name: StartContainer restores it (handler $handler)"
			kyb_wait_eval 20 '[ "$(numbers "$log" | wc -l)" -gt "$skip" ]' || true
			first=$(numbers "$log" | tail -n +$((skip + 1)) | head -n 1)
			continues "$T $name: the counter restored by containerd continues the count" "$first" "$lo" "$hi"
			expect_eq "$T $name: the restored container runs" CONTAINER_RUNNING "$(ctr_state "$CTR_ID")"
		else
			fail "$T $name: StartContainer restores it (handler $handler)" "$out" \
				"status: $(cri inspect "$CTR_ID" 2>/dev/null | jq -c '.status | {state, reason, message}')"
		fi
	fi
	rm_pod "$POD_ID" >/dev/null 2>&1 || fail "$T $name: pod stops and is removed"
}
# kubelet's archive holds the log up to its checkpoint (container.log).
tar -xOf "$ARCHIVE" container.log >"$KYB_TMP/archive-container.log" 2>/dev/null
A_SKIP=$(numbers "$KYB_TMP/archive-container.log" | wc -l)
peer_restore peer-archive-runc "$ARCHIVE" runc "$A_LO" "$A_HI" "$A_SKIP"
peer_restore peer-archive-kyb "$ARCHIVE" "$KYB_CRI_HANDLER" "$A_LO" "$A_HI" "$A_SKIP"

# Our checkpoint image (kybernated's archive: config.dump, spec.dump,
# status.dump, no container.log): the newest checkpoint of the pod.
if [ -n "$IMG" ]; then
	peer_restore peer-image-runc "$IMG" runc "$LO" "$HI" 0
	peer_restore peer-image-kyb "$IMG" "$KYB_CRI_HANDLER" "$LO" "$HI" 0
fi

# ---- 4. Podman and containerd 2.1's CRI, the other way round ----------------------------------------
# podman_run ARGS...: Podman on a private root under $KYB_TMP (as interop-podman.sh).
P0=(podman --root "$KYB_TMP/podman/root" --runroot "$KYB_TMP/podman/run" --tmpdir "$KYB_TMP/podman/tmp"
	--cgroup-manager cgroupfs --events-backend file)
P=("${P0[@]}" --runtime runc)
# peer_refused NAME IMAGE HANDLER NEEDLE: CreateContainer + StartContainer
# with IMAGE fail, saying NEEDLE, and nothing counts.
peer_refused() {
	local name=$1 img=$2 handler=$3 needle=$4 uid out rc=0 log
	uid=kybkc-$name-$$
	log=$KYB_TMP/pods/${NS}_${name}_$uid/main/0.log
	ctr_json "" "" "$img" >"$KYB_TMP/$uid.ctr.json"
	mkdir -p "$(dirname "$log")"
	pod_json "$name" "$NS" "$uid" "$KYB_TMP/pods/${NS}_${name}_$uid" >"$KYB_TMP/$uid.pod.json"
	POD_ID=$(cri runp "$KYB_TMP/$uid.pod.json" "$handler") || { fail "$T $name: pod runs"; return 0; }
	if out=$(cri create "$POD_ID" "$KYB_TMP/$uid.ctr.json" "$KYB_TMP/$uid.pod.json" 2>&1); then
		CTR_ID=$out
		out=$(cri start "$CTR_ID" 2>&1) || rc=$?
	else
		rc=$?
	fi
	log "$T $name: rc $rc: $out"
	if [ "$rc" = 0 ]; then
		fail "$T $name: refused (image $img, handler $handler)" "it started: update docs/INTEROP.md"
	else
		expect_contains "$T $name: refused (handler $handler), as recorded" "$out" "$needle"
	fi
	sleep 1
	expect_eq "$T $name: nothing counts" "" "$(numbers "$log")"
	rm_pod "$POD_ID" >/dev/null 2>&1 || fail "$T $name: pod stops and is removed"
}
if command -v podman >/dev/null; then
	kyb_on_exit "${P[*]} rm -af -t 0 >/dev/null 2>&1; ${P[*]} rmi -af >/dev/null 2>&1;" \
		"umount -R '$KYB_TMP/podman/root/overlay' 2>/dev/null || true"
	"${P[@]}" pull -q --tls-verify=false "$BASE" >/dev/null 2>&1 || die "podman pull $BASE failed"
	# kubelet's archive -> Podman 4.3: config.dump's "runtime" is
	# containerd's runtime type, which Podman takes for its own runtime's
	# name (cmd/podman/root.go); given a runtime of that name (runc, in a
	# containers.conf), it needs the base image's Podman ID (rootfsImageID).
	podman_import() { # podman_import NAME NEEDLE PODMAN...
		local name=$1 needle=$2 out rc=0
		shift 2
		out=$("$@" container restore --import "$ARCHIVE" --name kubelet-rst 2>&1) || rc=$?
		log "$T $name: podman container restore --import <kubelet's archive>: rc $rc: $out"
		if [ "$rc" = 0 ]; then
			fail "$T $name: Podman 4.3 refuses kubelet's archive as recorded" "it restored: update docs/INTEROP.md"
		else
			expect_contains "$T $name: Podman 4.3 refuses kubelet's archive as recorded" "$out" "$needle"
		fi
		"${P[@]}" rm -f -t 0 kubelet-rst >/dev/null 2>&1
	}
	podman_import podman-import-archive \
		"was created with runtime '$KYB_RUNTIME' and cannot be restored with runtime 'runc'" "${P[@]}"
	printf '[engine.runtimes]\n"%s" = ["%s"]\n' "$KYB_RUNTIME" "$(command -v runc)" >"$KYB_TMP/containers.conf"
	podman_import podman-import-archive-runtime "both RootfsImageName and RootfsImageID must be set" \
		env CONTAINERS_CONF="$KYB_TMP/containers.conf" "${P0[@]}"

	# Podman --create-image -> containerd 2.1 CRI.
	out=$("${P[@]}" run -d --name pcnt --network none --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 \
		"$BASE" sh -c "$COUNTER" 2>&1) || die "podman run failed: $out"
	kyb_wait 30 sh -c "[ \"\$(${P[*]} logs pcnt 2>/dev/null | grep -cE '^[0-9]+$')\" -ge 3 ]" ||
		die "the Podman counter did not count"
	PIMG=$PREG/podman/cnt:v1
	"${P[@]}" container checkpoint --create-image "$PIMG" pcnt >"$KYB_TMP/podman-ckpt.log" 2>&1 ||
		die "podman container checkpoint --create-image failed: $(cat "$KYB_TMP/podman-ckpt.log")"
	"${P[@]}" push -q --tls-verify=false "$PIMG" >/dev/null 2>&1 || die "podman push of $PIMG failed"
	out=$(cri pull "$PIMG" 2>&1) || die "CRI PullImage $PIMG: $out"
	# containerd 2.1.9 takes an image for a checkpoint by the annotation
	# org.criu.checkpoint.container.name of its target blob
	# (checkIfCheckpointOCIImage); Podman 4.3 writes its own,
	# io.podman.annotations.checkpoint.*: an ordinary image to containerd,
	# whose root is the checkpoint archive.
	man=$(skopeo inspect --raw --tls-verify=false "docker://$PIMG")
	expect_eq "$T Podman's checkpoint image: Podman's annotation, not containerd's" "runc -" \
		"$(jq -r '[.annotations["io.podman.annotations.checkpoint.runtime.name"] // "-",
			.annotations["org.criu.checkpoint.container.name"] // "-"] | join(" ")' <<<"$man")"
	peer_refused peer-podman-runc "$PIMG" runc 'exec: "/bin/sh": stat /bin/sh: no such file or directory'
	peer_refused peer-podman-kyb "$PIMG" "$KYB_CRI_HANDLER" "its image is a checkpoint image"
	expect_eq "$T containerd did not take Podman's image for a checkpoint" 0 \
		"$(grep -c "Found checkpoint of container .* in $PIMG" "$CTD_LOG")"
	expect_ne "$T (it did take ours)" 0 "$(grep -c "Found checkpoint of container .* in ${IMG:-none}" "$CTD_LOG")"
else
	skip "$T podman" "podman is not installed"
fi

expect_eq "$T no pods left" 0 "$(cri pods | jq length || true)"
kyb_daemon_stop
kyb_finish
