#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Checkpoint images through a real registry (issue 10), two "nodes" on one
# machine: kybernated A and kybernated B with stores of their own, a private
# registry (docker-registry, TLS from a test CA, htpasswd auth). A busybox
# counter run with runc is checkpointed on A (--exit) and pushed; skopeo
# inspects and copies the image and checkpointctl reads its layer; B, whose
# store is empty, pulls it (by tag, then by digest, each compression) and the
# counter restored with runc from B's copy goes on. Refusals: bad credentials,
# an unknown CA, a blob corrupted in the registry, an image that is no
# checkpoint, a layer with a path out of the archive; none leaves a row or a
# file in B's store.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/registry.sh
. "$(dirname "$0")/../lib/registry.sh"

require_root
require_cmd runc criu busybox jq tar zstd
require_build kybernated kybernatectl
kyb_registry_start

N=reg-pp
NS=$N-ns
ID=$N-counter
CRIU=$(command -v criu)
REGOPTS=(--authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR")
SKOPEO=(skopeo --insecure-policy)

# start_node X: kybernated with a store, socket and runc root base of its own.
start_node() {
	local d=$KYB_TMP/node-$1
	mkdir -p "$d/store" "$d/runc/$NS"
	"$BUILD/kybernated" --store "$d/store" --socket "$d/sock" --runc-root-base "$d/runc" \
		--criu "$CRIU" >"$d/kybernated.log" 2>&1 &
	local pid=$!
	kyb_on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null; sed 's/^/  kybernated $1: /' '$d/kybernated.log' | tail -n 15"
	kyb_wait 10 "$BUILD/kybernatectl" --socket "$d/sock" status || die "kybernated $1 did not come up"
}
start_node a
start_node b
A=("$BUILD/kybernatectl" --socket "$KYB_TMP/node-a/sock")
B=("$BUILD/kybernatectl" --socket "$KYB_TMP/node-b/sock")
RUNC_A=$KYB_TMP/node-a/runc/$NS
RUNC_B=$KYB_TMP/node-b/runc/$NS

# ---- node A: a counter, checkpointed with --exit ------------------------------

bundle=$KYB_TMP/bundle
mkdir -p "$bundle/rootfs"
kyb_rootfs_build "$bundle/rootfs"
kyb_runc_counter "$RUNC_A" "$bundle" "$ID" "$KYB_TMP/out.log"
kyb_on_exit "runc --root '$RUNC_B' delete -f $ID >/dev/null 2>&1"
CKPT=$("${A[@]}" checkpoint -q --exit "$NS/$ID" 2>&1 | tail -n 1)
[[ $CKPT =~ ^[0-9a-f]{32}$ ]] || die "checkpoint on node A failed: $CKPT"
LAST=$(tail -n 1 "$KYB_TMP/out.log")
SUM=$("${A[@]}" inspect "$CKPT" --json | jq -r .checkpoint.checksum)

# ---- push ------------------------------------------------------------------------

IMG=$REG/ckpt/counter
rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb
out=$("${A[@]}" push "${REGOPTS[@]}" "$CKPT" "$IMG:v1" 2>"$KYB_TMP/push.err") ||
	fail "push to the registry" "$(cat "$KYB_TMP/push.err")"
expect_match "push prints the image digest" '^sha256:[0-9a-f]{64}$' "$out"
DIGEST=$out
expect_contains "push says what it does" "$(cat "$KYB_TMP/push.err")" "Pushing $CKPT to $IMG:v1"
# Not a terminal: exactly one line per step, each with its bytes and rate,
# no redrawn status line.
BYTES='[0-9.]+ (B|KiB|MiB|GiB) in [0-9.]+ s \([0-9.]+ MiB/s\)'
mapfile -t lines <"$KYB_TMP/push.err"
expect_eq "push, not on a terminal: one line per step" 3 "${#lines[@]}"
expect_match "push: the packing line has bytes and rate" "^Packing checkpoint $CKPT: $BYTES\$" "${lines[0]-}"
expect_match "push: the upload line has bytes and rate" \
	"^Pushing $CKPT to $IMG:v1 \(layer zstd\): $BYTES\$" "${lines[1]-}"
expect_match "push: the last line has the digest" "^Pushed $IMG:v1 \($DIGEST\) in [0-9.]+ s\$" "${lines[2]-}"
expect_eq "push, not on a terminal: no redrawn line" "" "$(tr -dc '\r\033' <"$KYB_TMP/push.err")"
insp=$("${SKOPEO[@]}" inspect --authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR" "docker://$IMG:v1")
expect_eq "skopeo inspect: the digest push printed" "$DIGEST" "$(jq -r .Digest <<<"$insp")"
raw=$("${SKOPEO[@]}" inspect --raw --authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR" "docker://$IMG:v1")
expect_eq "manifest digest is the sha256 of its bytes" "$DIGEST" "sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)"
expect_eq "annotation: our checkpoint id" "$CKPT" "$(jq -r '.annotations["io.kybernate.checkpoint.id"]' <<<"$raw")"
expect_eq "annotation: CRI-O's checkpoint name" "$ID" \
	"$(jq -r '.annotations["io.kubernetes.cri-o.annotations.checkpoint.name"]' <<<"$raw")"
expect_eq "annotation: containerd's checkpoint container name" "$ID" \
	"$(jq -r '.annotations["org.criu.checkpoint.container.name"]' <<<"$raw")"
expect_eq "annotation: the checksum" "$SUM" "$(jq -r '.annotations["io.kybernate.checkpoint.checksum"]' <<<"$raw")"
expect_eq "default layer compression: zstd" "application/vnd.oci.image.layer.v1.tar+zstd" \
	"$(jq -r '.layers[0].mediaType' <<<"$raw")"
# On a terminal (a pseudo-terminal from script(1)): each step's status line
# is drawn and redrawn in place (\r and erase line), then ends with its totals.
cmd=$(printf '%q ' "${A[@]}" push "${REGOPTS[@]}" "$CKPT" "$IMG-tty:v1")
if TERM=xterm script -qec "$cmd" /dev/null >"$KYB_TMP/push-tty.out" 2>&1 </dev/null; then
	tty_out=$(cat "$KYB_TMP/push-tty.out")
	expect_contains "push on a terminal: a status line redrawn in place" "$tty_out" $'\r\033[K'"Packing checkpoint $CKPT"
	expect_match "push on a terminal: the upload step ends with its totals" \
		$'\r\033\\[K'"Pushing $CKPT to $IMG-tty:v1 \\(layer zstd\\): $BYTES"$'\r?\n' "$tty_out"
	expect_match "push on a terminal: the digest on stdout" $'\nsha256:[0-9a-f]{64}\r?$' "$tty_out"
else
	fail "push on a terminal" "$(cat "$KYB_TMP/push-tty.out")"
fi

# Each compression in a repository of its own. skopeo (containers/image)
# reuses a layer the registry has already, in whatever compression its blob
# info cache knows it by (documented for push): to see each compression
# written, that cache is emptied before each push.
BLOB_CACHE=/var/lib/containers/cache/blob-info-cache-v1.boltdb
for c in gzip none; do
	rm -f "$BLOB_CACHE"
	"${A[@]}" push -q "${REGOPTS[@]}" --compression "$c" "$CKPT" "$IMG-$c:v1" >"$KYB_TMP/push-$c.out" 2>"$KYB_TMP/push-$c.err" ||
		fail "push --compression $c" "$(cat "$KYB_TMP/push-$c.err")"
	expect_eq "push -q --compression $c: nothing on stderr" "" "$(cat "$KYB_TMP/push-$c.err")"
	expect_match "push -q --compression $c: the digest on stdout" '^sha256:[0-9a-f]{64}$' "$(cat "$KYB_TMP/push-$c.out")"
	raw=$("${SKOPEO[@]}" inspect --raw --authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR" "docker://$IMG-$c:v1")
	want=application/vnd.oci.image.layer.v1.tar
	[ "$c" = gzip ] && want=$want+gzip
	expect_eq "push --compression $c: layer media type" "$want" "$(jq -r '.layers[0].mediaType' <<<"$raw")"
done


# skopeo copies the image on; checkpointctl reads the uncompressed layer.
expect_ok "skopeo copy of the image to a directory" "${SKOPEO[@]}" copy --authfile "$REG_AUTHFILE" \
	--src-cert-dir "$REG_CERT_DIR" "docker://$IMG-none:v1" "dir:$KYB_TMP/copied"
layer=$(jq -r '.layers[0].digest' "$KYB_TMP/copied/manifest.json")
if command -v checkpointctl >/dev/null; then
	cp "$KYB_TMP/copied/${layer#sha256:}" "$KYB_TMP/layer.tar"
	expect_contains "checkpointctl show reads the layer" "$(checkpointctl show "$KYB_TMP/layer.tar" 2>&1)" "${ID:0:12}"
else
	skip "checkpointctl show reads the layer" "checkpointctl not installed"
fi

# ---- node B: pull, restore ----------------------------------------------------------

rows_b() { "${B[@]}" list --json | jq length; }
store_clean() { # no staging leftovers and one directory per row in B's store
	local s=$KYB_TMP/node-b/store
	[ -z "$(ls -A "$s/staging" 2>/dev/null)" ] &&
		[ "$(ls "$s/checkpoints" 2>/dev/null | wc -l)" = "$(rows_b)" ]
}
expect_eq "node B starts empty" 0 "$(rows_b)"
PID_B=$("${B[@]}" pull "${REGOPTS[@]}" --name pulled "$IMG:v1" 2>"$KYB_TMP/pull.err") ||
	fail "pull by tag on node B" "$(cat "$KYB_TMP/pull.err")"
expect_match "pull prints the new checkpoint id" '^[0-9a-f]{32}$' "$PID_B"
expect_contains "pull resolves the tag to the digest" "$(cat "$KYB_TMP/pull.err")" "$IMG@$DIGEST"
mapfile -t lines <"$KYB_TMP/pull.err"
expect_eq "pull, not on a terminal: one line per step" 5 "${#lines[@]}"
expect_eq "pull: the resolve line has the digest" "Resolving $IMG:v1: $DIGEST" "${lines[0]% in *}"
expect_match "pull: the fetch line has bytes and rate" "^Fetching $IMG@$DIGEST: $BYTES\$" "${lines[1]-}"
expect_match "pull: the verify line has the checkpoint, bytes and rate" \
	"^Verifying the digests of $IMG@$DIGEST: checkpoint $CKPT, $BYTES\$" "${lines[2]-}"
expect_match "pull: the unpack line has bytes and rate" \
	"^Unpacking $IMG@$DIGEST into the catalog: $BYTES\$" "${lines[3]-}"
expect_match "pull: the last line" '^Pulled in [0-9.]+ s$' "${lines[4]-}"
j=$("${B[@]}" inspect pulled --json)
expect_eq "the pulled copy has node A's checksum" "$SUM" "$(jq -r .checkpoint.checksum <<<"$j")"
expect_eq "the pulled copy keeps the container's identity" "$NS $ID" \
	"$(jq -r '"\(.checkpoint.containerd_namespace) \(.checkpoint.container_id)"' <<<"$j")"
expect_contains "the pulled copy verifies" "$("${B[@]}" inspect pulled --verify)" "checksum matches"
for c in none gzip; do
	d=$("${SKOPEO[@]}" inspect --authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR" "docker://$IMG-$c:v1" | jq -r .Digest)
	out=$("${B[@]}" pull -q "${REGOPTS[@]}" "$IMG-$c@$d" 2>"$KYB_TMP/pull-$c.err") ||
		fail "pull by digest, layer $c" "$(cat "$KYB_TMP/pull-$c.err")"
	expect_eq "pull -q, layer $c: nothing on stderr" "" "$(cat "$KYB_TMP/pull-$c.err")"
	expect_eq "pull by digest, layer $c: same checksum" "$SUM" "$("${B[@]}" inspect "$out" --json | jq -r .checkpoint.checksum)"
done

p=$("${B[@]}" resolve pulled --namespace "$NS" --container-id "$ID" -q 2>&1) || fail "resolve on node B" "$p"
rc=0
kyb_runc_restore "$RUNC_B" "$bundle" "$ID" "$p" "$KYB_TMP/out2.log" || rc=$?
if [ "$rc" -eq 0 ]; then
	pass "runc restore on node B from the pulled copy"
	kyb_wait 10 test -s "$KYB_TMP/out2.log" || true
	expect_eq "the counter goes on where node A stopped" "$((LAST + 1))" "$(head -n 1 "$KYB_TMP/out2.log")"
else
	fail "runc restore on node B from the pulled copy" "$(tail -n 5 "$KYB_TMP/out2.log.work/restore.log" 2>/dev/null)"
fi

# ---- refusals: nothing left behind -------------------------------------------------

# refused NAME WANT CMD...: CMD fails, says WANT, and B's store is as before.
refused() {
	local name=$1 want=$2 out rc=0 before
	shift 2
	before=$(rows_b)
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		fail "$name: refused" "$out"
		return
	fi
	expect_contains "$name: refused, saying why" "$out" "$want"
	expect_eq "$name: no row added" "$before" "$(rows_b)"
	store_clean && pass "$name: nothing left in the store" || fail "$name: nothing left in the store"
}
bad_auth=$KYB_TMP/bad-auth.json
jq --arg r "$REG" '.auths[$r].auth = ("'"$REG_USER"':wrong" | @base64)' "$REG_AUTHFILE" >"$bad_auth"
refused "wrong password" "unauthorized" "${B[@]}" pull --authfile "$bad_auth" --cert-dir "$REG_CERT_DIR" "$IMG:v1"
echo "{\"auths\": {}}" >"$KYB_TMP/no-auth.json"
refused "no credentials" "unauthorized" "${B[@]}" pull --authfile "$KYB_TMP/no-auth.json" --cert-dir "$REG_CERT_DIR" "$IMG:v1"
refused "unknown CA" "certificate" "${B[@]}" pull --authfile "$REG_AUTHFILE" "$IMG:v1"
refused "push with a wrong password" "unauthorized" "${A[@]}" push --authfile "$bad_auth" \
	--cert-dir "$REG_CERT_DIR" "$CKPT" "$IMG:v2"
refused "an image name that is no registry reference" "not an image reference" "${B[@]}" pull ns/pod/ctr

# An image that is no checkpoint (the busybox test image).
kyb_oci_layout "$KYB_TMP/busybox-layout"
"${SKOPEO[@]}" copy -q --authfile "$REG_AUTHFILE" --dest-cert-dir "$REG_CERT_DIR" \
	"oci:$KYB_TMP/busybox-layout" "docker://$REG/plain/busybox:v1"
refused "not a checkpoint image" "not a checkpoint image" "${B[@]}" pull "${REGOPTS[@]}" "$REG/plain/busybox:v1"

# A layer with a path out of the archive, annotated as a checkpoint.
mkdir -p "$KYB_TMP/evil"
echo x >"$KYB_TMP/evil/f"
tar -C "$KYB_TMP/evil" -cf "$KYB_TMP/evil.tar" --transform 's,^f$,../../escape,' f
kyb_oci_layout "$KYB_TMP/evil-layout" "$KYB_TMP/evil.tar"
m=$(jq -r '.manifests[0].digest' "$KYB_TMP/evil-layout/index.json")
"${SKOPEO[@]}" copy -q --authfile "$REG_AUTHFILE" --dest-cert-dir "$REG_CERT_DIR" --preserve-digests \
	"oci:$KYB_TMP/evil-layout" "docker://$REG/evil/img:v1" 2>/dev/null || true
raw=$("${SKOPEO[@]}" inspect --raw --authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR" "docker://$REG/evil/img:v1" 2>/dev/null || true)
if [ -n "$raw" ] && [ "$(jq -r '.annotations["io.kubernetes.cri-o.annotations.checkpoint.name"] // empty' <<<"$raw")" = "" ]; then
	# Add the detection annotation: rewrite the manifest in the layout and push again.
	mf=$KYB_TMP/evil-layout/blobs/sha256/${m#sha256:}
	jq -c '.annotations = {"io.kubernetes.cri-o.annotations.checkpoint.name": "evil"}' "$mf" >"$KYB_TMP/evil-manifest.json"
	nd=$(sha256sum "$KYB_TMP/evil-manifest.json" | cut -d' ' -f1)
	cp "$KYB_TMP/evil-manifest.json" "$KYB_TMP/evil-layout/blobs/sha256/$nd"
	jq --arg d "sha256:$nd" --argjson s "$(stat -c %s "$KYB_TMP/evil-manifest.json")" \
		'.manifests[0].digest = $d | .manifests[0].size = $s' "$KYB_TMP/evil-layout/index.json" >"$KYB_TMP/evil-index.json"
	mv "$KYB_TMP/evil-index.json" "$KYB_TMP/evil-layout/index.json"
	"${SKOPEO[@]}" copy -q --authfile "$REG_AUTHFILE" --dest-cert-dir "$REG_CERT_DIR" --preserve-digests \
		"oci:$KYB_TMP/evil-layout" "docker://$REG/evil/img:v1"
fi
refused "a layer with a path out of the archive" "leaves the archive" "${B[@]}" pull "${REGOPTS[@]}" "$REG/evil/img:v1"
[ ! -e "$KYB_TMP/node-b/escape" ] && [ ! -e "$KYB_TMP/node-b/store/escape" ] &&
	pass "nothing was written outside the staging directory" || fail "nothing was written outside the staging directory"

# A tag moved between the check and the use: the pull resolves the tag once
# and fetches that digest. A skopeo wrapper first in PATH moves the tag to the
# busybox image right after the resolve (skopeo inspect) returns.
"${SKOPEO[@]}" copy -q --authfile "$REG_AUTHFILE" --src-cert-dir "$REG_CERT_DIR" --dest-cert-dir "$REG_CERT_DIR" \
	--preserve-digests "docker://$IMG:v1" "docker://$IMG:moving"
mkdir -p "$KYB_TMP/bin"
cat >"$KYB_TMP/bin/skopeo" <<EOF
#!/bin/sh
case " \$* " in
*" inspect "*)
	out=\$(/usr/bin/skopeo "\$@") || exit
	/usr/bin/skopeo --insecure-policy copy -q --authfile "$REG_AUTHFILE" --src-cert-dir "$REG_CERT_DIR" \\
		--dest-cert-dir "$REG_CERT_DIR" docker://$REG/plain/busybox:v1 docker://$IMG:moving >/dev/null 2>&1 || exit
	printf '%s' "\$out" ;;
*) exec /usr/bin/skopeo "\$@" ;;
esac
EOF
chmod +x "$KYB_TMP/bin/skopeo"
out=$(PATH="$KYB_TMP/bin:$PATH" "${B[@]}" pull -q "${REGOPTS[@]}" "$IMG:moving" 2>&1) ||
	fail "a tag moved after the resolve: the pinned digest is pulled" "$out"
expect_eq "a tag moved after the resolve: the pulled copy is the checkpoint" "$SUM" \
	"$("${B[@]}" inspect "$(tail -n 1 <<<"$out")" --json | jq -r .checkpoint.checksum)"
expect_ne "... and the tag did move" "$DIGEST" \
	"$("${SKOPEO[@]}" inspect --authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR" "docker://$IMG:moving" | jq -r .Digest)"

# A blob corrupted in the registry's storage: the digest check catches it.
layer=$(jq -r '.layers[0].digest' <<<"$("${SKOPEO[@]}" inspect --raw --authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR" "docker://$IMG-none:v1")")
hex=${layer#sha256:}
data=$REG_DIR/storage/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data
if [ -f "$data" ]; then
	printf 'X' | dd of="$data" bs=1 seek=1000 conv=notrunc 2>/dev/null
	refused "a corrupted layer blob" "Digest did not match" "${B[@]}" pull "${REGOPTS[@]}" "$IMG-none:v1"
else
	fail "the registry stores the layer at $data"
fi

kyb_finish
