#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A pod moves between two nodes through a registry (issue 10), on containerd
# 1.6 and 1.7: two private containerd instances with the CRI plugin (nodes A
# and B, tests/lib/node.sh), each with its own kybernated, and a private
# registry (TLS with a test CA, htpasswd: tests/lib/registry.sh), driven
# through tests/lib/cri-client.js as kubelet would:
#   - on node A the counter pod of manifests/cpu-test-pod.yaml (which also
#     writes /kept and /count in its rootfs) is checkpointed with
#     `kybernatectl checkpoint --exit` against A's kybernated and pushed with
#     `kybernatectl push` by tag;
#   - node B's store is empty; B's kybernated has pull_allow for the
#     repository into kybernate-demo and the registry's credentials and CA;
#   - a pod on B with RESTORE_FROM=<image:tag> continues the count (its first
#     number is the last one A printed + 1) and has the files;
#   - a second pod on B names the image by digest in the annotation
#     kybernate.io/restore-from and continues too;
#   - B's store then holds the image once (cached by its digest, recording
#     where it came from);
#   - a pod on B in a Kubernetes namespace no pull_allow rule names fails to
#     start, saying why, with no fresh process and no new row;
#   - node A's kybernated (push_to = REG/ckpt/auto) pushed the checkpoint by
#     itself as push_to:<id>; a pod on B (the same push_to) with
#     RESTORE_FROM=<that id>, which B never saw, pulls it from there and
#     continues the count.
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
require_cmd runc criu ctr containerd jq skopeo zstd
require_cri
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
criu check >/dev/null 2>&1 || skip_all "criu check fails here (CRIU >= 4 is needed: run scripts/setup.sh)"
kyb_image_build
kyb_registry_start

NS=kybernate-demo      # the manifests' Kubernetes namespace, the one pull_allow names
OTHER_NS=kybxn-other   # a namespace no pull_allow rule names
REGOPTS=(--authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR")

# first_of T LOG: waits for the restored counter and prints its first number.
first_of() {
	kyb_wait_numbers 30 "$2" 2 || log "$1: fewer than 2 numbers in $2: $(head -n 5 "$2" 2>&1)"
	kyb_numbers "$2" | head -n 1
}

# restored T LOG FIRST: FIRST is the number after the last one node A printed.
restored() {
	local t=$1 log=$2 first=$3 later out
	expect_eq "$t continues the count (first number = last on node A + 1)" "$((HI + 1))" "$first"
	expect_eq "$t container RUNNING" CONTAINER_RUNNING "$(kyb_ctr_state "$CTR_ID")"
	later=$(kyb_numbers "$log" | tail -n 1)
	if [[ $later =~ ^[0-9]+$ ]] && [[ $first =~ ^[0-9]+$ ]] && [ "$later" -gt "$first" ]; then
		pass "$t keeps counting"
	else
		fail "$t keeps counting" "first '$first', latest '$later'"
	fi
	# One exec (each CRI call starts node), one line each: /kept, /count (read
	# again if caught between the counter's truncate and write), who PID 1 is.
	out=$(cri exec "$CTR_ID" sh -c 'echo "$(cat /kept)"; c=$(cat /count); [ -n "$c" ] || { sleep 0.2; c=$(cat /count); }
		echo "$c"; grep -q "while true" /proc/1/cmdline && echo counter-is-pid-1' 2>/dev/null)
	expect_eq "$t has the file written on node A before the checkpoint" written-before-the-checkpoint \
		"$(sed -n 1p <<<"$out")"
	later=$(sed -n 2p <<<"$out")
	if [[ $later =~ ^[0-9]+$ ]] && [ "$later" -ge "$HI" ]; then
		pass "$t /count in its rootfs goes on from node A's"
	else
		fail "$t /count in its rootfs goes on from node A's" "node A's last: $HI, /count: '$later'"
	fi
	expect_eq "$t exec sees the counter as PID 1" counter-is-pid-1 "$(sed -n 3p <<<"$out")"
}

run_suite() {
	local v=$1 tag a b out first id digest img uid json before
	local t="[$v]"
	if [ "$v" = 1.7 ] && ! ctd_have_17; then
		skip "$t cross-node suite" "containerd 1.7 not installed in $KYB_CTD17_BIN (scripts/setup.sh)"
		return 0
	fi
	tag=v${v/./}
	img=$REG/ckpt/counter
	# The PID keeps two runs of this test (a CI clone and a work tree) apart.
	a=kybxn-a$tag-$$ b=kybxn-b$tag-$$
	kyb_node_start "a$tag" "$a" "$v" "push_to = $REG/ckpt/auto
registry_authfile = $REG_AUTHFILE
registry_cert_dir = $REG_CERT_DIR"
	kyb_node_start "b$tag" "$b" "$v" "pull_allow = $REG/ckpt=$NS
push_to = $REG/ckpt/auto
registry_authfile = $REG_AUTHFILE
registry_cert_dir = $REG_CERT_DIR"

	# ---- node A: the counter pod, checkpointed and pushed -------------------------
	kyb_node_use "a$tag"
	uid=kybxn-cpu-test-$tag
	if ! kyb_pod_create cpu-test "$NS" "$uid" "$(kyb_counter_json)" || ! cri start "$CTR_ID" >/dev/null; then
		fail "$t node A: cpu-test pod runs" "pod '$POD_ID' container '$CTR_ID'"
		kyb_node_stop "a$tag"
		kyb_node_stop "b$tag"
		return 0
	fi
	pass "$t node A: cpu-test pod runs"
	local logA=$POD_LOG podA=$POD_ID ctrA=$CTR_ID
	kyb_wait_numbers 20 "$logA" 3 || fail "$t node A: the counter counts" "$(head -n 5 "$logA" 2>&1)"
	# --exit: the pod's process stops at the dump, as when a node is drained, so
	# the last number in A's log is the one printed before the freeze.
	if id=$(kctl checkpoint -q --exit -n k8s.io "$ctrA" 2>"$KYB_TMP/ckpt-$tag.err"); then
		id=$(tail -n 1 <<<"$id")
		pass "$t node A: kybernatectl checkpoint --exit of the counter"
	else
		fail "$t node A: kybernatectl checkpoint --exit of the counter" "$(cat "$KYB_TMP/ckpt-$tag.err")"
		kyb_node_stop "a$tag"
		kyb_node_stop "b$tag"
		return 0
	fi
	kyb_wait_eval 15 '[ "$(kyb_ctr_state "$ctrA")" = CONTAINER_EXITED ]' ||
		fail "$t node A: the checkpointed container exits" "$(kyb_ctr_state "$ctrA")"
	HI=$(kyb_numbers "$logA" | tail -n 1)
	log "$t node A: checkpoint $id, last number $HI"
	if digest=$(kctl push -q "${REGOPTS[@]}" "$id" "$img:$tag" 2>"$KYB_TMP/push-$tag.err"); then
		digest=$(tail -n 1 <<<"$digest")
		expect_match "$t node A: kybernatectl push prints the digest" '^sha256:[0-9a-f]{64}$' "$digest"
	else
		fail "$t node A: kybernatectl push" "$(cat "$KYB_TMP/push-$tag.err")"
	fi
	expect_ok "$t node A: cpu-test pod stops and is removed" kyb_pod_rm "$podA"

	# ---- node B: RESTORE_FROM=<image:tag> ---------------------------------------------
	kyb_node_use "b$tag"
	expect_eq "$t node B: the store is empty before" 0 "$(kctl list --json | jq length)"
	uid=kybxn-cpu-restore-$tag
	if kyb_pod_create cpu-restore "$NS" "$uid" "$(kyb_counter_json "$img:$tag")" &&
		out=$(cri start "$CTR_ID" 2>&1); then
		pass "$t node B: pod with RESTORE_FROM=$img:$tag starts"
		first=$(first_of "$t" "$POD_LOG")
		log "$t node B: A's last numbers $(kyb_numbers "$logA" | tail -n 3 | paste -sd' '), B's first $(kyb_numbers "$POD_LOG" | head -n 3 | paste -sd' ')"
		restored "$t node B: RESTORE_FROM=<image:tag>" "$POD_LOG" "$first"
	else
		fail "$t node B: pod with RESTORE_FROM=$img:$tag starts" "${out:-}" \
			"status: $(cri inspect "$CTR_ID" 2>/dev/null | jq -c '.status | {state, reason, message}')"
	fi
	[ -z "$POD_ID" ] || expect_ok "$t node B: restored pod stops and is removed" kyb_pod_rm "$POD_ID"
	json=$(kctl list --json)
	expect_eq "$t node B: the pulled checkpoint is in B's store, once" 1 "$(jq length <<<"$json")"
	expect_eq "$t node B: it records the image it came from, by digest" "$img@$digest" \
		"$(jq -r '.[0].source_image' <<<"$json")"
	expect_eq "$t node B: ... and is kybernate-demo/cpu-test/counter" "$NS cpu-test counter" \
		"$(jq -r '.[0] | [(.k8s_namespace // .k8sNamespace), (.k8s_pod // .k8sPod),
			(.k8s_container // .k8sContainer)] | join(" ")' <<<"$json")"
	before=$(grep -c "GET /v2/ckpt/counter/blobs/" "$REG_LOG" || true)

	# ---- node B: the annotation, by digest ----------------------------------------------
	uid=kybxn-cpu-restore-ann-$tag
	if kyb_pod_create cpu-restore-ann "$NS" "$uid" "$(kyb_counter_json "" "$img@$digest")" \
		"$KYB_NODE_ANN_HANDLER" && out=$(cri start "$CTR_ID" 2>&1); then
		pass "$t node B: pod with kybernate.io/restore-from=<image@digest> starts"
		expect_eq "$t node B: the annotation reached the OCI spec" "$img@$digest" \
			"$(cri inspect "$CTR_ID" | jq -r '.info.info.runtimeSpec.annotations["kybernate.io/restore-from"] // ""')"
		first=$(first_of "$t" "$POD_LOG")
		restored "$t node B: kybernate.io/restore-from=<image@digest>" "$POD_LOG" "$first"
	else
		fail "$t node B: pod with kybernate.io/restore-from=<image@digest> starts" "${out:-}" \
			"status: $(cri inspect "$CTR_ID" 2>/dev/null | jq -c '.status | {state, reason, message}')"
	fi
	[ -z "$POD_ID" ] || expect_ok "$t node B: annotation pod stops and is removed" kyb_pod_rm "$POD_ID"
	expect_eq "$t node B: still one row: the digest was cached" 1 "$(kctl list --json | jq length)"
	expect_eq "$t node B: no blob fetched again" "$before" "$(grep -c "GET /v2/ckpt/counter/blobs/" "$REG_LOG" || true)"

	# ---- node B: a namespace no pull_allow rule names -----------------------------------
	uid=kybxn-cpu-other-$tag
	if kyb_pod_create cpu-restore "$OTHER_NS" "$uid" "$(kyb_counter_json "$img:$tag")"; then
		if out=$(cri start "$CTR_ID" 2>&1); then
			fail "$t node B: $OTHER_NS: StartContainer fails" "it succeeded: $(kyb_ctr_state "$CTR_ID")"
		else
			pass "$t node B: $OTHER_NS: StartContainer fails"
		fi
		json=$(cri inspect "$CTR_ID" | jq -c '.status | {state, reason, message}' || true)
		log "$t node B: $OTHER_NS: $out; status $json"
		expect_ne "$t node B: $OTHER_NS: container is not RUNNING" CONTAINER_RUNNING "$(jq -r .state <<<"$json")"
		expect_contains "$t node B: $OTHER_NS: the refusal says why" "$out $json" \
			"into namespace $OTHER_NS refused: no pull_allow rule allows it"
		sleep 2
		expect_eq "$t node B: $OTHER_NS: no fresh process started (no number in the log)" "" \
			"$(kyb_numbers "$POD_LOG" | head -n 1)"
		expect_ok "$t node B: $OTHER_NS: pod stops and is removed" kyb_pod_rm "$POD_ID"
	else
		fail "$t node B: $OTHER_NS: pod and container created" "pod '$POD_ID' container '$CTR_ID'"
	fi
	expect_eq "$t node B: the refusal added no row" 1 "$(kctl list --json | jq length)"

	# ---- node B: RESTORE_FROM=<checkpoint id>, through A's push_to ----------------------
	kyb_node_use "a$tag"
	pushed_ok() { [ -n "$(kctl inspect "$id" --json | jq -r '.checkpoint.pushed_image // empty')" ]; }
	kyb_wait 60 pushed_ok || fail "$t node A: push_to pushed the checkpoint" "$(kctl inspect "$id" 2>&1)"
	expect_match "$t node A: it was pushed as push_to:<id>" "^$REG/ckpt/auto:$id@sha256:[0-9a-f]{64}\$" \
		"$(kctl inspect "$id" --json | jq -r '.checkpoint.pushed_image // empty')"
	kyb_node_use "b$tag"
	uid=kybxn-cpu-restore-id-$tag
	if kyb_pod_create cpu-restore-id "$NS" "$uid" "$(kyb_counter_json "$id")" && out=$(cri start "$CTR_ID" 2>&1); then
		pass "$t node B: pod with RESTORE_FROM=<node A's checkpoint id> starts"
		first=$(first_of "$t" "$POD_LOG")
		restored "$t node B: RESTORE_FROM=<id> through push_to" "$POD_LOG" "$first"
	else
		fail "$t node B: pod with RESTORE_FROM=<node A's checkpoint id> starts" "${out:-}" \
			"status: $(cri inspect "$CTR_ID" 2>/dev/null | jq -c '.status | {state, reason, message}')"
	fi
	[ -z "$POD_ID" ] || expect_ok "$t node B: id pod stops and is removed" kyb_pod_rm "$POD_ID"
	expect_eq "$t node B: the id was pulled from push_to" "$REG/ckpt/auto" \
		"$(kctl list --json | jq -r '.[] | .source_image // empty' | grep -o "^$REG/ckpt/auto" | head -n 1)"
	expect_eq "$t node B: no pods left" 0 "$(cri pods | jq length || true)"

	kyb_node_stop "a$tag"
	kyb_node_stop "b$tag"
}

run_suite 1.6
run_suite 1.7
kyb_finish
