#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Moving a running process between nodes through a registry (issue 10's
# performance target): Kybernate, Podman's own flow and the raw floor, side by
# side in one run.
#
#   BUILD=$PWD/build bench/cross-node-bench.sh [--mib N] [--runs N]
#       [--workloads "pattern random"] [--compressions "none gzip zstd"]
#       [--flows "kyb podman raw"]
#
# The process is bench/memhog.c holding --mib (default 1024) MiB of touched
# memory: "pattern" (its default, compresses to almost nothing) or "random"
# (memhog -r, incompressible). Both "nodes" are on this machine and share a
# private registry on loopback (tests/lib/registry.sh: TLS, htpasswd). Every
# flow stops the process on node A (checkpoint and exit: what a move is, and
# what Podman's checkpoint and runc's do by default) and ends when it runs on
# node B:
#
#   kyb     kybernated A and B run with durable = no (neither peer syncs its
#           images: B unpacks the pulled image without fsync too); A takes
#           `kybernatectl checkpoint --exit`; `kybernatectl push --compression
#           C` to the registry; kybernated B (empty store, pull_allow for the
#           repository) resolves the tag as the shim would for
#           RESTORE_FROM=<image>: it pulls, verifies and adopts it, and answers
#           the image path; `runc restore -d` from that path (as
#           tests/e2e/daemon-pull.sh, without containerd).
#   podman  `podman container checkpoint --create-image`, `podman push
#           [--compression-format C]`, `podman pull` on node B (its own
#           --root/--runroot: separate storage), `podman container restore
#           IMAGE`. Podman 4.3 always compresses a push to a registry (gzip by
#           default): its "none" is not measured.
#   raw     `runc checkpoint`; the image directory tarred into an OCI layout
#           (hashed while written); `skopeo copy` to the registry (--preserve-
#           digests for none, --dest-compress-format C otherwise, as
#           kybernatectl push does) and back (--preserve-digests); the layer
#           decompressed (gzip -dc, zstd -dc: what kybernated uses) and
#           untarred; `runc restore -d`.
#
# Each round runs every workload x compression x flow once, the flows' order
# rotating per round. Times are wall time of each command; total is from the
# checkpoint command's start to the restore command's return (the process
# runs on B); downtime is from the moment the container's cgroup freezer
# first reads FREEZING/FROZEN (polled every ms) to that same end. Before every
# push, skopeo's blob info cache is emptied and after every move the
# registry's storage, the checkpoints, images and containers are removed, so
# no move reuses another's blobs. Every restored process is checked to print
# the number after the last one it printed on A. Prints medians and every run;
# nothing is written to docs/.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/common.sh
. "$(dirname "$0")/../tests/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../tests/lib/registry.sh
. "$(dirname "$0")/../tests/lib/registry.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

MIB=1024
RUNS=3
WORKLOADS="pattern random"
COMPRESSIONS="none gzip zstd"
FLOWS="kyb podman raw"
usage="usage: bench/cross-node-bench.sh [--mib N] [--runs N] [--workloads LIST] [--compressions LIST] [--flows LIST]"
while [ $# -gt 0 ]; do
	case $1 in
	--mib) MIB=$2 && shift 2 ;;
	--runs) RUNS=$2 && shift 2 ;;
	--workloads) WORKLOADS=$2 && shift 2 ;;
	--compressions) COMPRESSIONS=$2 && shift 2 ;;
	--flows) FLOWS=$2 && shift 2 ;;
	*) die "$usage" ;;
	esac
done
read -r -a WLS <<<"$WORKLOADS"
read -r -a CMPS <<<"$COMPRESSIONS"
read -r -a FLS <<<"$FLOWS"
require_root
require_cmd runc criu jq skopeo zstd gzip podman perl sha256sum tar
require_build kybernated kybernatectl
kyb_registry_start

NS=xnode
D=$KYB_TMP
CRIU=$(command -v criu)
REGOPTS=(--authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR")
SKOPEO=(skopeo --insecure-policy)
BLOB_CACHE=/var/lib/containers/cache/blob-info-cache-v1.boltdb

# ---- the two kybernated nodes --------------------------------------------------

start_node() {
	local n=$1 pid
	mkdir -p "$D/$n/store" "$D/$n/runc/$NS"
	printf '%s\n' "${@:2}" >"$D/$n/kybernated.conf"
	"$BUILD/kybernated" --config "$D/$n/kybernated.conf" --store "$D/$n/store" --socket "$D/$n/sock" \
		--runc-root-base "$D/$n/runc" --criu "$CRIU" >"$D/$n/log" 2>&1 &
	pid=$!
	kyb_on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
	kyb_wait 10 "$BUILD/kybernatectl" --socket "$D/$n/sock" status || die "kybernated $n did not start"
}
start_node a "durable = no"
start_node b "durable = no" "pull_allow = $REG/bench=$NS" "registry_authfile = $REG_AUTHFILE" "registry_cert_dir = $REG_CERT_DIR"
A=("$BUILD/kybernatectl" --socket "$D/a/sock")
B=("$BUILD/kybernatectl" --socket "$D/b/sock")

# ---- the workload: one rootfs for runc (both nodes) and an image for Podman ---------

BUNDLE=$D/bundle
mkdir -p "$BUNDLE/rootfs"
kyb_rootfs_build "$BUNDLE/rootfs"
cc -static -O2 -o "$BUNDLE/rootfs/bin/memhog" "$KYB_TOP/bench/memhog.c" || die "cc -static bench/memhog.c failed"
tar -C "$BUNDLE/rootfs" --numeric-owner -cf "$D/rootfs.tar" .

# Podman "nodes": storage, run and tmp directories of their own.
pod_opts() { echo "--root $D/p$1/root --runroot $D/p$1/run --tmpdir $D/p$1/tmp"; }
read -r -a PA <<<"podman $(pod_opts a) --cgroup-manager cgroupfs --events-backend file --storage-driver overlay"
read -r -a PB <<<"podman $(pod_opts b) --cgroup-manager cgroupfs --events-backend file --storage-driver overlay"
podman_clean() {
	local p=("$@")
	"${p[@]}" rm -af -t 0 >/dev/null 2>&1
	"${p[@]}" rmi -af >/dev/null 2>&1
}
pod_clean_all() {
	podman_clean "${PA[@]}"
	podman_clean "${PB[@]}"
	"${PA[@]}" system reset -f >/dev/null 2>&1
	"${PB[@]}" system reset -f >/dev/null 2>&1
}
if [[ " ${FLS[*]} " == *" podman "* ]]; then
	kyb_on_exit pod_clean_all
	for p in PA PB; do
		declare -n pp=$p
		"${pp[@]}" import -q "$D/rootfs.tar" localhost/memhog:bench >/dev/null || die "podman import failed"
	done
	unset -n pp
fi
PODMAN_RUN=(run -d --network host --ulimit nofile=20000:20000 --ulimit nproc=4096:4096)

# ---- helpers ------------------------------------------------------------------------

memhog_cmd() { if [ "$1" = random ]; then echo "memhog -r $MIB"; else echo "memhog $MIB"; fi; }

# freeze_watch PID OUT: in the background, OUT gets the time (ns since the
# epoch) when PID's freezer cgroup first reads FREEZING or FROZEN ("-" if
# never); returns once it polls. WATCH_PID is the watcher.
freeze_watch() {
	local cg
	cg=$(awk -F: '$2 == "freezer" { print $3 }' "/proc/$1/cgroup" 2>/dev/null)
	perl -MTime::HiRes=time,sleep -e '
		my ($f, $ready, $end) = ($ARGV[0], $ARGV[1], time + 900);
		while (time < $end) {
			open(my $h, "<", $f) or last;
			my $s = <$h> // ""; close $h;
			if ($ready) { open(my $r, ">", $ready); close $r; $ready = "" }
			if ($s =~ /FREEZING|FROZEN/) { printf "%.0f\n", time * 1e9; exit 0 }
			sleep 0.001;
		}
		print "-\n";' "/sys/fs/cgroup/freezer$cg/freezer.state" "$2.ready" >"$2" &
	WATCH_PID=$!
	# polling before the checkpoint starts (perl starts slowly on a busy machine)
	kyb_wait 30 test -e "$2.ready" || log "warning: the freezer watcher of $1 did not start"
}
watch_done() { # OUT: the watcher's time, once it ended
	kill "$WATCH_PID" 2>/dev/null
	wait "$WATCH_PID" 2>/dev/null
	local t
	t=$(head -n 1 "$1" 2>/dev/null)
	echo "${t:--}"
}

# reg_clean: empties the registry's storage (every move pushes its own blobs).
reg_clean() { rm -rf "$REG_DIR/storage/docker"; }
layer_bytes() { # IMAGE: the sum of its layers' sizes in the registry
	"${SKOPEO[@]}" inspect --raw "${REGOPTS[@]}" "docker://$1" | jq '[.layers[].size] | add'
}

# check_goes_on OUT LAST: waits for OUT's first line and checks it is LAST + 1.
check_goes_on() {
	local out=$1 last=$2 first
	kyb_wait 15 test -s "$out" || true
	first=$(head -n 1 "$out" 2>/dev/null)
	[ "$first" = "$((last + 1))" ] || die "the restored process printed '$first' after '$last'"
}

# R[FLOW.W.C.STEP] accumulates one value per run.
declare -A R
rec() { R[$1]+="$2 "; }

# runc_start ROOT ID W: memhog in $BUNDLE with runc (stdio on pipes), its output in $D/ID.out.
runc_start() {
	rm -f "$BUNDLE/config.json"
	KYB_COUNTER_WAIT=120 kyb_runc_counter "$1" "$BUNDLE" "$2" "$D/$2.out" "exec $(memhog_cmd "$3")"
}
runc_pid() { runc --root "$1" state "$2" | jq -r .pid; }

# ---- the three flows ------------------------------------------------------------------

move_kyb() {
	local w=$1 c=$2 i=$3 id=kyb-$1-$2-$3 img=$REG/bench/kyb-$1-$2-$3:v1
	local ra=$D/a/runc/$NS rb=$D/b/runc/$NS t0 t1 t2 t3 t4 tf ck last p tp
	runc_start "$ra" "$id" "$w"
	freeze_watch "$(runc_pid "$ra" "$id")" "$D/$id.freeze"
	rm -f "$BLOB_CACHE"
	t0=$(now_ns)
	ck=$("${A[@]}" checkpoint -q --exit "$NS/$id" | tail -n 1)
	t1=$(now_ns)
	[[ $ck =~ ^[0-9a-f]{32}$ ]] || die "kybernatectl checkpoint failed: $ck"
	tf=$(watch_done "$D/$id.freeze")
	last=$(tail -n 1 "$D/$id.out")
	# push's step lines ("Packing", "Pushing", "Pushed") with the time they came
	"${A[@]}" push "${REGOPTS[@]}" --compression "$c" "$ck" "$img" >/dev/null \
		2> >(while IFS= read -r l; do echo "${EPOCHREALTIME/./} $l"; done >"$D/$id.push") ||
		die "kybernatectl push failed: $(cat "$D/$id.push")"
	t2=$(now_ns)
	p=$("${B[@]}" resolve -q "$img" --namespace "$NS" --container-id "$id") || die "resolve on B failed: $p"
	t3=$(now_ns)
	kyb_runc_restore "$rb" "$BUNDLE" "$id" "$p" "$D/$id.out2" ||
		die "runc restore on B failed: $(tail -n 5 "$D/$id.out2.work/restore.log")"
	t4=$(now_ns)
	kyb_on_exit "runc --root '$rb' delete -f $id >/dev/null 2>&1"
	check_goes_on "$D/$id.out2" "$last"
	sleep 0.2 # the process substitution's last line
	tp=$(awk '/ Pushing / { print $1; exit }' "$D/$id.push")
	rec "kyb.$w.$c.pack" "$(awk -v a="$t1" -v b="${tp:-0}" 'BEGIN { if (b == 0) print "-"; else printf "%.1f", (b * 1000 - a) / 1e6 }')"
	rec "kyb.$w.$c.size" "$(layer_bytes "$img")"
	record kyb "$w" "$c" "$t0" "$t1" "$t2" "$t3" "$t4" "$tf"
	runc --root "$rb" delete -f "$id" >/dev/null 2>&1
	"${A[@]}" delete "$ck" >/dev/null
	"${B[@]}" list -q | xargs -r "${B[@]}" delete >/dev/null
	reg_clean
}

move_podman() {
	local w=$1 c=$2 i=$3 name=pod-$1-$2-$3 img=$REG/bench/pod-$1-$2-$3:v1 t0 t1 t2 t3 t4 tf last
	local comp=()
	[ "$c" = none ] && return 0 # podman 4.3 cannot push a layer uncompressed
	[ "$c" = zstd ] && comp=(--compression-format zstd)
	# shellcheck disable=SC2046 # memhog_cmd's words are the command
	"${PA[@]}" "${PODMAN_RUN[@]}" --name "$name" localhost/memhog:bench $(memhog_cmd "$w") >/dev/null ||
		die "podman run failed"
	kyb_wait_eval 120 "\"\${PA[@]}\" logs $name | grep -qx 2" || die "podman's memhog does not count"
	freeze_watch "$("${PA[@]}" inspect -f '{{.State.Pid}}' "$name")" "$D/$name.freeze"
	rm -f "$BLOB_CACHE"
	t0=$(now_ns)
	"${PA[@]}" container checkpoint --create-image "$img" "$name" >/dev/null || die "podman checkpoint failed"
	t1=$(now_ns)
	tf=$(watch_done "$D/$name.freeze")
	last=$("${PA[@]}" logs "$name" | tail -n 1)
	"${PA[@]}" push -q "${REGOPTS[@]}" "${comp[@]}" "$img" || die "podman push failed"
	t2=$(now_ns)
	"${PB[@]}" pull -q "${REGOPTS[@]}" "$img" >/dev/null || die "podman pull failed"
	t3=$(now_ns)
	"${PB[@]}" container restore "$img" >/dev/null || die "podman restore failed"
	t4=$(now_ns)
	kyb_wait_eval 15 "[ -n \"\$(\"\${PB[@]}\" logs $name)\" ]" || true
	"${PB[@]}" logs "$name" | head -n 1 >"$D/$name.out2"
	check_goes_on "$D/$name.out2" "$last"
	rec "podman.$w.$c.size" "$(layer_bytes "$img")"
	record podman "$w" "$c" "$t0" "$t1" "$t2" "$t3" "$t4" "$tf"
	podman_clean "${PB[@]}"
	podman_clean "${PA[@]}"
	"${PA[@]}" image exists localhost/memhog:bench 2>/dev/null ||
		"${PA[@]}" import -q "$D/rootfs.tar" localhost/memhog:bench >/dev/null
	"${PB[@]}" image exists localhost/memhog:bench 2>/dev/null ||
		"${PB[@]}" import -q "$D/rootfs.tar" localhost/memhog:bench >/dev/null
	reg_clean
}

# raw_layout IMAGES LAYOUT: the CRIU image directory as the one uncompressed
# layer of an OCI image layout, hashed while it is written.
raw_layout() {
	local src=$1 dir=$2 lh ls cfg ch cs mf mh ms
	mkdir -p "$dir/blobs/sha256"
	tar -C "$src" -cf - . | tee "$dir/layer.tar" | sha256sum | cut -d' ' -f1 >"$dir/layer.sha" ||
		return 1
	lh=$(cat "$dir/layer.sha")
	ls=$(stat -c %s "$dir/layer.tar")
	mv "$dir/layer.tar" "$dir/blobs/sha256/$lh"
	rm -f "$dir/layer.sha"
	cfg=$(jq -cn --arg d "sha256:$lh" '{architecture: "amd64", os: "linux",
		rootfs: {type: "layers", diff_ids: [$d]}}')
	ch=$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1) cs=${#cfg}
	printf '%s' "$cfg" >"$dir/blobs/sha256/$ch"
	mf=$(jq -cn --arg c "sha256:$ch" --argjson cs "$cs" --arg l "sha256:$lh" --argjson ls "$ls" '{
		schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
		layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls}]}')
	mh=$(printf '%s' "$mf" | sha256sum | cut -d' ' -f1) ms=${#mf}
	printf '%s' "$mf" >"$dir/blobs/sha256/$mh"
	jq -cn --arg m "sha256:$mh" --argjson ms "$ms" '{schemaVersion: 2, manifests: [{
		mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms}]}' >"$dir/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
}

# raw_unpack LAYOUT DIR: the layer of the layout's one image, untarred into DIR.
raw_unpack() {
	local dir=$1 out=$2 m l t
	m=$(jq -r '.manifests[0].digest' "$dir/index.json")
	l=$(jq -r '.layers[0].digest' "$dir/blobs/sha256/${m#sha256:}")
	t=$(jq -r '.layers[0].mediaType' "$dir/blobs/sha256/${m#sha256:}")
	mkdir -p "$out"
	case $t in
	*+gzip) gzip -dc "$dir/blobs/sha256/${l#sha256:}" | tar -C "$out" -xf - ;;
	*+zstd) zstd -qdc "$dir/blobs/sha256/${l#sha256:}" | tar -C "$out" -xf - ;;
	*) tar -C "$out" -xf "$dir/blobs/sha256/${l#sha256:}" ;;
	esac
}

move_raw() {
	local w=$1 c=$2 i=$3 id=raw-$1-$2-$3 img=$REG/bench/raw-$1-$2-$3:v1
	local ra=$D/raw/a rb=$D/raw/b m=$D/raw/$1-$2-$3 t0 t1 t1b t2 t3 t3b t4 tf last comp
	mkdir -p "$ra" "$rb" "$m"
	runc_start "$ra" "$id" "$w"
	freeze_watch "$(runc_pid "$ra" "$id")" "$D/$id.freeze"
	rm -f "$BLOB_CACHE"
	if [ "$c" = none ]; then comp=(--preserve-digests); else comp=(--dest-compress-format "$c"); fi
	t0=$(now_ns)
	runc --root "$ra" checkpoint --image-path "$m/img-a" --work-path "$m/work-a" "$id" ||
		die "runc checkpoint failed: $(tail -n 5 "$m/work-a/dump.log")"
	t1=$(now_ns)
	tf=$(watch_done "$D/$id.freeze")
	last=$(tail -n 1 "$D/$id.out")
	raw_layout "$m/img-a" "$m/layout-a" || die "packing the raw layout failed"
	t1b=$(now_ns)
	"${SKOPEO[@]}" copy -q --retry-times 3 --authfile "$REG_AUTHFILE" --dest-cert-dir "$REG_CERT_DIR" \
		"${comp[@]}" "oci:$m/layout-a" "docker://$img" || die "skopeo copy to the registry failed"
	t2=$(now_ns)
	"${SKOPEO[@]}" copy -q --retry-times 3 --authfile "$REG_AUTHFILE" --src-cert-dir "$REG_CERT_DIR" \
		--preserve-digests --dest-oci-accept-uncompressed-layers "docker://$img" "oci:$m/layout-b" ||
		die "skopeo copy from the registry failed"
	t3b=$(now_ns)
	raw_unpack "$m/layout-b" "$m/img-b" || die "unpacking the raw layer failed"
	t3=$(now_ns)
	kyb_runc_restore "$rb" "$BUNDLE" "$id" "$m/img-b" "$D/$id.out2" ||
		die "raw runc restore failed: $(tail -n 5 "$D/$id.out2.work/restore.log")"
	t4=$(now_ns)
	kyb_on_exit "runc --root '$rb' delete -f $id >/dev/null 2>&1"
	check_goes_on "$D/$id.out2" "$last"
	rec "raw.$w.$c.pack" "$(ms "$t1" "$t1b")"
	rec "raw.$w.$c.fetch" "$(ms "$t2" "$t3b")"
	rec "raw.$w.$c.size" "$(layer_bytes "$img")"
	record raw "$w" "$c" "$t0" "$t1" "$t2" "$t3" "$t4" "$tf"
	runc --root "$rb" delete -f "$id" >/dev/null 2>&1
	kyb_umount_below "$m"
	rm -rf --one-file-system "$m"
	reg_clean
}

# record FLOW W C T0 T1 T2 T3 T4 TFREEZE: checkpoint, push (with packing),
# pull (with unpacking), restore, total and downtime.
record() {
	local f=$1 w=$2 c=$3 t0=$4 t1=$5 t2=$6 t3=$7 t4=$8 tf=$9 k=$1.$2.$3 dt=-
	[ "$tf" = - ] || dt=$(ms "$tf" "$t4")
	rec "$k.ckpt" "$(ms "$t0" "$t1")"
	rec "$k.push" "$(ms "$t1" "$t2")"
	rec "$k.pull" "$(ms "$t2" "$t3")"
	rec "$k.restore" "$(ms "$t3" "$t4")"
	rec "$k.total" "$(ms "$t0" "$t4")"
	rec "$k.down" "$dt"
	log "round $i $w $c $f: checkpoint $(ms "$t0" "$t1") push $(ms "$t1" "$t2") pull $(ms "$t2" "$t3")" \
		"restore $(ms "$t3" "$t4") total $(ms "$t0" "$t4") downtime $dt ms; load $(cut -d' ' -f1 /proc/loadavg)"
}

# ---- the run ----------------------------------------------------------------------------

START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOADS=()
for ((i = 1; i <= RUNS; i++)); do
	LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")
	for w in "${WLS[@]}"; do
		for c in "${CMPS[@]}"; do
			n=${#FLS[@]}
			for ((j = 0; j < n; j++)); do
				f=${FLS[$(((i - 1 + j) % n))]}
				"move_$f" "$w" "$c" "$i"
			done
		done
	done
done

med() { # KEY: the median of its runs
	# shellcheck disable=SC2086 # one value per word
	printf '%s\n' ${R[$1]:-} | grep -v '^-$' | median
}
echo
echo "memhog $MIB MiB, $RUNS rounds, started $START; $(nproc) CPUs; load average $START_LOAD at the start," \
	"$(cut -d' ' -f1-3 /proc/loadavg) at the end, 1-min load at each round's start: ${LOADS[*]}"
echo "$(runc --version | head -n 1), CRIU $(criu --version | awk '/Version/ { print $2 }'), $(podman --version)," \
	"$(skopeo --version), kernel $(uname -r), tree $(git -C "$KYB_TOP" rev-parse --short HEAD 2>/dev/null)"
echo
echo "| workload | layer | flow | checkpoint [ms] | push [ms] | pull [ms] | restore [ms] | total [ms] | downtime [ms] | layer [MiB] | push [MiB/s] | pull [MiB/s] |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for w in "${WLS[@]}"; do
	for c in "${CMPS[@]}"; do
		for f in "${FLS[@]}"; do
			k=$f.$w.$c
			[ -n "${R[$k.total]:-}" ] || continue
			p=$(med "$k.push") q=$(med "$k.pull")
			printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$w" "$c" "$f" \
				"$(med "$k.ckpt")" "$p" "$q" "$(med "$k.restore")" "$(med "$k.total")" "$(med "$k.down")" \
				"$(mib "$(med "$k.size")")" \
				"$(awk -v m="$MIB" -v t="$p" 'BEGIN { printf "%.0f", m / (t / 1000) }')" \
				"$(awk -v m="$MIB" -v t="$q" 'BEGIN { printf "%.0f", m / (t / 1000) }')"
		done
	done
done
echo
echo "| workload | layer | kyb total / podman total | kyb total / raw total | kyb downtime / raw downtime | kyb pack (in push) [ms] | raw pack [ms] | raw fetch (in pull) [ms] |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
for w in "${WLS[@]}"; do
	for c in "${CMPS[@]}"; do
		printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$w" "$c" \
			"$(ratio "$(med "kyb.$w.$c.total")" "$(med "podman.$w.$c.total")")" \
			"$(ratio "$(med "kyb.$w.$c.total")" "$(med "raw.$w.$c.total")")" \
			"$(ratio "$(med "kyb.$w.$c.down")" "$(med "raw.$w.$c.down")")" \
			"$(med "kyb.$w.$c.pack")" "$(med "raw.$w.$c.pack")" "$(med "raw.$w.$c.fetch")"
	done
done
echo
echo "Every run (in order of rounds):"
for k in $(printf '%s\n' "${!R[@]}" | sort); do
	printf '    %s: %s\n' "$k" "${R[$k]% }"
done
