# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# "Nodes" on one machine for cross-node tests and `make demo` (issue 10): a
# node is a private containerd (CRI plugin, namespace k8s.io, handler
# "kybernate", and "kybernate-ann" which passes kybernate.io/* pod and
# container annotations into the OCI spec) with its own private kybernated
# (socket, store, config), which its shims reach through KYBERNATE_SOCKET.
# Source it after common.sh (and registry.sh when a node pulls):
#
#   . "$(dirname "$0")/../lib/common.sh"
#   . "$(dirname "$0")/../lib/node.sh"
#   kyb_image_build
#   kyb_node_start a kybxn-a-$$ 1.6                   # a node without pulling
#   kyb_node_start b kybxn-b-$$ 1.6 "pull_allow = $REG/ckpt=kybernate-demo"
#   kyb_node_use a                                    # cri, ctr_, kctl go to node A
#   kyb_pod_run cpu-test kybernate-demo uid-1 "$(kyb_counter_json)"
#   kctl checkpoint -q --exit -n k8s.io "$CTR_ID"
#
# Everything a node started is stopped at exit (kyb_node_stop stops it earlier).
#
# Per node NODE (a short label: a, b): the directory $KYB_TMP/node-NODE holds
# kybernated.conf, kybernated.log, kybernated.sock and store/; after
# kyb_node_use NODE the CTD_* variables of common.sh name its containerd, and
# KYBERNATE_SOCKET (exported) its kybernated.
# Container commands are single-quoted on purpose; POD_ID, CTR_ID, POD_LOG are
# for the caller:
# shellcheck disable=SC2016,SC2034

KYB_NODE_ANN_HANDLER=kybernate-ann # our runtime, kybernate.io/* annotations passed on
# The counter of manifests/cpu-test-pod.yaml, which also keeps files in its
# rootfs: /kept (written once, before counting) and /count (the latest number).
KYB_NODE_COUNTER='echo written-before-the-checkpoint >/kept; i=0; while true; do echo $i; echo $i >/count; i=$((i+1)); sleep 1; done'

declare -A _kyb_node_ctd=() _kyb_node_pid=()

# kyb_node_dir NODE: the node's directory.
kyb_node_dir() { echo "$KYB_TMP/node-$1"; }

# kyb_node_start NODE CTD_NAME VERSION [CONFIG_TEXT]: starts kybernated for NODE
# (its config file holds CONFIG_TEXT, empty by default: no pulling), then
# containerd VERSION (1.6 or 1.7) named CTD_NAME, whose shims use that
# kybernated, and imports the test images into its k8s.io namespace. Leaves
# NODE the current node.
kyb_node_start() {
	local node=$1 name=$2 v=$3 conf=${4:-} d
	[ -n "${KYB_BUSYBOX_TAR:-}" ] || kyb_image_build
	d=$(kyb_node_dir "$node")
	mkdir -p "$d"
	printf '%s\n' "$conf" >"$d/kybernated.conf"
	: >"$d/kybernated.log"
	_kyb_node_ctd[$node]=$name
	export KYBERNATE_SOCKET=$d/kybernated.sock
	# Its own session, as containerd's: a Ctrl-C at the terminal is for the
	# script, which stops the node itself (kybernated quits on SIGINT).
	setsid "$BUILD/kybernated" --config "$d/kybernated.conf" --store "$d/store" --socket "$KYBERNATE_SOCKET" \
		--runc-root-base /run/containerd/runc --durable=no >>"$d/kybernated.log" 2>&1 &
	_kyb_node_pid[$node]=$!
	kyb_on_exit "kyb_node_stop '$node'"
	kyb_wait 10 "$BUILD/kybernatectl" status ||
		die "kybernated of node $node did not come up: $(tail -n 20 "$d/kybernated.log")"
	# containerd passes its environment (KYBERNATE_SOCKET) on to its shims.
	KYB_CTD_NS=k8s.io KYB_CTD_EXTRA_CONFIG="
[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.$KYB_NODE_ANN_HANDLER]
  runtime_type = \"$KYB_RUNTIME\"
  container_annotations = [\"kybernate.io/*\"]
  pod_annotations = [\"kybernate.io/*\"]" ctd_start "$name" "$v"
	kyb_image_import k8s.io
}

# kyb_node_use NODE: makes NODE the current node (ctd_use, KYBERNATE_SOCKET).
kyb_node_use() {
	ctd_use "${_kyb_node_ctd[$1]}"
	export KYBERNATE_SOCKET
	KYBERNATE_SOCKET=$(kyb_node_dir "$1")/kybernated.sock
}

# kyb_node_stop NODE: stops the node's containerd (and its containers), then
# its kybernated; keeps their logs as $BUILD/test-logs/containerd-CTD_NAME.log
# and kybernated-CTD_NAME.log, CTD_NAME without its trailing -PID (the latest
# run's).
kyb_node_stop() {
	local -
	set +e
	local node=$1 name=${_kyb_node_ctd[$1]:-} pid=${_kyb_node_pid[$1]:-} d
	d=$(kyb_node_dir "$node")
	if [ -n "$name" ]; then
		log "node $node: stopping containerd $name and kybernated"
		# ctd_start's own clean-up may have stopped it already.
		[ ! -e "$KYB_TEST_RUN/$name.version" ] || ctd_stop "$name"
		mv -f "$BUILD/test-logs/containerd-$name.log" "$BUILD/test-logs/containerd-${name%-*}.log" 2>/dev/null
	fi
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		if [ "${_kyb_fail:-0}" -gt 0 ] && [ -f "$d/kybernated.log" ]; then
			log "--- last lines of kybernated log of node $node:"
			tail -n 30 "$d/kybernated.log" >&2
		fi
		mkdir -p "$BUILD/test-logs" &&
			cp "$d/kybernated.log" "$BUILD/test-logs/kybernated-${name%-*}.log" 2>/dev/null
	fi
	[ -z "$name" ] || log "node $node: stopped"
	_kyb_node_ctd[$node]="" _kyb_node_pid[$node]=""
	return 0
}

# kctl ARGS...: kybernatectl against the current node's kybernated.
kctl() { "$BUILD/kybernatectl" "$@"; }

# ---- pods through CRI ---------------------------------------------------------------

# kyb_counter_json [RESTORE_ENV] [RESTORE_ANNOTATION]: the "counter" container
# of manifests/cpu-test-pod.yaml (image: the test busybox), log path
# counter/0.log, resources as kubelet sets them (requests cpu 10m -> 10
# shares, limits memory 64Mi); with RESTORE_FROM in its env and/or the
# kybernate.io/restore-from annotation when given.
kyb_counter_json() {
	cri_ctr_json counter counter/0.log /bin/sh -c "$KYB_NODE_COUNTER" |
		jq --arg env "${1:-}" --arg ann "${2:-}" '
			.linux.resources = {cpu_shares: 10, cpu_period: 100000, memory_limit_in_bytes: 67108864}
			| (if $env != "" then .envs = [{key: "RESTORE_FROM", value: $env}] else . end)
			| (if $ann != "" then .annotations = {"kybernate.io/restore-from": $ann} else . end)'
}

# POD_ID, CTR_ID and POD_LOG (the container's CRI log) after kyb_pod_create.
POD_ID="" CTR_ID="" POD_LOG=""

# kyb_pod_create NAME K8S_NS UID CTR_JSON [HANDLER]: runs a host-network pod
# sandbox (Kubernetes namespace K8S_NS, pod NAME, logs under
# $KYB_TMP/pods/K8S_NS_NAME_UID) on the current node with HANDLER (default
# kybernate) and creates the container CTR_JSON (a JSON text) in it, not started.
kyb_pod_create() {
	local name=$1 ns=$2 uid=$3 cj=$4 handler=${5:-$KYB_CRI_HANDLER} dir=$KYB_TMP/pods/${2}_${1}_$3
	POD_ID="" CTR_ID="" POD_LOG=$dir/counter/0.log
	mkdir -p "$dir/counter"
	jq -n --arg n "$name" --arg ns "$ns" --arg u "$uid" --arg d "$dir" '{metadata: {name: $n, uid: $u,
		namespace: $ns, attempt: 0}, log_directory: $d,
		labels: {"app.kubernetes.io/name": $n, "app.kubernetes.io/part-of": "kybernate-demo"},
		linux: {security_context: {namespace_options: {network: "NODE"}}}}' >"$KYB_TMP/$uid.pod.json"
	printf '%s\n' "$cj" >"$KYB_TMP/$uid.ctr.json"
	POD_ID=$(cri runp "$KYB_TMP/$uid.pod.json" "$handler") || return 1
	CTR_ID=$(cri create "$POD_ID" "$KYB_TMP/$uid.ctr.json" "$KYB_TMP/$uid.pod.json") || return 1
}

# kyb_pod_rm POD_ID: stops and removes a pod of the current node.
kyb_pod_rm() { cri stopp "$1" >/dev/null && cri rmp "$1" >/dev/null; }

# kyb_ctr_state CTR_ID: CONTAINER_RUNNING, CONTAINER_EXITED, ...
kyb_ctr_state() { cri inspect "$1" 2>/dev/null | jq -r .status.state; }

# kyb_numbers LOG: the counter's numbers in a CRI log file, one a line.
kyb_numbers() { sed -nE 's/^[^ ]+ stdout F ([0-9]+)$/\1/p' "$1" 2>/dev/null; }

# kyb_wait_numbers SECONDS LOG N: waits until LOG holds at least N numbers.
kyb_wait_numbers() {
	kyb_wait_eval "$1" "[ \"\$(kyb_numbers '$2' | wc -l)\" -ge $3 ]"
}
