#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# fuzz/make-corpus.sh [OUTDIR]: regenerates the "real-*" seeds of the fuzz
# targets (default OUTDIR fuzz/corpus) from real runs, as root, with the
# programs `make` built in $BUILD (default build/):
#
#  - kybernated with runc and CRIU checkpoints a busybox container that wrote
#    and deleted files in its rootfs (tests/e2e/ctl-export.sh does the same);
#    kybernatectl talks to it through a recording SOCK_SEQPACKET relay, so
#    every request it sends lands in daemon-request/ as it was on the wire;
#  - the checkpoint's CRIU images (pstree, core-*, inventory, stats-dump)
#    go to criu-image/ behind the selector byte the target reads first;
#  - `kybernatectl export` of it, without the page images and CRIU's log
#    (every other block as written), and its rootfs-diff.tar go to archive/;
#    deleted.files + rootfs-diff.tar to rootfs-diff/;
#  - the container's config.json (whole, its process and its resources),
#    `runc state` of it running and paused, runc's state.json, and the
#    checkpoint's spec.dump and kybernate.json go to json/ behind the
#    selector byte of their parser;
#  - a private containerd 1.6 (tests/lib/common.sh) runs containers on our
#    shim started under `strace -ff -e recvfrom,close -xx`; the bytes the
#    shim received on each ttrpc connection from containerd are cut into
#    frames (ttrpc/real-<method>-N, one request each; real-connection-N, a
#    connection's first 64 KiB), and the stdin/stdout/stderr strings of the
#    Create and Exec requests in them (FIFO paths, file://, binary:// with
#    a query) go to stdio-uri/.
#
# Seeds without the "real-" prefix are hand-made and left alone. The helper
# code is fuzz/corpus-tool.py.
set -euo pipefail
KYB_TEST=make-corpus
# shellcheck source-path=SCRIPTDIR source=../tests/lib/common.sh
. "$(dirname "$0")/../tests/lib/common.sh"

require_root
require_cmd runc criu busybox jq tar strace python3 containerd ctr
require_build kybernated kybernatectl containerd-shim-kybernate-v1

OUT=${1:-$KYB_TOP/fuzz/corpus}
TOOL=$KYB_TOP/fuzz/corpus-tool.py
REAL_BUILD=$BUILD
for t in archive criu-image daemon-request json rootfs-diff stdio-uri ttrpc; do
	mkdir -p "$OUT/$t"
	rm -f "$OUT/$t"/real-*
done

# ---- kybernated behind a recording relay ----------------------------------------

N=make-corpus
NS=$N-ns
ID=$N-c
RUNC_BASE=$KYB_TMP/runc
RUNC_ROOT=$RUNC_BASE/$NS
SOCK=$KYB_TMP/kybernated.sock
RELAY=$KYB_TMP/relay.sock
REC=$KYB_TMP/requests
mkdir -p "$RUNC_ROOT" "$KYB_TMP/store" "$REC"
"$BUILD/kybernated" --store "$KYB_TMP/store" --socket "$SOCK" --runc-root-base "$RUNC_BASE" \
	--criu "$(command -v criu)" >"$KYB_TMP/kybernated.log" 2>&1 &
daemon_pid=$!
kyb_on_exit "kill $daemon_pid 2>/dev/null; wait $daemon_pid 2>/dev/null"
kyb_wait 10 "$BUILD/kybernatectl" --socket "$SOCK" status || die "kybernated did not come up"
python3 "$TOOL" proxy "$RELAY" "$SOCK" "$REC" &
relay_pid=$!
kyb_on_exit "kill $relay_pid 2>/dev/null"
kyb_wait 10 test -S "$RELAY" || die "the relay did not come up"

# kctl LABEL ARGS...: kybernatectl through the relay; the requests it sent
# become daemon-request/real-LABEL[-N].
kctl() {
	local label=$1 f k=0 rc=0
	shift
	"$BUILD/kybernatectl" --socket "$RELAY" "$@" >"$KYB_TMP/kctl.out" 2>"$KYB_TMP/kctl.err" || rc=$?
	sleep 0.2
	for f in "$REC"/*; do
		[ -e "$f" ] || continue
		k=$((k + 1))
		if [ "$k" -eq 1 ]; then mv "$f" "$OUT/daemon-request/real-$label"; else mv "$f" "$OUT/daemon-request/real-$label-$k"; fi
	done
	return $rc
}

# A busybox counter that wrote a file and deleted one in its rootfs.
# On an overlay, as containerd's snapshotter gives it: the daemon captures the
# upper directory.
bundle=$KYB_TMP/bundle
kyb_rootfs_build "$KYB_TMP/lower"
mkdir -p "$KYB_TMP/upper" "$KYB_TMP/work" "$bundle/rootfs"
mount -t overlay overlay -o "lowerdir=$KYB_TMP/lower,upperdir=$KYB_TMP/upper,workdir=$KYB_TMP/work" \
	"$bundle/rootfs" || die "mount -t overlay failed"
kyb_on_exit "umount -l '$bundle/rootfs' 2>/dev/null"
# shellcheck disable=SC2016 # expanded by the container's sh
kyb_runc_counter "$RUNC_ROOT" "$bundle" "$ID" "$KYB_TMP/out.log" \
	'echo state >/root/state; ln -s state /root/link; mkdir -p /data/a; echo x >/data/a/f; rm /etc/hostname; i=0; while true; do echo $i; i=$((i+1)); sleep 1; done'

# ---- JSON documents (fuzz-json: selector byte, then the document) ---------------

# jseed SELECTOR NAME FILE...: json/real-NAME, the byte SELECTOR (decimal)
# then the files' bytes.
jseed() {
	local sel=$1 name=$2
	shift 2
	{
		printf %b "\\0$(printf %03o "$sel")"
		cat "$@"
	} >"$OUT/json/real-$name"
}
runc --root "$RUNC_ROOT" state "$ID" >"$KYB_TMP/runc-state.json" || die "runc state failed"
runc --root "$RUNC_ROOT" pause "$ID" || die "runc pause failed"
runc --root "$RUNC_ROOT" state "$ID" >"$KYB_TMP/runc-state-paused.json" || die "runc state failed"
runc --root "$RUNC_ROOT" resume "$ID" || die "runc resume failed"
jseed 0 config.json "$bundle/config.json"
jq .process "$bundle/config.json" >"$KYB_TMP/process.json"
jseed 1 process.json "$KYB_TMP/process.json"
jseed 129 process-terminal.json "$KYB_TMP/process.json"
jq .linux.resources "$bundle/config.json" >"$KYB_TMP/resources.json"
jseed 1 resources.json "$KYB_TMP/resources.json"
jseed 5 runc-state "$KYB_TMP/runc-state.json"
jseed 5 runc-state-paused "$KYB_TMP/runc-state-paused.json"
jseed 5 state.json "$RUNC_ROOT/$ID/state.json"
jseed 6 config.json-volumes "$bundle/config.json"
# cri_scan: state.json with its bundle label as "@B", a NUL, config.json.
sed "s|\"bundle=$bundle\"|\"bundle=@B\"|" "$RUNC_ROOT/$ID/state.json" >"$KYB_TMP/state-at-b.json"
printf '\0' >"$KYB_TMP/nul"
jseed 7 cri-scan "$KYB_TMP/state-at-b.json" "$KYB_TMP/nul" "$bundle/config.json"

kctl status status
kctl checkpoint checkpoint "$NS/$ID" --name "$N-first" || die "checkpoint failed: $(cat "$KYB_TMP/kctl.err")"
CKPT=$(tail -n 1 "$KYB_TMP/kctl.out")
kctl checkpoint-options checkpoint --namespace "$NS" "$ID" --pin --file-locks --image-ref docker.io/library/busybox:1 --json || true
kctl list list
kctl list-json --json list
kctl list-filter list --namespace "$NS" --container-id "$ID" --state ready --limit 5
kctl inspect inspect "$N-first"
kctl inspect-prefix inspect "${CKPT:0:8}" --verify
kctl inspect-missing inspect no-such-checkpoint || true
kctl pin pin "$N-first"
kctl unpin unpin "$N-first"
kctl resolve resolve "$N-first" --namespace "$NS" --container-id "$ID" -q || true
kctl export export "$N-first" -o "$KYB_TMP/export.tar" || die "export failed: $(cat "$KYB_TMP/kctl.err")"
kctl import import "$KYB_TMP/export.tar" --name "$N-imported" || die "import failed: $(cat "$KYB_TMP/kctl.err")"
kctl prune-dry prune --keep 1 --older-than 1s --dry-run
kctl delete delete "$N-imported"
kctl prune prune --keep 5

# ---- CRIU images, rootfs diff, archive ------------------------------------------

dir=$(dirname "$(find "$KYB_TMP/store" -path "*$CKPT*" -name rootfs-diff.tar | head -n 1)")
img=$(dirname "$(find "$KYB_TMP/store" -path "*$CKPT*" -name pstree.img | head -n 1)")
if [ ! -f "$dir/rootfs-diff.tar" ] || [ ! -f "$img/pstree.img" ]; then
	die "no rootfs-diff.tar or pstree.img for $CKPT"
fi
python3 "$TOOL" criu "$img" "$OUT/criu-image"
jseed 2 spec.dump "$dir/spec.dump"
jseed 4 kybernate.json "$dir/kybernate.json"
jseed 8 kybernate.json-rewrite "$dir/kybernate.json"
python3 "$TOOL" rootfs-diff "$dir" "$OUT/rootfs-diff/real-checkpoint"
cp "$dir/rootfs-diff.tar" "$OUT/archive/real-rootfs-diff.tar"
[ -z "${KEEP_EXPORT:-}" ] || cp "$KYB_TMP/export.tar" "$KEEP_EXPORT"
python3 "$TOOL" tar-drop "$KYB_TMP/export.tar" "$OUT/archive/real-export-no-pages.tar" \
	'(^|/)pages-[0-9]+\.img$' '^dump\.log$'
tar -tf "$OUT/archive/real-export-no-pages.tar" >/dev/null || die "the trimmed export is not a tar"

# ---- containerd and the shim under strace -------------------------------------------

TRACE=$KYB_TMP/trace
mkdir -p "$TRACE" "$KYB_TMP/bin"
for f in kybernated kybernatectl; do ln -s "$REAL_BUILD/$f" "$KYB_TMP/bin/$f"; done
# The wrapper runs the real "start", then attaches strace to the server it
# launched before handing containerd the address (strace must not hold the
# pipe containerd reads start's output from, so it cannot wrap start itself).
cat >"$KYB_TMP/shim-wrapper" <<'SH'
#!/bin/bash
real=@REAL@
case " $* " in *" start "*) ;; *) exec "$real" "$@" ;; esac
ns= id=
a=("$@")
for ((i = 0; i < ${#a[@]}; i++)); do
	case ${a[i]} in -namespace) ns=${a[i + 1]} ;; -id) id=${a[i + 1]} ;; esac
done
out=$("$real" "$@") || {
	printf '%s' "$out"
	exit 1
}
for p in /proc/[0-9]*; do
	cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
	case $cmd in "$real -namespace $ns -id $id -address "*)
		setsid strace -ff -qq -o @TRACE@/shim -e trace=recvfrom,close -xx -s 1048576 \
			-p "${p#/proc/}" </dev/null >/dev/null 2>&1 &
		sleep 0.5
		;;
	esac
done 2>/dev/null
printf '%s' "$out"
SH
sed -e "s|@REAL@|$REAL_BUILD/containerd-shim-kybernate-v1|" -e "s|@TRACE@|$TRACE|" "$KYB_TMP/shim-wrapper" \
	>"$KYB_TMP/bin/containerd-shim-kybernate-v1"
chmod +x "$KYB_TMP/bin/containerd-shim-kybernate-v1"
BUILD=$KYB_TMP/bin
ctd_start "$N"
kyb_image_build
kyb_image_import "$KYB_NS" "$KYB_BUSYBOX_TAR"
RT=$KYB_RUNTIME

ctr_ run --rm --runtime "$RT" "$KYB_BUSYBOX" "$N-fifo" sh -c 'echo out; echo err >&2' >"$KYB_TMP/ctr.out" 2>&1 ||
	die "ctr run failed: $(cat "$KYB_TMP/ctr.out")"
echo data | ctr_ run --rm --runtime "$RT" "$KYB_BUSYBOX" "$N-stdin" cat >/dev/null 2>&1 || true
ctr_ run --rm --runtime "$RT" --log-uri "file://$KYB_TMP/logs/out.log" "$KYB_BUSYBOX" "$N-file" echo hi \
	>/dev/null 2>&1 || true
cat >"$KYB_TMP/logger.sh" <<'SH'
#!/bin/sh
printf R >&5
exec 5>&-
/bin/cat <&4 >/dev/null &
/bin/cat <&3 >/dev/null
wait
SH
chmod +x "$KYB_TMP/logger.sh"
ctr_ run --rm --runtime "$RT" --log-uri "binary://$KYB_TMP/logger.sh?out=$KYB_TMP/bin-log&level=debug" \
	"$KYB_BUSYBOX" "$N-binary" echo hi >/dev/null 2>&1 || true
ctr_ run -d --runtime "$RT" "$KYB_BUSYBOX" "$N-long" sleep 1000 >/dev/null 2>&1 || die "ctr run -d failed"
ctr_ task exec --exec-id ex1 "$N-long" sh -c 'echo in-exec' >/dev/null 2>&1 || true
ctr_ task ps "$N-long" >/dev/null 2>&1 || true
ctr_ task pause "$N-long" >/dev/null 2>&1 || true
ctr_ task resume "$N-long" >/dev/null 2>&1 || true
ctr_ task metrics "$N-long" >/dev/null 2>&1 || true
ctr_ task kill -s KILL "$N-long" >/dev/null 2>&1 || true
kyb_wait 10 sh -c "[ \"\$($CTD_CTR --address $CTD_ADDR -n $KYB_NS task ls | awk '\$1 == \"$N-long\" { print \$3 }')\" = STOPPED ]" || true
ctr_ task delete "$N-long" >/dev/null 2>&1 || true
ctr_ container delete "$N-long" >/dev/null 2>&1 || true
ctd_stop "$N"
sleep 1
python3 "$TOOL" ttrpc "$TRACE" "$OUT/ttrpc" "$OUT/stdio-uri"

chmod 644 "$OUT"/*/real-*
du -sh "$OUT"/*
