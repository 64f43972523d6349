#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# scripts/install.sh on sample containerd configurations in a private directory
# (never the machine's own /etc/containerd/config.toml): a missing and an empty
# file, containerd 1.6's `config default`, one with runc and another runtime, a
# version 1 and a version 3 file, a MicroK8s template, one that already has the
# runtime, one with a conflicting "kybernate" runtime, and one the edit would
# break. For each: --dry-run prints the right diff and changes nothing; a real
# run (PREFIX and DESTDIR in the scratch directory) adds the block, keeps a
# backup, and containerd 1.6 (and 1.7 when installed) `config dump` reads the
# result and shows the kybernate runtime with containerd's default runc still
# there; a second run leaves the file byte for byte as it was; --uninstall
# restores the original. Also: the installed files; a pod through a private
# containerd's CRI plugin (1.6, and 1.7 when installed) runs with handler
# "kybernate" as install.sh registered it, on the installed shim binary; the
# walkthrough of docs/CPU_CHECKPOINT.md with pods made from the manifests
# (kybernatectl checkpoint, the restore pod continues the count, another
# namespace is refused); and the manifests parse as YAML with the right kinds
# and fields.
# Checks are written "COND && pass X || fail X" (pass cannot fail); TOML
# placeholders sit in single quotes on purpose.
# shellcheck disable=SC2015,SC2016,SC1091
. "$(dirname "$0")/../lib/common.sh"

require_cmd containerd diff python3 make
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
python3 -c 'import yaml' 2>/dev/null || skip_all "python3-yaml is not installed (run scripts/setup.sh)"

INSTALL=$KYB_TOP/scripts/install.sh
D=$KYB_TMP
S=$D/samples
DEST=$D/root
PFX=/opt/kyb-install-test
mkdir -p "$S"
CTD16=$(command -v containerd)
CTD17=
! ctd_have_17 || CTD17=$KYB_CTD17_BIN/containerd

V2='plugins."io.containerd.grpc.v1.cri".containerd.runtimes'
V3='plugins."io.containerd.cri.v1.runtime".containerd.runtimes'
V1='plugins.cri.containerd.runtimes'

# ---- samples ------------------------------------------------------------------------

: >"$S/empty.toml"
"$CTD16" config default >"$S/default16.toml" 2>/dev/null || die "containerd config default failed"
grep -q "^version = 2" "$S/default16.toml" || die "containerd config default is not version 2"

# Debian's own /etc/containerd/config.toml: a CRI section, no runtimes.
cat >"$S/debian.toml" <<'EOF'
version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
EOF

cat >"$S/two.toml" <<'EOF'
version = 2
root = "/var/lib/containerd"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.9"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = true
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.gvisor]
        runtime_type = "io.containerd.runsc.v1"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/opt/cni/bin"
EOF

cat >"$S/v3.toml" <<'EOF'
version = 3
root = "/var/lib/containerd"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false

  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'

    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes]

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'

        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          SystemdCgroup = false

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
EOF

# Written for this test in the shape of MicroK8s' args/containerd-template.toml:
# placeholders the snap fills in at start, comments that lead into tables.
cat >"$S/microk8s.toml" <<'EOF'
# containerd template (placeholders are filled in when containerd starts)
version = 2
oom_score = 0

[grpc]
  uid = 0
  max_recv_message_size = 16777216

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  sandbox_image = "registry.k8s.io/pause:3.7"

  # containerd settings of the CRI plugin
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "${SNAPSHOTTER}"
    default_runtime_name = "${RUNTIME}"

    # the runc runtime
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]
      runtime_type = "io.containerd.kata.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata.options]
        BinaryName = "kata-runtime"
  # CNI settings
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${SNAP_DATA}/opt/cni/bin"
    conf_dir = "${SNAP_DATA}/args/cni-network"
EOF

cat >"$S/v1.toml" <<'EOF'
[plugins.cri.containerd]
  snapshotter = "overlayfs"
EOF

# Already registered, spelled differently (single quotes, spaces).
cat >"$S/present.toml" <<'EOF'
version = 2
[ plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.runc ]
  runtime_type = "io.containerd.runc.v2"
[ plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes."kybernate" ]
  runtime_type = "io.containerd.kybernate.v1"
EOF

cat >"$S/conflict.toml" <<'EOF'
version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kybernate]
  runtime_type = "io.containerd.runc.v2"
EOF

# runtimes as an inline table: adding a [..runtimes.kybernate] table would be
# invalid TOML; the containerd check must refuse to write it.
cat >"$S/inline.toml" <<'EOF'
version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  runtimes = { runc = { runtime_type = "io.containerd.runc.v2" } }
EOF

# ---- helpers ------------------------------------------------------------------------

# added_lines DIFF: the added lines of a unified diff, without the +++ header.
added_lines() { printf '%s\n' "$1" | grep '^+' | grep -v '^+++ ' | sed 's/^+//'; }
removed_lines() { printf '%s\n' "$1" | grep '^-' | grep -v '^--- ' || true; }

# dump_runtime_type BIN FILE NAME: runtime_type of runtime NAME in BIN's dump of FILE.
dump_runtime_type() {
	"$1" --config "$2" config dump 2>/dev/null | awk -v n="runtimes.$3]" '
		/^[ \t]*\[/ { inr = (index($0, n) > 0); next }
		inr && /^[ \t]*runtime_type[ \t]*=/ { sub(/^[^=]*=[ \t]*/, ""); gsub(/"/, ""); print; exit }'
}

# snapshot of the staging root: paths, modes and checksums
tree_sum() { [ -d "$DEST" ] && (cd "$DEST" && find . -printf '%M %p\n' | sort && find . -type f -exec md5sum {} + | sort) || echo none; }

# check_sample NAME HEADER-PREFIX RUNC(yes|no) [CHECK-BINS...]
check_sample() {
	local n=$1 hp=$2 want_runc=$3
	shift 3
	local f=$D/work/$n.toml orig=$S/$n.toml out rc before
	mkdir -p "$D/work"
	rm -f "$f" "$f.kybernate.bak"
	[ "$n" = missing ] || cp "$orig" "$f"

	# dry run: the diff, nothing touched (not even DESTDIR)
	before=$(tree_sum)
	rc=0
	out=$("$INSTALL" --dry-run --build "$BUILD" --destdir "$DEST" --prefix "$PFX" --config "$f" 2>&1) || rc=$?
	expect_eq "$n: --dry-run exits 0" 0 "$rc" || printf '%s\n' "$out" >&2
	local add
	add=$(added_lines "$out")
	expect_contains "$n: dry-run diff adds the kybernate table" "$add" "[$hp.kybernate]"
	expect_contains "$n: dry-run diff sets runtime_type" "$add" "runtime_type = \"io.containerd.kybernate.v1\""
	expect_contains "$n: dry-run diff sets runtime_path (PREFIX not in PATH)" "$add" \
		"runtime_path = \"$PFX/bin/containerd-shim-kybernate-v1\""
	expect_contains "$n: dry-run diff passes kybernate.io pod annotations to containers" "$add" \
		"pod_annotations = [\"kybernate.io/*\"]"
	expect_eq "$n: dry-run diff removes nothing" "" "$(removed_lines "$out")"
	if [ "$want_runc" = yes ]; then
		expect_contains "$n: dry-run diff lists the default runc runtime too" "$add" "[$hp.runc]"
	else
		[[ $add != *".runc]"* ]] && pass "$n: dry-run diff does not add runc again" ||
			fail "$n: dry-run diff does not add runc again" "$add"
	fi
	if [ "$n" = missing ]; then
		[ ! -e "$f" ] && pass "$n: dry run creates no file" || fail "$n: dry run creates no file"
	else
		cmp -s "$orig" "$f" && pass "$n: dry run leaves the file as it was" || fail "$n: dry run leaves the file as it was"
	fi
	[ ! -e "$f.kybernate.bak" ] && pass "$n: dry run makes no backup" || fail "$n: dry run makes no backup"
	expect_eq "$n: dry run installs nothing" "$before" "$(tree_sum)"

	# the real run: prints the same diff, writes it
	local out1 diffdry diffreal
	rc=0
	out1=$("$INSTALL" --build "$BUILD" --destdir "$DEST" --prefix "$PFX" --config "$f" 2>&1) || rc=$?
	expect_eq "$n: install exits 0" 0 "$rc" || printf '%s\n' "$out1" >&2
	diffdry=$(printf '%s\n' "$out" | sed -n '/^--- /,/^install.sh: /p' | grep -v '^install.sh: ')
	diffreal=$(printf '%s\n' "$out1" | sed -n '/^--- /,/^install.sh: /p' | grep -v '^install.sh: ')
	expect_eq "$n: the dry run showed exactly the change made" "$diffdry" "$diffreal"
	local src=$orig
	[ "$n" != missing ] || src=/dev/null
	expect_eq "$n: the file now differs from the original by that diff" "$diffdry" \
		"$(diff -u --label "$f" --label "$f (new)" "$src" "$f" || true)"
	if [ "$n" = missing ]; then
		[ ! -e "$f.kybernate.bak" ] && pass "$n: no backup of a missing file" || fail "$n: no backup of a missing file"
		expect_eq "$n: created with mode 0644" 644 "$(stat -c %a "$f")"
	else
		cmp -s "$orig" "$f.kybernate.bak" && pass "$n: the original is kept as .kybernate.bak" ||
			fail "$n: the original is kept as .kybernate.bak"
		expect_eq "$n: mode kept" "$(stat -c %a "$orig")" "$(stat -c %a "$f")"
	fi

	# containerd reads it and sees our runtime, and runc stays the default
	local bin
	for bin in "$@"; do
		local probe=$f v
		if [ "$n" = microk8s ]; then
			probe=$D/work/microk8s-filled.toml
			sed 's|${SNAPSHOTTER}|overlayfs|; s|${RUNTIME}|runc|; s|${SNAP_DATA}|/var/snap/microk8s/current|g' "$f" >"$probe"
		fi
		v=$("$bin" --version | awk '{print $3}')
		expect_eq "$n: containerd $v config dump shows runtime kybernate" \
			"io.containerd.kybernate.v1" "$(dump_runtime_type "$bin" "$probe" kybernate)"
		expect_eq "$n: containerd $v config dump still has runc" \
			"io.containerd.runc.v2" "$(dump_runtime_type "$bin" "$probe" runc)"
		expect_contains "$n: containerd $v config dump has kybernate's pod_annotations" \
			"$("$bin" --config "$probe" config dump 2>/dev/null | awk '/runtimes.kybernate\]/ { inr = 1; next } /^[ \t]*\[/ { inr = 0 } inr')" \
			"kybernate.io/*"
	done

	# idempotent: the second run changes nothing
	local sum1 bak1
	sum1=$(md5sum <"$f")
	bak1=$( [ -e "$f.kybernate.bak" ] && md5sum <"$f.kybernate.bak" || echo none)
	rc=0
	out=$("$INSTALL" --build "$BUILD" --destdir "$DEST" --prefix "$PFX" --config "$f" 2>&1) || rc=$?
	expect_eq "$n: second install exits 0" 0 "$rc"
	expect_eq "$n: second install leaves the file byte for byte" "$sum1" "$(md5sum <"$f")"
	expect_eq "$n: second install leaves the backup" "$bak1" "$( [ -e "$f.kybernate.bak" ] && md5sum <"$f.kybernate.bak" || echo none)"
	expect_contains "$n: second install says so" "$out" "already registered"
	[[ $out != *"+++ "* ]] && pass "$n: second install prints no diff" || fail "$n: second install prints no diff" "$out"
	out=$("$INSTALL" --dry-run --build "$BUILD" --destdir "$DEST" --prefix "$PFX" --config "$f" 2>&1)
	[[ $out != *"+++ "* ]] && pass "$n: dry run after install prints no diff" || fail "$n: dry run after install prints no diff" "$out"

	# uninstall restores the original (a created file keeps its version line)
	out=$("$INSTALL" --uninstall --only-containerd --config "$f" 2>&1) || fail "$n: uninstall" "$out"
	if [ "$n" = missing ] || [ "$n" = empty ]; then
		expect_eq "$n: uninstall leaves only the version line" "version = 2" "$(cat "$f")"
	else
		cmp -s "$orig" "$f" && pass "$n: uninstall restores the original" ||
			fail "$n: uninstall restores the original" "$(diff -u "$orig" "$f")"
	fi
	rm -f "$f.kybernate.bak"
}

CHECK_BINS=("$CTD16")
[ -z "$CTD17" ] || CHECK_BINS+=("$CTD17")

check_sample missing "$V2" yes "${CHECK_BINS[@]}"
check_sample empty "$V2" yes "${CHECK_BINS[@]}"
check_sample default16 "$V2" no "${CHECK_BINS[@]}"
check_sample debian "$V2" yes "${CHECK_BINS[@]}"
check_sample two "$V2" no "${CHECK_BINS[@]}"
check_sample microk8s "$V2" no "${CHECK_BINS[@]}"
check_sample v1 "$V1" yes "${CHECK_BINS[@]}"
check_sample v3 "$V3" no # containerd 2.x is not installed here: text checks only

# where the block goes: right after the last runtime, at its indentation
out=$(awk '/runtimes.gvisor\]/{getline; getline; getline; getline; print; exit}' <<<"$("$INSTALL" --dry-run --only-containerd --containerd none --config "$S/two.toml" 2>&1)")
expect_eq "two: the table follows the last runtime, same indentation" \
	"+      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kybernate]" "$out"

# ---- already present, conflicting, unsafe -------------------------------------------------

cp "$S/present.toml" "$D/work/present.toml"
out=$("$INSTALL" --only-containerd --config "$D/work/present.toml" 2>&1)
expect_contains "present (other spelling): recognised" "$out" "already registered"
expect_contains "present without pod_annotations: says what pod checkpoints lack" "$out" "no pod_annotations"
cmp -s "$S/present.toml" "$D/work/present.toml" && pass "present: file untouched" || fail "present: file untouched"

cp "$S/conflict.toml" "$D/work/conflict.toml"
rc=0
out=$("$INSTALL" --only-containerd --config "$D/work/conflict.toml" 2>&1) || rc=$?
expect_eq "conflict: exit 3" 3 "$rc"
expect_contains "conflict: says what is there" "$out" "runtime_type io.containerd.runc.v2"
cmp -s "$S/conflict.toml" "$D/work/conflict.toml" && pass "conflict: file untouched" || fail "conflict: file untouched"
out=$("$INSTALL" --only-containerd --handler kyb2 --containerd none --dry-run --config "$D/work/conflict.toml" 2>&1)
expect_contains "conflict: --handler registers under another name" "$out" "containerd.runtimes.kyb2]"

cp "$S/inline.toml" "$D/work/inline.toml"
rc=0
out=$("$INSTALL" --only-containerd --config "$D/work/inline.toml" 2>&1) || rc=$?
expect_ne "inline runtimes: refused" 0 "$rc"
expect_contains "inline runtimes: containerd's check is the reason" "$out" "cannot read the edited configuration"
cmp -s "$S/inline.toml" "$D/work/inline.toml" && pass "inline runtimes: file untouched" || fail "inline runtimes: file untouched"
[ ! -e "$D/work/inline.toml.kybernate.bak" ] && pass "inline runtimes: no backup either" || fail "inline runtimes: no backup either"

# a symlinked config is edited where it lives; the link stays a link
mkdir -p "$D/work/managed"
cp "$S/two.toml" "$D/work/managed/real.toml"
ln -sf managed/real.toml "$D/work/link.toml"
out=$("$INSTALL" --only-containerd --config "$D/work/link.toml" 2>&1) || fail "symlink: install" "$out"
[ -L "$D/work/link.toml" ] && pass "symlink: still a symlink" || fail "symlink: still a symlink"
expect_contains "symlink: the target got the runtime" "$(cat "$D/work/managed/real.toml")" "runtimes.kybernate]"
[ -e "$D/work/managed/real.toml.kybernate.bak" ] && pass "symlink: backup beside the target" ||
	fail "symlink: backup beside the target"

# default PREFIX (/usr/local/bin is in containerd's PATH): no runtime_path
out=$("$INSTALL" --dry-run --only-containerd --config "$S/two.toml" 2>&1)
[[ $out != *runtime_path* ]] && pass "default prefix: no runtime_path" || fail "default prefix: no runtime_path" "$out"

# a MicroK8s template given as such is handled the same way, with its own restart hint
cp "$S/microk8s.toml" "$D/work/mk.toml"
out=$("$INSTALL" --only-containerd --microk8s-template "$D/work/mk.toml" 2>&1)
expect_contains "microk8s template: registered" "$(cat "$D/work/mk.toml")" "containerd.runtimes.kybernate]"
expect_contains "microk8s template: restart hint" "$out" "snap restart microk8s.daemon-containerd"

# usage errors
rc=0
"$INSTALL" --frobnicate >/dev/null 2>&1 || rc=$?
expect_eq "unknown option: exit 2" 2 "$rc"
rc=0
"$INSTALL" --handler 'a b' --dry-run >/dev/null 2>&1 || rc=$?
expect_eq "bad handler: exit 2" 2 "$rc"
expect_contains "--help" "$("$INSTALL" --help)" "--dry-run"

# ---- installed files ------------------------------------------------------------------

for b in bin/containerd-shim-kybernate-v1 bin/kybernatectl sbin/kybernated; do
	cmp -s "$DEST$PFX/$b" "$BUILD/${b#*/}" && [ -x "$DEST$PFX/$b" ] && pass "installed $b" || fail "installed $b"
done
for u in kybernated.service kybernated.socket; do
	[ -f "$DEST/etc/systemd/system/$u" ] && pass "installed unit $u" || fail "installed unit $u"
done
expect_contains "unit ExecStart points into PREFIX" "$(cat "$DEST/etc/systemd/system/kybernated.service")" \
	"ExecStart=$PFX/sbin/kybernated --foreground"
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$D/units"
	sed "s|$PFX|$DEST$PFX|g" "$DEST/etc/systemd/system/kybernated.service" >"$D/units/kybernated.service"
	cp "$DEST/etc/systemd/system/kybernated.socket" "$D/units/"
	expect_ok "installed units pass systemd-analyze verify" \
		systemd-analyze verify "$D/units/kybernated.service" "$D/units/kybernated.socket"
fi
cmp -s "$DEST/etc/kybernate/kybernated.conf" "$KYB_TOP/kybernated/kybernated.conf.example" &&
	pass "kybernated.conf installed from the example" || fail "kybernated.conf installed from the example"
expect_eq "store is mode 0700" 700 "$(stat -c %a "$DEST/var/lib/kybernate")"
echo "store = /srv/kyb # mine" >>"$DEST/etc/kybernate/kybernated.conf"
sum=$(md5sum <"$DEST/etc/kybernate/kybernated.conf")
"$INSTALL" -q --build "$BUILD" --destdir "$DEST" --prefix "$PFX" --no-containerd >/dev/null 2>&1
expect_eq "an existing kybernated.conf is never overwritten" "$sum" "$(md5sum <"$DEST/etc/kybernate/kybernated.conf")"

# ---- a pod through containerd's CRI plugin, with the registration install.sh wrote --------
#
# A private containerd 1.6 whose PATH does NOT hold the shim: the test harness's
# own "kybernate" entry is removed with --uninstall, install.sh registers it again
# with runtime_path pointing at the staged binary, and a pod with runtime
# handler kybernate must run through exactly that binary.
cri_suite() {
	local v=$1 t="CRI $1:" ctdbin=$CTD16
	[ "$v" = 1.6 ] || ctdbin=$CTD17
	local n=kybinstall-cri${v/./} pod ctr shim exe out logs
	if [ "$(id -u)" -ne 0 ]; then skip "$t pod through the installed runtime" "needs root"; return 0; fi
	if ! command -v node >/dev/null || [ ! -e "$KYB_CRI_PROTO" ] || [ ! -e "$KYB_NODE_MODULES/@grpc/grpc-js" ]; then
		skip "$t pod through the installed runtime" "CRI client prerequisites missing (scripts/setup.sh)"
		return 0
	fi
	kyb_image_build
	mkdir -p "$KYB_TEST_RUN" "$KYB_TEST_LIB"
	if [ -e "$KYB_TEST_RUN/$n.pid" ] || [ -e "$KYB_TEST_RUN/$n" ] || [ -e "$KYB_TEST_LIB/$n" ]; then ctd_stop "$n"; fi
	echo "$v" >"$KYB_TEST_RUN/$n.version"
	echo k8s.io >"$KYB_TEST_RUN/$n.ns"
	ctd_use "$n"
	mkdir -p "$CTD_ROOT" "$CTD_STATE"
	_ctd_config
	_kyb_ctds+=("$n")
	kyb_on_exit "ctd_stop '$n'"
	kyb_on_exit "rm -f '$CTD_CONFIG.kybernate.bak'"
	"$INSTALL" -q --uninstall --only-containerd --containerd none --config "$CTD_CONFIG" >/dev/null 2>&1
	[ -e "$CTD_CONFIG.kybernate.bak" ] && rm -f "$CTD_CONFIG.kybernate.bak"
	expect_eq "$t the harness's kybernate entry is gone" "" "$(grep -n 'kybernate.v1' "$CTD_CONFIG")"
	out=$("$INSTALL" --only-containerd --config "$CTD_CONFIG" --containerd "$ctdbin" \
		--runtime-path "$DEST$PFX/bin/containerd-shim-kybernate-v1" 2>&1) || fail "$t install.sh registers the runtime" "$out"
	expect_contains "$t runtime_path in the config" "$(cat "$CTD_CONFIG")" \
		"runtime_path = \"$DEST$PFX/bin/containerd-shim-kybernate-v1\""
	# containerd 1.6 ignores runtime_path for sandboxes: install.sh says so, and
	# the shim must be in containerd's PATH (as with the default PREFIX). 1.7
	# runs it from runtime_path with no shim in its PATH.
	local save=$BUILD
	if [ "$v" = 1.6 ]; then
		expect_contains "$t install.sh warns that 1.6 ignores runtime_path" "$out" "ignores runtime_path"
		BUILD=$DEST$PFX/bin
	else
		BUILD=$D/no-shim-here
		mkdir -p "$BUILD"
	fi
	: >"$CTD_LOG"
	_ctd_launch
	BUILD=$save
	kyb_image_import k8s.io
	logs=$D/cri-logs
	mkdir -p "$logs"
	cri_pod_json kybinstall-pod kybinstall-uid "$logs" >"$D/pod.json"
	cri_ctr_json counter counter.log sh -c 'i=0; while true; do echo $i; i=$((i+1)); sleep 1; done' >"$D/ctr.json"
	if ! pod=$(cri runp "$D/pod.json" kybernate 2>&1); then
		fail "$t pod sandbox with handler kybernate" "$pod" "$(tail -n 20 "$CTD_LOG")"
		return 0
	fi
	pass "$t pod sandbox with handler kybernate"
	if ctr=$(cri create "$pod" "$D/ctr.json" "$D/pod.json" 2>&1) && cri start "$ctr" >/dev/null 2>&1; then
		pass "$t counter container created and started"
	else
		fail "$t counter container created and started" "$ctr" "$(tail -n 20 "$CTD_LOG")"
		return 0
	fi
	kyb_wait 20 grep -q ' 2$' "$logs/counter.log" && pass "$t the counter counts (CRI log)" ||
		fail "$t the counter counts (CRI log)" "$(cat "$logs/counter.log" 2>&1)"
	shim=$(_ctd_shim_pids "$CTD_ADDR" | head -n 1)
	exe=$(readlink "/proc/$shim/exe" 2>/dev/null || true)
	expect_eq "$t containerd ran the installed shim binary" "$DEST$PFX/bin/containerd-shim-kybernate-v1" "$exe"
	cri stopp "$pod" >/dev/null 2>&1
	cri rmp "$pod" >/dev/null 2>&1
	ctd_stop "$n"
}
cri_suite 1.6
! ctd_have_17 || cri_suite 1.7

# ---- the walkthrough of docs/CPU_CHECKPOINT.md, pods made from the manifests --------------
#
# cpu-test-pod.yaml and cpu-restore-pod.yaml are turned into CRI configs (the
# image replaced by the local test busybox: there is no registry), the counter
# is checkpointed with `kybernatectl checkpoint --namespace k8s.io ID`, its pod
# removed, and the restore pod must continue the count; the same restore spec
# in another namespace must fail as if the checkpoint did not exist (tenant rule).

# manifest_cri MANIFEST LOGDIR POD_OUT CTR_OUT [NAMESPACE]: CRI pod and container
# configs from a Pod manifest.
manifest_cri() {
	python3 - "$@" "$KYB_BUSYBOX" <<'PYEOF'
import json, sys, yaml
man, logdir, pod_out, ctr_out = sys.argv[1:5]
ns = sys.argv[5] if len(sys.argv) > 6 else None
image = sys.argv[-1]
p = yaml.safe_load(open(man))
md = p["metadata"]
c = p["spec"]["containers"][0]
pod = {"metadata": {"name": md["name"], "uid": "kybinstall-" + md["name"] + "-" + (ns or md["namespace"]),
                    "namespace": ns or md["namespace"], "attempt": 0},
       "log_directory": logdir,
       "labels": md.get("labels", {}),
       "linux": {"security_context": {"namespace_options": {"network": "NODE"}}}}
ctr = {"metadata": {"name": c["name"], "attempt": 0}, "image": {"image": image},
       "command": c.get("command", []), "args": c.get("args", []),
       "envs": [{"key": e["name"], "value": e["value"]} for e in c.get("env", [])],
       "log_path": c["name"] + ".log",
       "linux": {"security_context": {"namespace_options": {
           "pid": "POD" if p["spec"].get("shareProcessNamespace") else "CONTAINER"}}}}
json.dump(pod, open(pod_out, "w"))
json.dump(ctr, open(ctr_out, "w"))
PYEOF
}

# last_count LOG: the last number in a CRI log (empty if none).
last_count() { awk '{n = $NF} END {print n}' "$1" 2>/dev/null; }
first_count() { awk 'NR == 1 {print $NF}' "$1" 2>/dev/null; }

walkthrough_suite() {
	local v=$1 t="walkthrough $1:" n sock pod ctr cid rpod rctr before after first out xpod xctr
	n=kybinstall-walk${v/./}
	if [ "$(id -u)" -ne 0 ]; then skip "$t" "needs root"; return 0; fi
	if ! command -v node >/dev/null || [ ! -e "$KYB_CRI_PROTO" ] || [ ! -e "$KYB_NODE_MODULES/@grpc/grpc-js" ]; then
		skip "$t" "CRI client prerequisites missing (scripts/setup.sh)"
		return 0
	fi
	command -v criu >/dev/null || { skip "$t" "criu is not installed (scripts/setup.sh)"; return 0; }
	kyb_image_build
	sock=$D/walk-$n.sock
	"$BUILD/kybernated" --config /dev/null --store "$D/store-$n" -S "$sock" >"$D/kybernated-$n.log" 2>&1 &
	local dpid=$!
	kyb_on_exit "kill $dpid 2>/dev/null; wait $dpid 2>/dev/null"
	kyb_wait 10 test -S "$sock" || { fail "$t kybernated starts" "$(cat "$D/kybernated-$n.log")"; return 0; }
	# containerd passes its environment on to the shims
	KYBERNATE_SOCKET=$sock KYB_CTD_NS=k8s.io ctd_start "$n" "$v"
	kyb_image_import k8s.io
	local CTL=("$BUILD/kybernatectl" -s "$sock")

	mkdir -p "$D/$n-test" "$D/$n-restore" "$D/$n-other"
	manifest_cri "$KYB_TOP/manifests/cpu-test-pod.yaml" "$D/$n-test" "$D/$n-pod1.json" "$D/$n-ctr1.json" ||
		{ fail "$t CRI configs from cpu-test-pod.yaml"; return 0; }
	manifest_cri "$KYB_TOP/manifests/cpu-restore-pod.yaml" "$D/$n-restore" "$D/$n-pod2.json" "$D/$n-ctr2.json" ||
		{ fail "$t CRI configs from cpu-restore-pod.yaml"; return 0; }
	manifest_cri "$KYB_TOP/manifests/cpu-restore-pod.yaml" "$D/$n-other" "$D/$n-pod3.json" "$D/$n-ctr3.json" other

	# 2. run the counter
	if ! pod=$(cri runp "$D/$n-pod1.json" kybernate 2>&1) || ! ctr=$(cri create "$pod" "$D/$n-ctr1.json" "$D/$n-pod1.json" 2>&1) ||
		! cri start "$ctr" >/dev/null 2>&1; then
		fail "$t cpu-test runs" "$pod" "$ctr" "$(tail -n 20 "$CTD_LOG")"
		return 0
	fi
	kyb_wait 20 sh -c "[ \"\$(awk '{n = \$NF} END {print n+0}' '$D/$n-test/counter.log')\" -ge 3 ]" &&
		pass "$t cpu-test counts" || { fail "$t cpu-test counts" "$(cat "$D/$n-test/counter.log")"; return 0; }

	# 3. checkpoint it (the full container id, containerd namespace k8s.io)
	before=$(last_count "$D/$n-test/counter.log")
	if cid=$("${CTL[@]}" checkpoint -q --namespace k8s.io "$ctr" 2>&1); then
		pass "$t kybernatectl checkpoint --namespace k8s.io ID"
	else
		fail "$t kybernatectl checkpoint --namespace k8s.io ID" "$cid"
		return 0
	fi
	after=$(last_count "$D/$n-test/counter.log")
	expect_contains "$t kybernatectl list names the pod's container" "$("${CTL[@]}" list)" \
		"kybernate-demo/cpu-test/counter"

	# 4. delete the pod
	cri stopp "$pod" >/dev/null 2>&1
	cri rmp "$pod" >/dev/null 2>&1

	# 5. the restore pod continues the count
	if ! rpod=$(cri runp "$D/$n-pod2.json" kybernate 2>&1) || ! rctr=$(cri create "$rpod" "$D/$n-ctr2.json" "$D/$n-pod2.json" 2>&1) ||
		! out=$(cri start "$rctr" 2>&1); then
		fail "$t cpu-restore starts" "$rpod" "$rctr" "$out" "$(tail -n 20 "$CTD_LOG")"
		return 0
	fi
	pass "$t cpu-restore starts"
	kyb_wait 20 test -s "$D/$n-restore/counter.log"
	first=$(first_count "$D/$n-restore/counter.log")
	log "$t last count before the checkpoint $before..$after, first after restore $first"
	if [[ $first =~ ^[0-9]+$ ]] && [ "$first" -gt "$before" ] && [ "$first" -le $((after + 1)) ]; then
		pass "$t cpu-restore continues the count ($before..$after -> $first)"
	else
		fail "$t cpu-restore continues the count" "before $before, after $after, first $first" \
			"$(head -n 5 "$D/$n-restore/counter.log")"
	fi

	# the same restore spec in another Kubernetes namespace is refused
	if xpod=$(cri runp "$D/$n-pod3.json" kybernate 2>&1) && xctr=$(cri create "$xpod" "$D/$n-ctr3.json" "$D/$n-pod3.json" 2>&1); then
		out=$(cri start "$xctr" 2>&1) && fail "$t another namespace is refused" "it started: $out" ||
			expect_contains "$t another namespace is refused as if missing (tenant rule)" "$out" \
				"no ready checkpoint of Kubernetes container"
		[ ! -s "$D/$n-other/counter.log" ] && pass "$t nothing runs in the other namespace" ||
			fail "$t nothing runs in the other namespace" "$(cat "$D/$n-other/counter.log")"
	else
		fail "$t pod in another namespace" "$xpod" "$xctr"
	fi
	cri stopp "$rpod" >/dev/null 2>&1
	cri rmp "$rpod" >/dev/null 2>&1
	[ -z "$xpod" ] || { cri stopp "$xpod" >/dev/null 2>&1; cri rmp "$xpod" >/dev/null 2>&1; }
	ctd_stop "$n"
	kill "$dpid" 2>/dev/null
	wait "$dpid" 2>/dev/null
}
walkthrough_suite 1.6
! ctd_have_17 || walkthrough_suite 1.7

out=$("$INSTALL" --uninstall --build "$BUILD" --destdir "$DEST" --prefix "$PFX" --no-containerd 2>&1)
[ ! -e "$DEST$PFX/bin/kybernatectl" ] && [ ! -e "$DEST/etc/systemd/system/kybernated.service" ] &&
	pass "uninstall removes binaries and units" || fail "uninstall removes binaries and units" "$out"
[ -e "$DEST/etc/kybernate/kybernated.conf" ] && [ -d "$DEST/var/lib/kybernate" ] &&
	pass "uninstall keeps the config and the store" || fail "uninstall keeps the config and the store"

# ---- manifests -----------------------------------------------------------------------------

out=$(python3 - "$KYB_TOP/manifests" <<'EOF' 2>&1
import sys, yaml, os
d = sys.argv[1]
def load(n):
    docs = [x for x in yaml.safe_load_all(open(os.path.join(d, n))) if x is not None]
    assert len(docs) == 1, f"{n}: {len(docs)} documents"
    return docs[0]
def ok(cond, what):
    print(("PASS: " if cond else "FAIL: ") + what)
rc = load("runtimeclass.yaml")
ok(rc["apiVersion"] == "node.k8s.io/v1" and rc["kind"] == "RuntimeClass", "runtimeclass.yaml: node.k8s.io/v1 RuntimeClass")
ok(rc["metadata"]["name"] == "kybernate" and rc["handler"] == "kybernate", "runtimeclass.yaml: name and handler kybernate")
ns = load("namespace.yaml")
ok(ns["apiVersion"] == "v1" and ns["kind"] == "Namespace" and ns["metadata"]["name"] == "kybernate-demo", "namespace.yaml: Namespace kybernate-demo")
pods = {}
for n in ("cpu-test-pod.yaml", "cpu-restore-pod.yaml"):
    p = load(n)
    pods[n] = p
    ok(p["apiVersion"] == "v1" and p["kind"] == "Pod", f"{n}: v1 Pod")
    ok(p["metadata"]["namespace"] == "kybernate-demo", f"{n}: namespace kybernate-demo")
    ok(p["spec"]["runtimeClassName"] == "kybernate", f"{n}: runtimeClassName kybernate")
    ok(not p["spec"].get("shareProcessNamespace", False), f"{n}: own PID namespace")
    c = p["spec"]["containers"]
    ok(len(c) == 1 and c[0]["name"] == "counter", f"{n}: one container named counter")
    ok("busybox" in c[0]["image"], f"{n}: busybox image")
t, r = pods["cpu-test-pod.yaml"], pods["cpu-restore-pod.yaml"]
ok(t["metadata"]["name"] == "cpu-test", "cpu-test-pod.yaml: pod cpu-test")
cmd = " ".join(t["spec"]["containers"][0]["command"])
ok("i=0; while true; do echo $i; i=$((i+1)); sleep 1; done" in cmd, "cpu-test-pod.yaml: the counter loop")
ok(not any(e["name"] == "RESTORE_FROM" for e in t["spec"]["containers"][0].get("env", [])), "cpu-test-pod.yaml: no RESTORE_FROM")
env = {e["name"]: e.get("value") for e in r["spec"]["containers"][0].get("env", [])}
ok(env.get("RESTORE_FROM") == "kybernate-demo/cpu-test/counter", "cpu-restore-pod.yaml: RESTORE_FROM=kybernate-demo/cpu-test/counter")
ok(r["spec"]["containers"][0]["image"] == t["spec"]["containers"][0]["image"], "cpu-restore-pod.yaml: same image as cpu-test")
ok(r["metadata"]["name"] != t["metadata"]["name"], "cpu-restore-pod.yaml: a new pod name")
EOF
) || true
printf '%s\n' "$out"
_kyb_pass=$((_kyb_pass + $(grep -c '^PASS: ' <<<"$out")))
nf=$(grep -c '^FAIL: ' <<<"$out" || true)
[ "$(grep -c '^\(PASS\|FAIL\): ' <<<"$out")" -gt 0 ] || fail "manifests parse as YAML" "$out"
_kyb_fail=$((_kyb_fail + nf))

kyb_finish
