#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The private registry of tests/lib/registry.sh works, and the skopeo 1.9
# behaviour that checkpoint images (issue 10) rely on is pinned: push of an OCI
# layout with auth and a private CA, inspect, pull back by digest, the
# refusals (no credentials, wrong password, unknown CA), and what a push does
# to an uncompressed layer (gzip by default, zstd on request, untouched with
# --preserve-digests, and a blob already in the registry reused whatever
# compression was asked for).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/registry.sh
. "$(dirname "$0")/../lib/registry.sh"

require_root
require_cmd jq tar sha256sum base64
kyb_registry_start

OCI_TAR=application/vnd.oci.image.layer.v1.tar
AUTH=(--authfile "$REG_AUTHFILE")

# raw TAG_OR_DIGEST_REF: the manifest as stored in the registry.
raw() { skopeo inspect --raw "${AUTH[@]}" --cert-dir "$REG_CERT_DIR" "docker://$REG/$1"; }
# layer_types REF: the layers' media types, space separated.
layer_types() { raw "$1" | jq -r '[.layers[].mediaType] | join(" ")'; }
# index_digest DIR: the one manifest digest an OCI layout's index.json names.
index_digest() { jq -r '.manifests[0].digest' "$1/index.json"; }
# unique_layer NAME: an uncompressed layer tar no registry has seen (random data).
unique_layer() {
	local d=$KYB_TMP/layer-$1
	mkdir -p "$d/root"
	head -c 100000 /dev/urandom | base64 >"$d/root/data"
	tar -C "$d/root" --owner=0 --group=0 --numeric-owner -cf "$d/layer.tar" .
	echo "$d/layer.tar"
}
# push LAYOUT REF ARGS...: skopeo copy oci:LAYOUT docker://$REG/REF.
push() {
	local l=$1 r=$2
	shift 2
	skopeo copy -q "${AUTH[@]}" --dest-cert-dir "$REG_CERT_DIR" "$@" "oci:$l" "docker://$REG/$r"
}

# ---- the fixture itself ---------------------------------------------------------

t_fixture() {
	local a
	expect_eq "registry pid is docker-registry" /usr/bin/docker-registry "$(readlink "/proc/$REG_PID/exe")"
	expect_eq "registry listens on 127.0.0.1 only" "127.0.0.1" "${REG%:*}"
	expect_eq "REG_CERT_DIR is certs.d/<host:port> with ca.crt only" "$REG_DIR/certs.d/$REG:ca.crt" \
		"$REG_CERT_DIR:$(ls "$REG_CERT_DIR")"
	a=$(jq -r --arg r "$REG" '.auths[$r].auth' "$REG_AUTHFILE" | base64 -d)
	expect_eq "REG_AUTHFILE holds user:pass for \$REG" "$REG_USER:$REG_PASS" "$a"
	expect_contains "htpasswd entry is bcrypt" "$(cat "$REG_DIR/htpasswd")" "$REG_USER:\$2y\$"
	a=$(openssl x509 -in "$REG_DIR/tls/server.crt" -noout -ext subjectAltName 2>&1)
	expect_contains "server certificate names IP 127.0.0.1" "$a" "IP Address:127.0.0.1"
	expect_contains "server certificate names localhost" "$a" "DNS:localhost"
	expect_eq "/v2/ with the credentials answers 200" 200 \
		"$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REG_CA" -u "$REG_USER:$REG_PASS" "https://$REG/v2/")"
	a=$(skopeo copy --help 2>&1)
	for f in --dest-compress-format --dest-compress-level --preserve-digests --digestfile \
		--retry-times --dest-decompress --dest-oci-accept-uncompressed-layers; do
		expect_contains "skopeo 1.9 copy has $f" "$a" "$f "
	done
}

# ---- push, inspect, pull by digest ------------------------------------------------

t_push_pull() {
	local L=$KYB_TMP/busybox B=$KYB_TMP/back dig idig mdig f bad=
	kyb_oci_layout "$L"
	BUSYBOX_LAYOUT=$L
	expect_ok "skopeo copy oci: -> docker://\$REG/test/img:v1 (authfile, cert dir)" \
		push "$L" test/img:v1 --digestfile "$KYB_TMP/digest"
	dig=$(skopeo inspect "${AUTH[@]}" --cert-dir "$REG_CERT_DIR" "docker://$REG/test/img:v1" | jq -r .Digest)
	if [[ $dig =~ ^sha256:[0-9a-f]{64}$ ]]; then pass "skopeo inspect shows the digest ($dig)"; else fail "skopeo inspect shows the digest" "got '$dig'"; fi
	expect_eq "--digestfile holds the pushed manifest digest" "$dig" "$(cat "$KYB_TMP/digest" 2>/dev/null)"
	expect_eq "the digest is the sha256 of the raw manifest" "$dig" \
		"sha256:$(raw test/img:v1 | sha256sum | cut -d' ' -f1)"
	# Default: the uncompressed layer is recompressed, so the digest changes.
	expect_eq "default push: the uncompressed layer becomes gzip" "$OCI_TAR+gzip" "$(layer_types test/img:v1)"
	expect_ne "default push: the manifest digest is not the source's" "$(index_digest "$L")" "$dig"
	expect_ok "skopeo copy docker://\$REG/test/img@digest -> oci:" \
		skopeo copy -q "${AUTH[@]}" --src-cert-dir "$REG_CERT_DIR" "docker://$REG/test/img@$dig" "oci:$B"
	idig=$(index_digest "$B" 2>/dev/null || true)
	expect_eq "pulled layout names the same manifest digest" "$dig" "$idig"
	mdig=sha256:$(sha256sum "$B/blobs/sha256/${idig#sha256:}" 2>/dev/null | cut -d' ' -f1)
	expect_eq "pulled manifest blob hashes to that digest" "$dig" "$mdig"
	for f in "$B"/blobs/sha256/*; do
		[ "$(sha256sum "$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || bad+=" $(basename "$f")"
	done
	expect_eq "every pulled blob hashes to its name" "" "$bad"
	expect_eq "pulled layer is still gzip (no decompression to oci:)" "$OCI_TAR+gzip" \
		"$(jq -r '[.layers[].mediaType] | join(" ")' "$B/blobs/sha256/${idig#sha256:}" 2>/dev/null)"
}

# ---- refusals ------------------------------------------------------------------------

# refused NAME NEEDLE... -- CMD...: CMD fails and its output contains every NEEDLE.
refused() {
	local n=$1 out rc=0 needles=()
	shift
	while [ "$1" != -- ]; do
		needles+=("$1")
		shift
	done
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		fail "$n" "command unexpectedly succeeded: $*"
		return 0
	fi
	local s
	for s in "${needles[@]}"; do
		[[ $out == *"$s"* ]] || {
			fail "$n" "expected the error to contain '$s'" "actual: $(printf '%s' "$out" | tail -n 3)"
			return 0
		}
	done
	pass "$n"
}

t_refusals() {
	local L=$BUSYBOX_LAYOUT empty=$KYB_TMP/no-auth.json wrong=$KYB_TMP/wrong-auth.json
	echo '{"auths":{}}' >"$empty"
	jq -n --arg r "$REG" --arg a "$(printf '%s:wrong-%s' "$REG_USER" "$REG_PASS" | base64 -w0)" \
		'{auths: {($r): {auth: $a}}}' >"$wrong"
	refused "push without credentials is refused: unauthorized" "unauthorized: authentication required" -- \
		skopeo copy -q --authfile "$empty" --dest-cert-dir "$REG_CERT_DIR" "oci:$L" "docker://$REG/test/img:anon"
	refused "inspect without credentials is refused: unauthorized" "unauthorized: authentication required" -- \
		skopeo inspect --authfile "$empty" --cert-dir "$REG_CERT_DIR" "docker://$REG/test/img:v1"
	local before
	before=$(wc -l <"$REG_LOG")
	refused "push with a wrong password is refused: unauthorized" "unauthorized: authentication required" -- \
		skopeo copy -q --authfile "$wrong" --dest-cert-dir "$REG_CERT_DIR" "oci:$L" "docker://$REG/test/img:wrong"
	# skopeo's message is the same as without credentials; the registry tells
	# a rejected password apart.
	expect_contains "registry logs the rejected password of $REG_USER" \
		"$(tail -n +"$((before + 1))" "$REG_LOG")" "error authenticating user \\\"$REG_USER\\\": authentication failure"
	refused "pull with a wrong password is refused: unauthorized" "unauthorized" -- \
		skopeo copy -q --authfile "$wrong" --src-cert-dir "$REG_CERT_DIR" "docker://$REG/test/img:v1" "oci:$KYB_TMP/wrong-pull"
	refused "push with an unknown CA is refused: x509" "x509: certificate signed by unknown authority" -- \
		skopeo copy -q "${AUTH[@]}" "oci:$L" "docker://$REG/test/img:noca"
	refused "inspect with an unknown CA is refused: x509" "x509: certificate signed by unknown authority" -- \
		skopeo inspect "${AUTH[@]}" "docker://$REG/test/img:v1"
	expect_eq "refused pushes left no tag (anon, wrong, noca): test/img has v1 only" v1 \
		"$(skopeo list-tags "${AUTH[@]}" --cert-dir "$REG_CERT_DIR" "docker://$REG/test/img" | jq -r '.Tags | join(" ")')"
}

# ---- what a push does to an uncompressed layer ---------------------------------------

t_compression() {
	local L out
	# zstd on request (a layer the registry has never seen).
	L=$KYB_TMP/l-zstd
	kyb_oci_layout "$L" "$(unique_layer zstd)"
	expect_ok "push --dest-compress-format zstd" push "$L" test/zstd:v1 --dest-compress-format zstd
	expect_eq "--dest-compress-format zstd: layer is tar+zstd" "$OCI_TAR+zstd" "$(layer_types test/zstd:v1)"
	expect_ok "push --dest-compress-format zstd --dest-compress-level 19" \
		push "$L" test/zstd:v19 --dest-compress-format zstd --dest-compress-level 19
	# --preserve-digests: the layer and the manifest go up byte for byte.
	L=$KYB_TMP/l-pres
	kyb_oci_layout "$L" "$(unique_layer pres)"
	expect_ok "push --preserve-digests" push "$L" test/pres:v1 --preserve-digests --digestfile "$KYB_TMP/digest-pres"
	expect_eq "--preserve-digests: layer stays uncompressed tar" "$OCI_TAR" "$(layer_types test/pres:v1)"
	expect_eq "--preserve-digests: manifest digest is the source's" "$(index_digest "$L")" \
		"$(cat "$KYB_TMP/digest-pres" 2>/dev/null)"
	# --preserve-digests wins over a compression format, silently.
	L=$KYB_TMP/l-preszstd
	kyb_oci_layout "$L" "$(unique_layer preszstd)"
	expect_ok "push --preserve-digests --dest-compress-format zstd" \
		push "$L" test/preszstd:v1 --preserve-digests --dest-compress-format zstd
	expect_eq "--preserve-digests with zstd asked: layer stays uncompressed tar" "$OCI_TAR" \
		"$(layer_types test/preszstd:v1)"
	# A layer the registry already holds (gzip, from test/img:v1) is reused:
	# skopeo 1.9 does not recompress it to the format asked for.
	expect_ok "push of an already pushed layer with --dest-compress-format zstd" \
		push "$BUSYBOX_LAYOUT" test/img:zstd --dest-compress-format zstd
	expect_eq "already present layer is reused as gzip, not recompressed to zstd" \
		"$(raw test/img:v1 | jq -r '.layers[0] | .mediaType + " " + .digest')" \
		"$(raw test/img:zstd | jq -r '.layers[0] | .mediaType + " " + .digest')"
	# zstd is OCI only: a Docker v2s2 manifest refuses it.
	L=$KYB_TMP/l-v2s2
	kyb_oci_layout "$L" "$(unique_layer v2s2)"
	out=$(push "$L" test/v2s2:v1 -f v2s2 --dest-compress-format zstd 2>&1) && out="succeeded: $out"
	expect_contains "-f v2s2 with zstd is refused" "$out" "zstd compression is not supported"
}

t_stop() {
	local pid=$REG_PID
	kyb_registry_stop
	if kill -0 "$pid" 2>/dev/null; then fail "kyb_registry_stop ends the registry"; else pass "kyb_registry_stop ends the registry"; fi
	expect_fail "nothing answers on \$REG after the stop" curl -s --max-time 2 --cacert "$REG_CA" "https://$REG/v2/"
}

BUSYBOX_LAYOUT=
t_fixture
t_push_pull
t_refusals
t_compression
t_stop
kyb_finish
