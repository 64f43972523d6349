#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Checkpoint images (issue 10): what each layer compression costs and saves.
#
#   BUILD=$PWD/build bench/image-bench.sh [--mib N] [--runs N]
#
# bench/memhog.c holding --mib (default 256) MiB of touched memory runs with
# runc; kybernated A checkpoints it once; then, --runs times (default 3) per
# compression (none, gzip, zstd), `kybernatectl push` to a private registry on
# loopback (tests/lib/registry.sh: TLS, htpasswd) into a repository of its
# own, with skopeo's blob info cache emptied first so the layer is really
# compressed and uploaded, and `kybernatectl pull` of that image by digest
# into kybernated B. Prints medians: push and pull wall time, layer size,
# throughput (checkpoint bytes per second of push + pull). Nothing is written
# to docs/: the numbers go there by hand, with the command.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/common.sh
. "$(dirname "$0")/../tests/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../tests/lib/registry.sh
. "$(dirname "$0")/../tests/lib/registry.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

MIB=256
RUNS=3
while [ $# -gt 0 ]; do
	case $1 in
	--mib) MIB=$2 && shift 2 ;;
	--runs) RUNS=$2 && shift 2 ;;
	*) die "usage: bench/image-bench.sh [--mib N] [--runs N]" ;;
	esac
done
require_root
require_cmd runc criu jq skopeo zstd
require_build kybernated kybernatectl
kyb_registry_start

NS=imgbench
D=$KYB_TMP
for n in a b; do
	mkdir -p "$D/$n/store" "$D/$n/runc/$NS"
	"$BUILD/kybernated" --store "$D/$n/store" --socket "$D/$n/sock" --runc-root-base "$D/$n/runc" \
		>"$D/$n/log" 2>&1 &
	kyb_on_exit "kill $! 2>/dev/null; wait $! 2>/dev/null"
	kyb_wait 10 "$BUILD/kybernatectl" --socket "$D/$n/sock" status >/dev/null || die "kybernated $n did not start"
done
A=("$BUILD/kybernatectl" --socket "$D/a/sock")
B=("$BUILD/kybernatectl" --socket "$D/b/sock")
REGOPTS=(--authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR")

mkdir -p "$D/bundle/rootfs"
kyb_rootfs_build "$D/bundle/rootfs"
cc -static -O2 -o "$D/bundle/rootfs/bin/memhog" "$KYB_TOP/bench/memhog.c" || die "cc -static bench/memhog.c failed"
kyb_runc_counter "$D/a/runc/$NS" "$D/bundle" memhog "$D/out.log" "exec memhog $MIB"
CK=$("${A[@]}" checkpoint -q "$NS/memhog" | tail -n 1)
[[ $CK =~ ^[0-9a-f]{32}$ ]] || die "checkpoint failed: $CK"
BYTES=$("${A[@]}" inspect "$CK" --json | jq -r .checkpoint.size_bytes)
echo "checkpoint of memhog $MIB MiB: $(mib "$BYTES") MiB; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A T
for ((i = 1; i <= RUNS; i++)); do
	for c in none gzip zstd; do
		img=$REG/bench/$c-$i:v1
		rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb
		t0=$(now_ns)
		d=$("${A[@]}" push -q "${REGOPTS[@]}" --compression "$c" "$CK" "$img") || die "push $c failed"
		t1=$(now_ns)
		id=$("${B[@]}" pull -q "${REGOPTS[@]}" "${img%:v1}@$d") || die "pull $c failed"
		t2=$(now_ns)
		"${B[@]}" delete "$id" >/dev/null
		raw=$(skopeo --insecure-policy inspect --raw --authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR" "docker://$img")
		T[$c.push]+="$(ms "$t0" "$t1") " T[$c.pull]+="$(ms "$t1" "$t2") "
		T[$c.size]=$(jq -r '.layers[0].size' <<<"$raw")
	done
done
printf '| layer | size (MiB) | push (ms) | pull (ms) | MiB/s (push + pull) |\n|---|---:|---:|---:|---:|\n'
for c in none gzip zstd; do
	# shellcheck disable=SC2086
	p=$(printf '%s\n' ${T[$c.push]} | median) q=$(printf '%s\n' ${T[$c.pull]} | median)
	printf '| %s | %s | %s | %s | %s |\n' "$c" "$(mib "${T[$c.size]}")" "$p" "$q" \
		"$(awk -v b="$BYTES" -v t="$p" -v u="$q" 'BEGIN { printf "%.0f", b / 1048576 / ((t + u) / 1000) }')"
done
