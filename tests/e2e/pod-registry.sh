#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A whole pod moves to a second node through a registry (issue 12), on
# containerd 1.7: two private containerd instances with the CRI plugin (nodes
# A and B, tests/lib/node.sh), each with its own kybernated, and a private
# registry (TLS with a test CA, htpasswd: tests/lib/registry.sh), driven
# through tests/lib/cri-client.js as kubelet would:
#   - on node A a pod of two counters ("alpha" from 0, "beta" from 1000), with
#     a cgroup of its own as kubelet gives it, is checkpointed whole with
#     `kybernatectl checkpoint --pod --exit` (as when a node is drained) and
#     pushed by tag with `kybernatectl push`: one image whose layer is the
#     pod's archive, carrying our pod annotation and none of the other
#     runtimes' checkpoint keys (no runtime but ours restores a pod);
#   - node B's store is empty; B's kybernated has pull_allow for the
#     repository into the pod's namespace;
#   - a new pod on B with the pod annotation kybernate.io/restore-from:
#     <image:tag> restores each container from its own member: alpha's first
#     number is A's last + 1, beta's too; B's catalog then holds the pod and
#     its two members, the pod recording the image by digest;
#   - a second pod on B naming the image by digest uses the pulled pod
#     checkpoint (no blob fetched again) and continues as well;
#   - node A's kybernated (push_to) pushed the pod checkpoint by itself as
#     push_to:<pod id>; a pod on B naming that id, which B never saw, pulls
#     it from there and continues;
#   - on node A, the pod checkpoint deleted, `kybernatectl pull` of the
#     image brings back the pod and its members;
#   - a kybernated killed (SIGKILL) at eight moments of a pull of the pod
#     image and started again holds the whole pod, ready, or nothing of it.
# Container commands are single-quoted on purpose:
# shellcheck disable=SC2016
set -u -o pipefail # no -e: a failed check must not end the suite
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/registry.sh
. "$(dirname "$0")/../lib/registry.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/node.sh
. "$(dirname "$0")/../lib/node.sh"

require_root
require_cmd runc criu ctr containerd jq skopeo
require_cri
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
criu check >/dev/null 2>&1 || skip_all "criu check fails here (CRIU >= 4 is needed: run scripts/setup.sh)"
ctd_have_17 || skip_all "containerd 1.7 not installed in $KYB_CTD17_BIN (scripts/setup.sh)"
kyb_image_build
kyb_registry_start

NS=kybpreg-ns
POD=preg-$$
IMG=$REG/ckpt/pod
REGOPTS=(--authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR")
REGCONF="registry_authfile = $REG_AUTHFILE
registry_cert_dir = $REG_CERT_DIR
push_to = $REG/ckpt/auto"

kyb_node_start a "kybpreg-a-$$" 1.7 "$REGCONF"
kyb_node_start b "kybpreg-b-$$" 1.7 "pull_allow = $REG/ckpt=$NS
$REGCONF"
kyb_on_exit "rmdir /sys/fs/cgroup/*/kybpreg-pod-* /sys/fs/cgroup/kybpreg-pod-* 2>/dev/null"

# pod_json NAME UID LOG_DIR [RESTORE_FROM]: a host-network pod sandbox config
# in $NS with a cgroup of its own (as kubelet gives each pod), annotated with
# kybernate.io/restore-from when given.
pod_json() {
	jq -n --arg n "$1" --arg ns "$NS" --arg u "$2" --arg d "$3" --arg from "${4:-}" '{metadata: {name: $n,
		uid: $u, namespace: $ns, attempt: 0}, log_directory: $d,
		linux: {cgroup_parent: ("/kybpreg-pod-" + $u),
			security_context: {namespace_options: {network: "NODE"}}}}
		| if $from != "" then .annotations = {"kybernate.io/restore-from": $from} else . end'
}
# counter_json NAME START: a container counting from START.
counter_json() {
	cri_ctr_json "$1" "$1/0.log" /bin/sh -c "i=$2; while true; do echo \$i; i=\$((i+1)); sleep 1; done"
}

# run_pod NAME UID LOG_DIR [RESTORE_FROM]: the pod with alpha and beta
# started on the current node (handler kybernate-ann, which passes the pod's
# kybernate.io/* annotations into its containers' specs); POD_ID.
run_pod() {
	local c start ctr
	POD_ID=""
	mkdir -p "$3/alpha" "$3/beta"
	pod_json "$1" "$2" "$3" "${4:-}" >"$KYB_TMP/$2.pod.json"
	POD_ID=$(cri runp "$KYB_TMP/$2.pod.json" "$KYB_NODE_ANN_HANDLER") || return 1
	for c in alpha beta; do
		start=0
		[ "$c" = alpha ] || start=1000
		counter_json "$c" "$start" >"$KYB_TMP/$2.$c.json"
		ctr=$(cri create "$POD_ID" "$KYB_TMP/$2.$c.json" "$KYB_TMP/$2.pod.json") || return 1
		cri start "$ctr" >/dev/null || return 1
	done
}

# continues T LOG_DIR: both counters of the pod in LOG_DIR go on from node A's
# last numbers (HI_A, HI_B): the first number each prints is the next one.
continues() {
	local t=$1 d=$2 first
	kyb_wait_eval 30 '[ -n "$(kyb_numbers "$d/alpha/0.log")" ] && [ -n "$(kyb_numbers "$d/beta/0.log")" ]' ||
		log "$t: a counter printed nothing: $(tail -n 3 "$d"/*/0.log 2>&1)"
	first=$(kyb_numbers "$d/alpha/0.log" | head -n 1)
	expect_eq "$t: alpha continues node A's count (first = last + 1)" "$((HI_A + 1))" "$first"
	first=$(kyb_numbers "$d/beta/0.log" | head -n 1)
	expect_eq "$t: beta continues from its own member (first = last + 1)" "$((HI_B + 1))" "$first"
}

# restore_on_b T UID FROM: a pod on node B restored from FROM, checked, removed.
restore_on_b() {
	local t=$1 d=$KYB_TMP/pods/${NS}_$2
	kyb_node_use b
	if run_pod "$POD-$2" "$2" "$d" "$3"; then
		pass "$t: the pod starts"
		continues "$t" "$d"
	else
		fail "$t: the pod starts" "pod '$POD_ID'" "$(tail -n 20 "$(kyb_node_dir b)/kybernated.log")"
	fi
	[ -z "$POD_ID" ] || expect_ok "$t: the pod is stopped and removed" kyb_pod_rm "$POD_ID"
}

# ---- node A: the pod, checkpointed whole and pushed ---------------------------------

kyb_node_use a
logdir=$KYB_TMP/pods/${NS}_$POD
if ! run_pod "$POD" a "$logdir"; then
	fail "node A: the pod with two counters runs" "pod '$POD_ID'"
	kyb_finish
fi
kyb_wait_eval 20 '[ "$(kyb_numbers "$logdir/alpha/0.log" | wc -l)" -ge 2 ] && [ "$(kyb_numbers "$logdir/beta/0.log" | wc -l)" -ge 2 ]' ||
	fail "node A: both counters count" "$(tail -n 3 "$logdir"/*/0.log)"
if PODCK=$(kctl checkpoint --exit --pod "$NS/$POD" 2>"$KYB_TMP/ckpt.err") && [[ $PODCK =~ ^[0-9a-f]{32}$ ]]; then
	pass "node A: kybernatectl checkpoint --exit --pod"
else
	fail "node A: kybernatectl checkpoint --exit --pod" "'$PODCK'" "$(cat "$KYB_TMP/ckpt.err")"
	kyb_finish
fi
HI_A=$(kyb_numbers "$logdir/alpha/0.log" | tail -n 1)
HI_B=$(kyb_numbers "$logdir/beta/0.log" | tail -n 1)
log "node A: pod checkpoint $PODCK, last numbers alpha $HI_A, beta $HI_B"
expect_ok "node A: the pod is stopped and removed" kyb_pod_rm "$POD_ID"

if out=$(kctl push --json "${REGOPTS[@]}" "$PODCK" "$IMG:v1" 2>"$KYB_TMP/push.err"); then
	pass "node A: kybernatectl push of the pod checkpoint"
else
	fail "node A: kybernatectl push of the pod checkpoint" "$(cat "$KYB_TMP/push.err")"
	kyb_finish
fi
DIGEST=$(jq -r .digest <<<"$out")
expect_match "node A: push prints the image's digest" '^sha256:[0-9a-f]{64}$' "$DIGEST"
expect_eq "node A: push says it pushed a pod" "true $PODCK" "$(jq -r '[.pod, .checkpoint] | join(" ")' <<<"$out")"
ann=$(skopeo inspect --raw "${REGOPTS[@]}" "docker://$IMG@$DIGEST" 2>/dev/null | jq -c '.annotations // {}')
expect_eq "the image names the pod's members" "alpha beta" \
	"$(jq -r '."io.kybernate.checkpoint.pod-members" // "" | split(",") | sort | join(" ")' <<<"$ann")"
expect_eq "the image is the pod checkpoint of $NS/$POD" "$PODCK $NS $POD" \
	"$(jq -r '[."io.kybernate.checkpoint.id", ."io.kybernate.checkpoint.namespace", ."io.kybernate.checkpoint.pod"] | join(" ")' <<<"$ann")"
expect_eq "the image carries no other runtime's checkpoint key" "" \
	"$(jq -r 'keys[] | select(startswith("io.kybernate.") or . == "org.opencontainers.image.created" | not)' <<<"$ann")"

# ---- node B: the pod annotation, by tag, then by digest -----------------------------

kyb_node_use b
expect_eq "node B: the store is empty before" 0 "$(kctl list --json | jq length)"
restore_on_b "node B: kybernate.io/restore-from=<image:tag>" b1 "$IMG:v1"
json=$(kctl list --json)
expect_eq "node B: the pulled pod and its two members are in B's catalog" "3 1" \
	"$(jq -r '[length, ([.[] | select(.is_pod)] | length)] | join(" ")' <<<"$json")"
NEWCK=$(jq -r '.[] | select(.is_pod) | .id' <<<"$json")
expect_eq "node B: the pod records the image it came from, by digest" "$IMG@$DIGEST" \
	"$(jq -r '.[] | select(.is_pod) | .source_image' <<<"$json")"
expect_eq "node B: its members are alpha and beta, ready" "alpha:ready beta:ready" \
	"$(kctl inspect "$NEWCK" --json | jq -r '[.checkpoint.members[].k8s_container] | sort | map(. + ":ready") | join(" ")')"
expect_eq "node B: each member is of the pulled pod" "$NEWCK $NEWCK" \
	"$(jq -r '[.[] | select(.is_pod | not) | .pod_checkpoint_id] | join(" ")' <<<"$json")"
before=$(grep -c "GET /v2/ckpt/pod/blobs/" "$REG_LOG" || true)

restore_on_b "node B: kybernate.io/restore-from=<image@digest>" b2 "$IMG@$DIGEST"
expect_eq "node B: still three rows: the digest was cached" 3 "$(kctl list --json | jq length)"
expect_eq "node B: no blob fetched again" "$before" "$(grep -c "GET /v2/ckpt/pod/blobs/" "$REG_LOG" || true)"

# ---- node B: node A's pod id, through push_to -----------------------------------------

kyb_node_use a
pushed_ok() { [ -n "$(kctl inspect "$PODCK" --json | jq -r '.checkpoint.pushed_image // empty')" ]; }
kyb_wait 60 pushed_ok || fail "node A: push_to pushed the pod checkpoint" "$(kctl inspect "$PODCK" 2>&1)"
expect_match "node A: it was pushed as push_to:<pod id>" "^$REG/ckpt/auto:$PODCK@sha256:[0-9a-f]{64}\$" \
	"$(kctl inspect "$PODCK" --json | jq -r '.checkpoint.pushed_image // empty')"
expect_eq "node A: its members were not pushed on their own" "" \
	"$(kctl list --json | jq -r '.[] | select(.is_pod | not) | .pushed_image // empty')"
restore_on_b "node B: kybernate.io/restore-from=<node A's pod id> (push_to)" b3 "$PODCK"
# push_to packs the pod as push did: the same image, under push_to:<pod id>.
expect_eq "node B: the pod id was pulled from push_to" "$REG/ckpt/auto@$DIGEST" \
	"$(kctl list --json | jq -r '.[] | select(.is_pod) | .source_image' | grep -F "$REG/ckpt/auto@")"
expect_eq "node B: no pods left" 0 "$(cri pods | jq length || true)"

# ---- node A: kybernatectl pull of the pod image -----------------------------------------

kyb_node_use a
expect_ok "node A: the pod checkpoint is deleted" kctl delete "$PODCK"
expect_eq "node A: nothing left in the catalog" 0 "$(kctl list --json | jq length)"
if id=$(kctl pull -q "${REGOPTS[@]}" "$IMG:v1" 2>"$KYB_TMP/pull.err") && id=$(tail -n 1 <<<"$id") &&
	[[ $id =~ ^[0-9a-f]{32}$ ]]; then
	pass "node A: kybernatectl pull of the pod image prints the pod checkpoint's id"
	expect_eq "node A: it is a ready pod of $NS/$POD with alpha and beta" "true ready $NS $POD alpha beta" \
		"$(kctl inspect "$id" --json | jq -r '.checkpoint | [.is_pod, .state, .k8s_namespace, .k8s_pod] + ([.members[].k8s_container] | sort) | join(" ")')"
else
	fail "node A: kybernatectl pull of the pod image prints the pod checkpoint's id" "'$id'" "$(cat "$KYB_TMP/pull.err")"
fi
# ---- a kybernated killed while it pulls a pod image --------------------------------------
# Node C: a kybernated alone (no containerd: `kybernatectl pull` needs none),
# killed with SIGKILL at a different moment of each pull of the pod image
# (resolving, fetching, adopting, checksumming the members), then started
# again: it holds either the whole pod, ready, or nothing of it: no pending
# row, no directory without a row, nothing in staging.
C=$KYB_TMP/node-c
mkdir -p "$C"
printf 'registry_authfile = %s\nregistry_cert_dir = %s\n' "$REG_AUTHFILE" "$REG_CERT_DIR" >"$C/kybernated.conf"
CPID=""
c_start() {
	"$BUILD/kybernated" --config "$C/kybernated.conf" --store "$C/store" --socket "$C/sock" \
		--runc-root-base /run/containerd/runc --durable=no >>"$C/kybernated.log" 2>&1 &
	CPID=$!
	kyb_wait 10 "$BUILD/kybernatectl" --socket "$C/sock" status
}
# shellcheck disable=SC2317 # run at exit (kyb_on_exit)
c_stop() { [ -z "$CPID" ] || { kill -KILL "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null; }; }
kyb_on_exit c_stop
# c_state: "<rows> <ready pods> <ready members> <pending rows> <checkpoint dirs> <staging entries>".
c_state() {
	local j
	j=$("$BUILD/kybernatectl" --socket "$C/sock" list --json 2>/dev/null || echo '[]')
	echo "$(jq length <<<"$j") $(jq '[.[] | select(.is_pod and .state == "ready")] | length' <<<"$j")" \
		"$(jq '[.[] | select((.is_pod | not) and .state == "ready")] | length' <<<"$j")" \
		"$(jq '[.[] | select(.state != "ready")] | length' <<<"$j")" \
		"$(find "$C/store/checkpoints" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" \
		"$(find "$C/store/staging" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
}
ok=1 whole=0 none=0
for delay in 0.05 0.15 0.3 0.45 0.6 0.8 1.0 1.3; do
	c_start || { fail "node C: kybernated starts" "$(tail -n 5 "$C/kybernated.log")"; ok=0; break; }
	"$BUILD/kybernatectl" --socket "$C/sock" pull -q "${REGOPTS[@]}" "$IMG@$DIGEST" >/dev/null 2>&1 &
	pull=$!
	sleep "$delay"
	c_stop
	wait "$pull" 2>/dev/null
	c_start || { fail "node C: kybernated starts again" "$(tail -n 5 "$C/kybernated.log")"; ok=0; break; }
	st=$(c_state)
	case $st in
	"0 0 0 0 0 0") none=$((none + 1)) ;;
	"3 1 2 0 3 0") whole=$((whole + 1)) ;;
	*)
		fail "node C: killed ${delay} s into a pull of the pod image: the whole pod or nothing" \
			"rows, ready pods, ready members, pending, dirs, staging: $st"
		ok=0
		;;
	esac
	# Start over with an empty store.
	for id in $("$BUILD/kybernatectl" --socket "$C/sock" list --json | jq -r '.[] | select(.is_pod) | .id'); do
		"$BUILD/kybernatectl" --socket "$C/sock" delete "$id" >/dev/null
	done
	c_stop
done
[ "$ok" = 0 ] || pass "node C: killed at 8 moments of a pull of the pod image, then started again: the whole pod or nothing each time ($whole whole, $none nothing)"
kyb_finish
