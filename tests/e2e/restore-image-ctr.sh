#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# RESTORE_FROM=<registry image> through the shim (issue 10), with real
# containerd, our shim, kybernated, skopeo and a private registry (TLS, htpasswd):
# a busybox counter run by `ctr run` with our runtime is checkpointed and pushed;
# the checkpoint is deleted from the node, so only the registry has it; a new
# `ctr run --env RESTORE_FROM=<image>` makes kybernated pull it (pull_allow names
# the repository and the containerd namespace), the shim restores it and the
# count goes on, with the file written before; a second container restores from
# the same image by digest without a second pull. A copy with hostile metadata
# (a host bind mount, a device, a hook and a CDI device request in spec.dump,
# CDI devices and a log path that is a symlink in config.dump) restores with
# the new container's spec only. A repository no rule allows fails Create without starting a fresh process.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/registry.sh
. "$(dirname "$0")/../lib/registry.sh"

require_root
require_cmd runc ctr criu jq skopeo zstd
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
kyb_image_build
kyb_registry_start

RT=$KYB_RUNTIME
D=$KYB_TMP
export KYBERNATE_SOCKET=$D/kybernated.sock
kctl() { "$BUILD/kybernatectl" "$@"; }
ctd_start kybimg 1.6
kyb_image_import "$KYB_NS"
cat >"$D/kybernated.conf" <<EOF
pull_allow = $REG/ckpt=$KYB_NS
registry_authfile = $REG_AUTHFILE
registry_cert_dir = $REG_CERT_DIR
EOF
"$BUILD/kybernated" --config "$D/kybernated.conf" --store "$D/store" --socket "$KYBERNATE_SOCKET" \
	>>"$D/daemon.log" 2>&1 &
DPID=$!
kyb_on_exit "kill $DPID 2>/dev/null; wait $DPID 2>/dev/null; [ \"\$_kyb_fail\" = 0 ] || tail -n 20 '$D/daemon.log' >&2"
kyb_wait 10 kctl status >/dev/null || die "kybernated did not come up: $(tail -n 20 "$D/daemon.log")"


COUNTER='echo hello-from-before > /tmp/written; i=0; while true; do echo $i; i=$((i+1)); usleep 200000; done'
kyb_ctr_run_bg cnt "$D/cnt.out" "$KYB_BUSYBOX" cnt sh -c "$COUNTER"
kyb_wait_count "$D/cnt.out" 5 || die "the counter did not count: $(cat "$D/cnt.out")"
ID=$(kctl checkpoint -q --exit --namespace "$KYB_NS" cnt | tail -n 1)
[[ $ID =~ ^[0-9a-f]{32}$ ]] || die "checkpoint failed: $ID"
before=$(kyb_last_number "$D/cnt.out")
IMG=$REG/ckpt/cnt
DIGEST=$(kctl push -q --authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR" "$ID" "$IMG:v1") ||
	die "push failed: $DIGEST"
kyb_ctr_kill cnt

# The same checkpoint with hostile metadata (the 2026 attack class on
# restore-from-image): spec.dump asks for a bind mount of the host's /etc, a
# device node, a hook and a CDI device (annotation cdi.k8s.io/*); config.dump
# asks for CDI devices and names a log path that is a symlink to a
# host file. The restore must take the new container's spec only.
kctl export "$ID" -o "$D/ck.tar" >/dev/null 2>&1 || die "export failed"
mkdir -p "$D/evil" && tar -C "$D/evil" -xf "$D/ck.tar"
echo untouched >"$D/host-file"
ln -s "$D/host-file" "$D/evil-log"
jq '.mounts += [{"destination": "/host-etc", "source": "/etc", "type": "bind", "options": ["rbind", "rw"]}]
  | .linux.devices += [{"path": "/dev/evil-mem", "type": "c", "major": 1, "minor": 1}]
  | .hooks.prestart = [{"path": "/bin/sh", "args": ["sh", "-c", "echo pwned > '"$D"'/host-file"]}]
  | .annotations["io.kubernetes.cri.sandbox-log-directory"] = "'"$D"'"
  | .annotations["cdi.k8s.io/kybernate-evil"] = "kybernate.test/evil=all"' \
	"$D/evil/spec.dump" >"$D/spec.dump" && mv "$D/spec.dump" "$D/evil/spec.dump"
jq '.logPath = "'"$D"'/evil-log" | .log_path = "'"$D"'/evil-log"
  | .CDIDevices = [{"name": "kybernate.test/evil=all"}] | .cdi_devices = [{"name": "kybernate.test/evil=all"}]' \
	"$D/evil/config.dump" >"$D/config.dump" &&
	mv "$D/config.dump" "$D/evil/config.dump"
tar -C "$D/evil" -cf "$D/evil.tar" .
EVIL=$(kctl import "$D/evil.tar" | tail -n 1)
EVIL_DIGEST=$(kctl push -q --authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR" "$EVIL" "$IMG-evil:v1") ||
	die "push of the tampered checkpoint failed: $EVIL_DIGEST"
kctl delete "$EVIL" >/dev/null || die "delete failed"
kctl delete "$ID" >/dev/null || die "delete failed"
expect_eq "the node has no checkpoint left" 0 "$(kctl list --json | jq length)"

kyb_ctr_run_bg rst1 "$D/rst1.out" --env "RESTORE_FROM=$IMG:v1" "$KYB_BUSYBOX" rst1 sh -c 'echo FRESH-START; sleep 100'
kyb_wait_count "$D/rst1.out" 3
f1=$(kyb_first_number "$D/rst1.out")
if [ -n "$f1" ] && [ "$f1" -ge "$before" ]; then
	pass "RESTORE_FROM=<image>: the counter goes on ($before -> $f1)"
else
	fail "RESTORE_FROM=<image>: the counter goes on" "before=$before: $(head -n 5 "$D/rst1.out")" "$(tail -n 5 "$D/daemon.log")"
fi
expect_eq "no fresh process was started" "" "$(grep -h FRESH-START "$D/rst1.out" || true)"
expect_eq "the file written before the checkpoint is back" hello-from-before \
	"$(ctr_ task exec --exec-id chk rst1 cat /tmp/written 2>&1)"
j=$(kctl list --json)
expect_eq "the pulled checkpoint is in the catalog, once" 1 "$(jq length <<<"$j")"
expect_eq "it records where it came from" "$IMG@$DIGEST" "$(jq -r '.[0].source_image' <<<"$j")"
kyb_ctr_kill rst1

kyb_ctr_run_bg rst2 "$D/rst2.out" --env "RESTORE_FROM=$IMG@$DIGEST" "$KYB_BUSYBOX" rst2 sh -c 'echo FRESH-START; sleep 100'
kyb_wait_count "$D/rst2.out" 2
f2=$(kyb_first_number "$D/rst2.out")
if [ -n "$f2" ] && [ "$f2" -ge "$before" ]; then pass "RESTORE_FROM=<image>@<digest> restores again"; else fail "RESTORE_FROM=<image>@<digest> restores again" "$(head -n 5 "$D/rst2.out")"; fi
expect_eq "... from the cached row, without a second pull" 1 "$(kctl list --json | jq length)"
kyb_ctr_kill rst2

kyb_ctr_run_bg evil "$D/evil.out" --env "RESTORE_FROM=$IMG-evil:v1" "$KYB_BUSYBOX" evil sh -c 'echo FRESH-START; sleep 100'
kyb_wait_count "$D/evil.out" 2
f3=$(kyb_first_number "$D/evil.out")
if [ -n "$f3" ] && [ "$f3" -ge "$before" ]; then pass "hostile metadata: the checkpoint restores"; else fail "hostile metadata: the checkpoint restores" "$(head -n 5 "$D/evil.out")"; fi
evil_path=$(kctl list --json | jq -r --arg i "$IMG-evil@$EVIL_DIGEST" '.[] | select(.source_image == $i) | .path')
expect_eq "hostile metadata: the pulled checkpoint carries it (the attack is real)" /etc \
	"$(jq -r '.mounts[] | select(.destination == "/host-etc") | .source' "$evil_path/spec.dump" 2>&1)"
expect_ok "hostile metadata: exec works in the restored container (the control)" \
	ctr_ task exec --exec-id m0 evil test -e /bin/sh
expect_fail "hostile metadata: no bind mount of the host's /etc" ctr_ task exec --exec-id m1 evil test -e /host-etc/passwd
expect_fail "hostile metadata: no smuggled device node" ctr_ task exec --exec-id m2 evil test -e /dev/evil-mem
expect_eq "hostile metadata: no hook ran, the log symlink's target is untouched" untouched "$(cat "$D/host-file")"
spec=$(ctr_ containers info evil | jq -c '.Spec')
expect_eq "hostile metadata: the container's spec is the new one's" "0 0 0" \
	"$(jq -r '"\([.mounts[] | select(.destination == "/host-etc")] | length) \([.linux.devices[]? | select(.path == "/dev/evil-mem")] | length) \([.annotations // {} | keys[] | select(startswith("cdi.k8s.io/"))] | length)"' <<<"$spec")"
expect_eq "hostile metadata: the pulled checkpoint carries a CDI request (the attack is real)" kybernate.test/evil=all \
	"$(jq -r '.annotations["cdi.k8s.io/kybernate-evil"]' "$evil_path/spec.dump" 2>&1)"
kyb_ctr_kill evil

# A repository no pull_allow rule names: Create fails, nothing starts.
out=$(timeout -s KILL 120 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run --rm --runtime "$RT" \
	--env "RESTORE_FROM=$REG/other/cnt:v1" "$KYB_BUSYBOX" bad1 sh -c 'echo FRESH-START' 2>&1) &&
	fail "a repository no rule allows is refused" "$out" ||
	expect_contains "a repository no rule allows is refused" "$out" "pull_allow"
expect_eq "... and no fresh process ran" "" "$(grep FRESH-START <<<"$out" || true)"

# The checkpoint image run as a container's own image (what containerd 1.6
# and 1.7, which cannot restore from one, would otherwise start): Create
# fails, naming RESTORE_FROM as the way, and the pod's command never runs.
skopeo --insecure-policy copy -q --authfile "$REG_AUTHFILE" --src-cert-dir "$REG_CERT_DIR" \
	"docker://$IMG:v1" "oci-archive:$D/ck-image.tar:$IMG:v1" || die "copy of the image into an archive failed"
ctr_ images import "$D/ck-image.tar" >/dev/null 2>&1 || die "ctr images import of the checkpoint image failed"
out=$(timeout -s KILL 120 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run --rm --runtime "$RT" \
	"$IMG:v1" ckimg /bin/sh -c 'echo FRESH-START' 2>&1) &&
	fail "a checkpoint image as the container's image is refused" "$out" ||
	expect_contains "a checkpoint image as the container's image is refused" "$out" \
		"its image is a checkpoint image, which this containerd cannot restore from"
expect_contains "... the refusal names RESTORE_FROM" "$out" "RESTORE_FROM environment variable"
expect_eq "... and no fresh process ran" "" "$(grep FRESH-START <<<"$out" || true)"

kyb_finish
