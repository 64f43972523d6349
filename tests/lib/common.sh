# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# Library for end-to-end test scripts (tests/e2e/*.sh). Source it:
#
#   . "$(dirname "$0")/../lib/common.sh"
#   require_root
#   require_cmd runc ctr
#   kyb_image_build
#   ctd_start infra-a            # private containerd 1.6 (or: ctd_start infra-b 1.7, or 2.1)
#   kyb_image_import "$KYB_NS"
#   ctr_ run --rm "$KYB_BUSYBOX" infra-c1 echo hello
#   expect_eq "hello from ctr run" "hello" "$out"
#   kyb_finish                   # exit status from the PASS/FAIL counts
#
# Results are printed as "PASS: name", "FAIL: name" and "SKIP: name (why)"
# lines, which tests/run counts. Exit 77 (with a SKIP line) means a prerequisite
# is truly absent. Everything registered with kyb_on_exit (and every containerd
# started with ctd_start) is cleaned up when the script exits, even on failure.
#
# Variables set here:
#   KYB_TOP          the repository root
#   BUILD            the build directory (absolute; tests/run sets it)
#   KYB_OPT          /opt/kybernate (what scripts/setup.sh installed)
#   KYB_TEST         this test's name (script name without .sh)
#   KYB_TMP          a private scratch directory, removed at exit
#   KYB_BUSYBOX      docker.io/kybernate/busybox:test (image reference)
#   KYB_PAUSE        docker.io/kybernate/pause:test (sandbox image: sleeps forever)
#   KYB_BUSYBOX_TAR, KYB_PAUSE_TAR   the OCI archives (after kyb_image_build)
#   KYB_RUNTIME      io.containerd.kybernate.v1 (our runtime, for ctr --runtime)
#   KYB_RUNC_RUNTIME io.containerd.runc.v2
#   KYB_CRI_HANDLER  kybernate (CRI runtime_handler of our runtime)
#   KYB_CRI_PROTO    the CRI api.proto; KYB_NODE_MODULES the grpc npm modules
#   KYB_CRI_CLIENT   tests/lib/cri-client.js
# After ctd_start NAME (or ctd_use NAME):
#   CTD_NAME CTD_VERSION CTD_ROOT CTD_STATE CTD_ADDR CTD_LOG CTD_PID CTD_CTR CTD_CONFIG
#   CTR              "ctr --address $CTD_ADDR" (as a string, for simple use)
#   KYB_NS           the namespace to use with ctr: NAME, or $KYB_CTD_NS if that
#                    was set when ctd_start ran
#   CTD_CRI_ENDPOINT unix://$CTD_ADDR (for cri-client.js)

# ---- basics -------------------------------------------------------------------

KYB_TOP=${KYB_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-$KYB_TOP/build}
case $BUILD in /*) ;; *) BUILD=$KYB_TOP/$BUILD ;; esac
KYB_OPT=${KYB_OPT:-/opt/kybernate}
KYB_TEST=${KYB_TEST:-$(basename "$0" .sh)}
export KYB_TOP BUILD KYB_OPT

# Root-owned programs first: /usr/local/sbin holds the CRIU >= 4 wrapper.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

KYB_BUSYBOX=docker.io/kybernate/busybox:test
KYB_PAUSE=docker.io/kybernate/pause:test
KYB_RUNTIME=io.containerd.kybernate.v1
KYB_RUNC_RUNTIME=io.containerd.runc.v2
KYB_CRI_HANDLER=kybernate
KYB_CRI_PROTO=${KYB_CRI_PROTO:-$KYB_OPT/cri-api/api.proto}
KYB_NODE_MODULES=${KYB_NODE_MODULES:-$KYB_OPT/node/node_modules}
KYB_CRI_CLIENT=$KYB_TOP/tests/lib/cri-client.js
KYB_CTD17_BIN=${KYB_CTD17_BIN:-$KYB_OPT/containerd-1.7/bin}
KYB_CTD21_BIN=${KYB_CTD21_BIN:-$KYB_OPT/containerd-2.1/bin}
KYB_IMAGES_DIR=${KYB_IMAGES_DIR:-$BUILD/test-images}
KYB_TEST_RUN=/run/kyb-test     # state dirs and sockets of private containerds
KYB_TEST_LIB=/var/lib/kyb-test # their root dirs

_kyb_pass=0 _kyb_fail=0 _kyb_skip=0

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

pass() {
	echo "PASS: $1"
	_kyb_pass=$((_kyb_pass + 1))
}

# fail NAME [DETAILS...]: details go to stderr (the test log), before the line.
fail() {
	local n=$1
	shift
	[ $# -eq 0 ] || printf '  %s\n' "$@" >&2
	echo "FAIL: $n"
	_kyb_fail=$((_kyb_fail + 1))
}

# skip NAME WHY
skip() {
	echo "SKIP: $1 (${2:-no reason given})"
	_kyb_skip=$((_kyb_skip + 1))
}

# skip_all WHY: the whole script cannot run here.
skip_all() {
	echo "SKIP: $KYB_TEST ($*)"
	exit 77
}

# die MSG: an error in the test itself (not a checked result): counts as FAIL.
die() {
	fail "$KYB_TEST" "$*"
	exit 1
}

# expect_eq NAME EXPECTED ACTUAL
expect_eq() {
	if [ "$2" == "$3" ]; then
		pass "$1"
	else
		fail "$1" "expected: '$2'" "actual:   '$3'"
		return 1
	fi
}

# expect_ne NAME UNEXPECTED ACTUAL
expect_ne() {
	if [ "$2" != "$3" ]; then
		pass "$1"
	else
		fail "$1" "did not expect: '$2'"
		return 1
	fi
}

# expect_contains NAME HAYSTACK NEEDLE
expect_contains() {
	if [[ $2 == *"$3"* ]]; then
		pass "$1"
	else
		fail "$1" "expected to contain: '$3'" "actual: '$(printf '%s' "$2" | head -c 2000)'"
		return 1
	fi
}

# expect_match NAME REGEX ACTUAL: ACTUAL matches the extended regular expression.
expect_match() {
	if [[ $3 =~ $2 ]]; then
		pass "$1"
	else
		fail "$1" "expected to match: '$2'" "actual: '$(printf '%s' "$3" | head -c 2000)'"
		return 1
	fi
}

# expect_ok NAME CMD...: the command succeeds (its output goes to the log).
expect_ok() {
	local n=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		pass "$n"
	else
		fail "$n" "command failed ($rc): $*" "$(printf '%s' "$out" | tail -n 30)"
		return 1
	fi
}

# expect_fail NAME CMD...: the command fails.
expect_fail() {
	local n=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		pass "$n"
	else
		fail "$n" "command unexpectedly succeeded: $*" "$(printf '%s' "$out" | tail -n 10)"
		return 1
	fi
}

# kyb_finish: exits 1 if any FAIL was printed, else 0.
kyb_finish() {
	log "$KYB_TEST: $_kyb_pass passed, $_kyb_fail failed, $_kyb_skip skipped"
	[ "$_kyb_fail" -eq 0 ] && exit 0
	exit 1
}

require_root() {
	[ "$(id -u)" -eq 0 ] || skip_all "needs root"
}

# require_cmd CMD...: skips the script when a command is absent.
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip_all "'$c' is not installed (run scripts/setup.sh)"
	done
}

# require_file PATH [WHAT]
require_file() {
	[ -e "$1" ] || skip_all "${2:-$1} is missing (run scripts/setup.sh)"
}

# require_build FILE...: a file under $BUILD (e.g. containerd-shim-kybernate-v1).
# Absent build products are a failure, not a skip: `make` should have built them.
require_build() {
	local f
	for f in "$@"; do
		[ -x "$BUILD/$f" ] || die "$BUILD/$f is not built (run make)"
	done
}

# kyb_wait TIMEOUT_SECONDS CMD...: retries CMD every 0.1 s until it succeeds.
kyb_wait() {
	local t=$1 end
	shift
	end=$((SECONDS + t))
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# kyb_wait_eval TIMEOUT_SECONDS 'SHELL CODE': like kyb_wait, but evaluates the
# code in this shell (so library functions such as ctr_ can be used).
kyb_wait_eval() {
	local t=$1 end
	end=$((SECONDS + t))
	until eval "$2" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# kyb_runc_counter RUNC_ROOT BUNDLE ID OUT [SCRIPT]: runs `sh -c SCRIPT` (by
# default a counter printing 0, 1, 2, ... a second) with runc in BUNDLE, whose
# rootfs/ must be filled (kyb_rootfs_build); config.json is made here. stdio
# are pipes (CRIU cannot dump a container whose stdout is a host file), the
# output goes to OUT; returns once it printed 2 (waiting KYB_COUNTER_WAIT
# seconds, default 10: a benchmark's process may take longer to start). Deleted at exit.
kyb_runc_counter() {
	local root=$1 bundle=$2 id=$3 out=$4 sin sout sleep_pid cat_pid
	# shellcheck disable=SC2016 # expanded by the container's sh
	local script=${5:-'i=0; while true; do echo $i; i=$((i+1)); sleep 1; done'}
	(cd "$bundle" && runc spec)
	jq --arg s "$script" '.process.terminal = false | .process.args = ["sh", "-c", $s]
	  | .root.readonly = false' "$bundle/config.json" >"$bundle/config.json.new"
	mv "$bundle/config.json.new" "$bundle/config.json"
	exec {sin}< <(exec sleep 1000000)
	sleep_pid=$!
	exec {sout}> >(exec cat >"$out")
	cat_pid=$!
	kyb_on_exit "runc --root '$root' delete -f $id >/dev/null 2>&1; kill $sleep_pid $cat_pid 2>/dev/null"
	runc --root "$root" run -d --bundle "$bundle" "$id" <&"$sin" >&"$sout" 2>&"$sout" || die "runc run failed"
	exec {sin}<&- {sout}>&-
	kyb_wait "${KYB_COUNTER_WAIT:-10}" grep -qx 2 "$out" || die "the counter does not count"
}

# kyb_runc_restore RUNC_ROOT BUNDLE ID IMAGE_PATH OUT: `runc restore -d` of ID
# from the CRIU images in IMAGE_PATH, in BUNDLE, with stdio on new pipes whose
# output goes to OUT (as kyb_runc_counter's); CRIU's work directory (and its
# restore.log) is OUT.work. Returns runc's status.
kyb_runc_restore() {
	local root=$1 bundle=$2 id=$3 images=$4 out=$5 sin sout sleep_pid cat_pid rc=0
	exec {sin}< <(exec sleep 1000000)
	sleep_pid=$!
	exec {sout}> >(exec cat >"$out")
	cat_pid=$!
	kyb_on_exit "kill $sleep_pid $cat_pid 2>/dev/null"
	mkdir -p "$out.work"
	runc --root "$root" restore -d --image-path "$images" --work-path "$out.work" --bundle "$bundle" "$id" \
		<&"$sin" >&"$sout" 2>&"$sout" || rc=$?
	exec {sin}<&- {sout}>&-
	return "$rc"
}

# ---- clean-up at exit ---------------------------------------------------------

_kyb_exit_cmds=()
# kyb_on_exit CMD...: runs CMD (as one eval'd string) at exit, last registered first.
kyb_on_exit() { _kyb_exit_cmds+=("$*"); }

# kyb_daemon_start STORE LOG_NAME [OPTION...]: a private kybernated for a test
# (no config file, store STORE, socket $KYBERNATE_SOCKET, the runc roots of
# containerd, durable=no, then OPTION...), waited for. Sets DAEMON_PID and
# DAEMON_LOG (STORE.log). kyb_daemon_stop: stops it; on a failed test the end
# of its log goes to stderr; the log is kept as
# build/test-logs/kybernated-LOG_NAME.log and the CRIU logs of its failed
# checkpoints (STORE/logs; the store goes with $KYB_TMP) as
# build/test-logs/criu-LOG_NAME. The test registers kyb_daemon_stop with
# kyb_on_exit once.
DAEMON_PID='' DAEMON_LOG='' DAEMON_LOG_NAME=''
kyb_daemon_start() {
	local store=$1
	DAEMON_LOG=$1.log DAEMON_LOG_NAME=$2
	shift 2
	"$BUILD/kybernated" --config /dev/null --store "$store" --socket "$KYBERNATE_SOCKET" \
		--runc-root-base /run/containerd/runc --durable=no "$@" >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	kyb_wait 10 "$BUILD/kybernatectl" status || die "kybernated did not come up: $(tail -n 20 "$DAEMON_LOG")"
}
kyb_daemon_stop() {
	[ -n "$DAEMON_PID" ] || return 0
	kill "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
	if [ "$_kyb_fail" -gt 0 ] && [ -f "$DAEMON_LOG" ]; then
		log "--- kybernated log:"
		tail -n 40 "$DAEMON_LOG" >&2
	fi
	mkdir -p "$BUILD/test-logs" && cp "$DAEMON_LOG" "$BUILD/test-logs/kybernated-$DAEMON_LOG_NAME.log" 2>/dev/null
	rm -rf "$BUILD/test-logs/criu-$DAEMON_LOG_NAME"
	if [ -d "${DAEMON_LOG%.log}/logs" ]; then
		cp -r "${DAEMON_LOG%.log}/logs" "$BUILD/test-logs/criu-$DAEMON_LOG_NAME" 2>/dev/null
	fi
	return 0
}

_kyb_exit() {
	local rc=$? i
	set +e
	for ((i = ${#_kyb_exit_cmds[@]} - 1; i >= 0; i--)); do
		eval "${_kyb_exit_cmds[i]}" >&2
	done
	exit "$rc"
}
trap _kyb_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# kyb_umount_below DIR...: detaches every mount at or below DIR (deepest first).
kyb_umount_below() {
	local -
	set +e
	local d m
	for d in "$@"; do
		d=$(realpath -m "$d")
		if [ -z "$d" ] || [ "$d" = / ]; then continue; fi
		# mountinfo field 5 is the mount point, with \040-style escapes.
		while read -r m; do
			m=$(printf '%b' "$m")
			umount -l "$m" 2>/dev/null || true
		done < <(awk -v d="$d" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
			awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-)
	done
}

# kyb_rm_tree DIR...: umounts below DIR, then removes it without crossing mounts.
kyb_rm_tree() {
	local -
	set +e
	local d
	for d in "$@"; do
		if [ -z "$d" ] || [ "$d" = / ]; then continue; fi
		[ -e "$d" ] || continue
		kyb_umount_below "$d"
		rm -rf --one-file-system -- "$d" 2>/dev/null ||
			log "warning: could not remove all of $d"
	done
}

KYB_TMP=$(mktemp -d "/tmp/kyb-$KYB_TEST.XXXXXX")
kyb_on_exit "kyb_rm_tree '$KYB_TMP'"

# ---- test images ----------------------------------------------------------------

# _kyb_blob DIR FILE: moves FILE into DIR/blobs/sha256 and prints its digest.
_kyb_blob() {
	local dir=$1 f=$2 h
	h=$(sha256sum "$f" | cut -d' ' -f1)
	mkdir -p "$dir/blobs/sha256"
	mv "$f" "$dir/blobs/sha256/$h"
	echo "$h"
}

# _kyb_oci_archive OUT LAYER_TAR REF CMD_JSON: writes the OCI archive OUT.
_kyb_oci_archive() {
	local out=$1 layer=$2 ref=$3 cmd=$4 d arch lh ls ch cs mh ms
	d=$(mktemp -d "$KYB_TMP/oci.XXXXXX")
	case $(uname -m) in
	x86_64) arch=amd64 ;;
	aarch64) arch=arm64 ;;
	*) arch=$(uname -m) ;;
	esac
	cp "$layer" "$d/layer.tar"
	lh=$(_kyb_blob "$d" "$d/layer.tar")
	ls=$(stat -c %s "$d/blobs/sha256/$lh")
	jq -cn --arg arch "$arch" --arg diff "sha256:$lh" --argjson cmd "$cmd" '{
		created: "1970-01-01T00:00:00Z", architecture: $arch, os: "linux",
		config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
		          Cmd: $cmd, WorkingDir: "/" },
		rootfs: { type: "layers", diff_ids: [$diff] },
		history: [{ created: "1970-01-01T00:00:00Z", created_by: "kybernate tests/lib/common.sh" }]
	}' >"$d/config.json"
	ch=$(_kyb_blob "$d" "$d/config.json")
	cs=$(stat -c %s "$d/blobs/sha256/$ch")
	jq -cn --arg c "sha256:$ch" --argjson cs "$cs" --arg l "sha256:$lh" --argjson ls "$ls" '{
		schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs },
		layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls }]
	}' >"$d/manifest.json"
	mh=$(_kyb_blob "$d" "$d/manifest.json")
	ms=$(stat -c %s "$d/blobs/sha256/$mh")
	echo '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
	jq -cn --arg m "sha256:$mh" --argjson ms "$ms" --arg ref "$ref" --arg arch "$arch" '{
		schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
		manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
		              platform: { architecture: $arch, os: "linux" },
		              annotations: { "org.opencontainers.image.ref.name": $ref,
		                             "io.containerd.image.name": $ref } }]
	}' >"$d/index.json"
	tar -C "$d" --owner=0 --group=0 --numeric-owner -cf "$out.tmp.$$" oci-layout index.json blobs
	mv "$out.tmp.$$" "$out"
	rm -rf --one-file-system "$d"
}

# kyb_rootfs_build DIR: fills DIR with the busybox root filesystem (busybox
# plus one symlink per applet in /bin, /etc/passwd, /tmp, ...).
kyb_rootfs_build() {
	local r=$1 bb a
	bb=$(command -v busybox) || die "busybox is not installed"
	file -L "$bb" 2>/dev/null | grep -q 'statically linked' ||
		{ [ -x /bin/busybox ] && bb=/bin/busybox; }
	mkdir -p "$r"/{bin,etc,tmp,proc,sys,dev,root,run,var/tmp,home}
	chmod 1777 "$r/tmp" "$r/var/tmp"
	cp "$bb" "$r/bin/busybox"
	for a in $("$r/bin/busybox" --list); do
		case $a in busybox | */* | .*) continue ;; esac
		[ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
	: >"$r/etc/hosts"
	: >"$r/etc/resolv.conf"
	echo kybernate-test >"$r/etc/hostname"
}

# kyb_image_build [DIR]: builds (once, cached) the two test image archives in
# DIR (default $BUILD/test-images): busybox.tar ($KYB_BUSYBOX, Cmd sh) and
# pause.tar ($KYB_PAUSE, sleeps forever, exits 0 on SIGTERM). Sets
# KYB_BUSYBOX_TAR, KYB_PAUSE_TAR.
kyb_image_build() {
	local dir=${1:-$KYB_IMAGES_DIR} r
	require_cmd busybox jq tar sha256sum
	KYB_IMAGES_DIR=$dir
	KYB_BUSYBOX_TAR=$dir/busybox.tar
	KYB_PAUSE_TAR=$dir/pause.tar
	if [ -s "$KYB_BUSYBOX_TAR" ] && [ -s "$KYB_PAUSE_TAR" ]; then
		return 0
	fi
	mkdir -p "$dir"
	r=$(mktemp -d "$KYB_TMP/rootfs.XXXXXX")
	kyb_rootfs_build "$r/rootfs"
	tar -C "$r/rootfs" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 \
		-cf "$r/layer.tar" .
	_kyb_oci_archive "$KYB_BUSYBOX_TAR" "$r/layer.tar" "$KYB_BUSYBOX" '["sh"]'
	_kyb_oci_archive "$KYB_PAUSE_TAR" "$r/layer.tar" "$KYB_PAUSE" \
		'["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"]'
	rm -rf --one-file-system "$r"
}

# kyb_image_import NS [IMAGE_TAR...]: imports the test images (default: both)
# into namespace NS of the current containerd (ctd_start/ctd_use).
kyb_image_import() {
	local ns=$1 t
	shift
	[ -n "${KYB_BUSYBOX_TAR:-}" ] || kyb_image_build "$KYB_IMAGES_DIR"
	[ $# -gt 0 ] || set -- "$KYB_BUSYBOX_TAR" "$KYB_PAUSE_TAR"
	for t in "$@"; do
		"$CTD_CTR" --address "$CTD_ADDR" -n "$ns" image import "$t" >/dev/null ||
			die "ctr image import $t into $ns failed"
	done
}

# ---- private containerd ---------------------------------------------------------------

_kyb_ctds=() # names started by this script

# ctd_use NAME: sets the CTD_* variables for an instance started by ctd_start.
ctd_use() {
	local n=$1
	CTD_NAME=$n
	CTD_ROOT=$KYB_TEST_LIB/$n
	CTD_STATE=$KYB_TEST_RUN/$n
	CTD_ADDR=$CTD_STATE/containerd.sock
	CTD_LOG=$KYB_TEST_RUN/$n.log
	CTD_CONFIG=$KYB_TEST_RUN/$n.toml
	CTD_PID=$(cat "$KYB_TEST_RUN/$n.pid" 2>/dev/null || true)
	CTD_VERSION=$(cat "$KYB_TEST_RUN/$n.version" 2>/dev/null || echo 1.6)
	case $CTD_VERSION in
	1.6) CTD_CTR=$(command -v ctr || echo /usr/bin/ctr) ;;
	*) CTD_CTR=$(ctd_bin_dir "$CTD_VERSION")/ctr ;;
	esac
	CTR="$CTD_CTR --address $CTD_ADDR"
	CTD_CRI_ENDPOINT=unix://$CTD_ADDR
	KYB_NS=$(cat "$KYB_TEST_RUN/$n.ns" 2>/dev/null || echo "$n")
	export CTD_NAME CTD_ROOT CTD_STATE CTD_ADDR CTD_LOG CTD_CONFIG CTD_PID CTD_VERSION CTD_CTR \
		CTR CTD_CRI_ENDPOINT KYB_NS
}

# ctr_ ARGS...: ctr against the current instance, in namespace $KYB_NS.
ctr_() { "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" "$@"; }

# A counter run with ctr (one number per line in its output file):
# kyb_ctr_run_bg ID OUT ARGS... runs `ctr run --rm --runtime $RT ARGS...` in
# the background, output to OUT, its task killed at exit; kyb_ctr_kill ID
# kills the task and waits until it is gone; kyb_first_number FILE and
# kyb_last_number FILE print its first and last number; kyb_wait_count FILE
# MIN waits (60 s at most) until FILE holds MIN numbers.
kyb_ctr_run_bg() {
	local id=$1 out=$2
	shift 2
	timeout -s KILL 300 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run --rm --runtime "$RT" "$@" >"$out" 2>&1 &
	kyb_on_exit "ctr_ task kill -s KILL $id >/dev/null 2>&1"
}
kyb_ctr_kill() {
	ctr_ task kill -s KILL "$1" >/dev/null 2>&1 || true
	kyb_wait 20 sh -c "! \"$CTD_CTR\" --address \"$CTD_ADDR\" -n \"$KYB_NS\" task ls | grep -q '^$1 '"
}
kyb_first_number() { grep -m1 -E '^[0-9]+$' "$1"; }
kyb_last_number() { grep -E '^[0-9]+$' "$1" | tail -n 1; }
kyb_wait_count() { kyb_wait 60 sh -c "[ \"\$(grep -cE '^[0-9]+$' '$1')\" -ge $2 ]"; }

# ctd_bin_dir VERSION: the directory of that containerd's binaries (1.7 and
# 2.1: the private prefixes scripts/setup.sh fills; 1.6: the host's).
ctd_bin_dir() {
	case $1 in
	1.7) echo "$KYB_CTD17_BIN" ;;
	2.1) echo "$KYB_CTD21_BIN" ;;
	*) dirname "$(command -v containerd || echo /usr/bin/containerd)" ;;
	esac
}

# ctd_have VERSION: true when that containerd (with its ctr) is installed.
ctd_have() {
	local d
	d=$(ctd_bin_dir "$1")
	[ -x "$d/containerd" ] && [ -x "$d/ctr" ]
}

# ctd_have_17: true when containerd 1.7 is installed in the private prefix.
ctd_have_17() { ctd_have 1.7; }

# ctd_major [VERSION]: the major number of VERSION (default: the current
# instance's), for assertions on behaviour that changed in containerd 2.
ctd_major() {
	local v=${1:-$CTD_VERSION}
	echo "${v%%.*}"
}

# ctd_cri_runtimes VERSION: the TOML table holding the CRI runtime handlers in
# the config of that containerd (it moved in 2.x), for KYB_CTD_EXTRA_CONFIG:
#   KYB_CTD_EXTRA_CONFIG="[$(ctd_cri_runtimes "$v").myhandler] ..." ctd_start NAME "$v"
ctd_cri_runtimes() {
	if [ "$(ctd_major "$1")" -ge 2 ]; then
		echo 'plugins."io.containerd.cri.v1.runtime".containerd.runtimes'
	else
		echo 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes'
	fi
}

# _ctd_config: writes $CTD_CONFIG for the current instance.
_ctd_config() {
	mkdir -p "$CTD_ROOT/cni-conf" "$CTD_ROOT/cni-bin"
	if [ "$(ctd_major)" -ge 2 ]; then
		_ctd_config_v3
		return
	fi
	cat >"$CTD_CONFIG" <<EOF
# Generated by kybernate tests/lib/common.sh for the test instance "$CTD_NAME".
version = 2
root = "$CTD_ROOT"
state = "$CTD_STATE"
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "$CTD_ADDR"

[ttrpc]
  address = "$CTD_ADDR.ttrpc"

[debug]
  level = "${KYB_CTD_LOG_LEVEL:-info}"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$KYB_PAUSE"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "$KYB_RUNC_RUNTIME"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$KYB_CRI_HANDLER]
      runtime_type = "$KYB_RUNTIME"
      # a pod's kybernate.io/restore-from reaches its containers (pod checkpoints)
      pod_annotations = ["kybernate.io/*"]
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CTD_ROOT/cni-bin"
    conf_dir = "$CTD_ROOT/cni-conf"

[plugins."io.containerd.runtime.v1.linux"]
  shim_debug = false
EOF
}

# _ctd_config_v3: the same for containerd 2.x, in its config format 3: the CRI
# plugin is split into io.containerd.cri.v1.images (snapshotter; the sandbox
# image is pinned_images.sandbox) and io.containerd.cri.v1.runtime (runtimes,
# oom_score_adj, CNI); io.containerd.grpc.v1.cri keeps the streaming server;
# the v1 linux runtime is gone.
_ctd_config_v3() {
	cat >"$CTD_CONFIG" <<EOF
# Generated by kybernate tests/lib/common.sh for the test instance "$CTD_NAME".
version = 3
root = "$CTD_ROOT"
state = "$CTD_STATE"
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
  "io.containerd.nri.v1.nri",
]

[grpc]
  address = "$CTD_ADDR"

[ttrpc]
  address = "$CTD_ADDR.ttrpc"

[debug]
  level = "${KYB_CTD_LOG_LEVEL:-info}"

[metrics]
  address = ""

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$KYB_PAUSE"

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  enable_cdi = false
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "$KYB_RUNC_RUNTIME"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.$KYB_CRI_HANDLER]
      runtime_type = "$KYB_RUNTIME"
      # a pod's kybernate.io/restore-from reaches its containers (pod checkpoints)
      pod_annotations = ["kybernate.io/*"]
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$CTD_ROOT/cni-bin"]
    conf_dir = "$CTD_ROOT/cni-conf"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
}

# ctd_start NAME [VERSION]: starts a private containerd named NAME (1.6 from the
# host, 1.7 from $KYB_CTD17_BIN or 2.1 from $KYB_CTD21_BIN), with its own root,
# state dir, socket and config, and waits until it answers. PATH for it (and
# so for its shims) starts with $BUILD, where containerd-shim-kybernate-v1 is.
# Stopped automatically at exit. Extra config can be appended through
# KYB_CTD_EXTRA_CONFIG (TOML text) before the call (the CRI runtimes' table:
# ctd_cri_runtimes VERSION).
ctd_start() {
	local n=$1 v=${2:-1.6}
	[[ $n =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$ ]] || die "bad containerd instance name '$n'"
	case $v in
	1.6) command -v containerd >/dev/null || skip_all "containerd is not installed" ;;
	1.7 | 2.1) ctd_have "$v" || skip_all "containerd $v is not installed in $(ctd_bin_dir "$v") (run scripts/setup.sh)" ;;
	*) die "ctd_start: unknown containerd version '$v' (1.6, 1.7 or 2.1)" ;;
	esac
	mkdir -p "$KYB_TEST_RUN" "$KYB_TEST_LIB"
	# A leftover of an earlier run with the same name goes first.
	if [ -e "$KYB_TEST_RUN/$n.pid" ] || [ -e "$KYB_TEST_RUN/$n" ] || [ -e "$KYB_TEST_LIB/$n" ]; then
		log "ctd_start: cleaning up leftovers of instance $n"
		ctd_stop "$n"
	fi
	echo "$v" >"$KYB_TEST_RUN/$n.version"
	echo "${KYB_CTD_NS:-$n}" >"$KYB_TEST_RUN/$n.ns"
	ctd_use "$n"
	mkdir -p "$CTD_ROOT" "$CTD_STATE"
	_ctd_config
	[ -z "${KYB_CTD_EXTRA_CONFIG:-}" ] || printf '%s\n' "$KYB_CTD_EXTRA_CONFIG" >>"$CTD_CONFIG"
	_kyb_ctds+=("$n")
	kyb_on_exit "ctd_stop '$n'"
	: >"$CTD_LOG"
	_ctd_launch
	log "containerd $v started as $n (pid $CTD_PID, socket $CTD_ADDR, namespace $KYB_NS)"
}

# _ctd_launch: starts containerd for the current instance and waits for it.
_ctd_launch() {
	local bin path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	if [ "$CTD_VERSION" = 1.6 ]; then
		bin=$(command -v containerd)
		path=$BUILD:$path
	else
		# Its own runc shim comes first, before the host's 1.6 one.
		bin=$(ctd_bin_dir "$CTD_VERSION")/containerd
		path=$BUILD:$(ctd_bin_dir "$CTD_VERSION"):$path
	fi
	# KYB_CTD_PATH_PREFIX: directories searched first (e.g. a criu wrapper for the shim's runc).
	[ -z "${KYB_CTD_PATH_PREFIX:-}" ] || path=$KYB_CTD_PATH_PREFIX:$path
	PATH=$path setsid "$bin" --config "$CTD_CONFIG" >>"$CTD_LOG" 2>&1 </dev/null &
	CTD_PID=$!
	echo "$CTD_PID" >"$KYB_TEST_RUN/$CTD_NAME.pid"
	if ! kyb_wait 30 "$CTD_CTR" --address "$CTD_ADDR" version; then
		tail -n 30 "$CTD_LOG" >&2
		die "containerd $CTD_VERSION ($CTD_NAME) did not answer on $CTD_ADDR within 30 s"
	fi
	kill -0 "$CTD_PID" 2>/dev/null || die "containerd $CTD_VERSION ($CTD_NAME) exited"
}

# ctd_restart [NAME]: kills containerd (SIGKILL; its shims and containers live
# on) and starts it again on the same root, state and config: the way to test
# that a shim is found again after a containerd restart.
ctd_restart() {
	[ $# -eq 0 ] || ctd_use "$1"
	if [ -n "$CTD_PID" ] && kill -0 "$CTD_PID" 2>/dev/null; then
		kill -KILL "$CTD_PID"
		kyb_wait 10 sh -c "! kill -0 $CTD_PID" || die "containerd $CTD_NAME did not die"
	fi
	_ctd_launch
	log "containerd $CTD_VERSION restarted as $CTD_NAME (pid $CTD_PID)"
}

# ctd_bundle ID [NS]: the bundle directory of task ID in the current instance.
ctd_bundle() { echo "$CTD_STATE/io.containerd.runtime.v2.task/${2:-$KYB_NS}/$1"; }

# ctr_task_status ID: RUNNING, STOPPED, CREATED, PAUSED... (empty if no task).
ctr_task_status() { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }

# _ctd_shim_pids SOCK: pids of shims started by the containerd at SOCK: an
# argument is SOCK and the command line names containerd-shim. Two greps over
# all of /proc (a fork per process took 10 s of every ctd_stop on a busy machine).
_ctd_shim_pids() {
	local -
	set +e
	grep -lsxzF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null | xargs -r grep -lszF containerd-shim 2>/dev/null |
		sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p'
}

# ctd_stop NAME: stops the instance NAME: kills its containerd, the containers
# and shims it started, detaches mounts below its directories and removes them.
ctd_stop() {
	local -
	set +e
	local n=$1 pid sock p f id nsdir ns h
	[[ $n =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$ ]] || return 0
	local state=$KYB_TEST_RUN/$n root=$KYB_TEST_LIB/$n
	sock=$state/containerd.sock
	pid=$(cat "$KYB_TEST_RUN/$n.pid" 2>/dev/null || true)
	# containerd first, so it restarts nothing.
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		[[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *"containerd --config $KYB_TEST_RUN/$n.toml"* ]]; then
		kill -TERM "$pid" 2>/dev/null
		kyb_wait 10 sh -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null
	fi
	# The containers: every bundle has init.pid; then the runc state and the
	# shim's socket (/run/containerd/s/<sha256(address/ns/id)>).
	if [ -d "$state/io.containerd.runtime.v2.task" ]; then
		for nsdir in "$state"/io.containerd.runtime.v2.task/*/; do
			[ -d "$nsdir" ] || continue
			ns=$(basename "$nsdir")
			for f in "$nsdir"*/; do
				id=$(basename "$f")
				p=$(cat "$f/init.pid" 2>/dev/null || true)
				[[ $p =~ ^[0-9]+$ ]] && kill -KILL "$p" 2>/dev/null
				runc --root "/run/containerd/runc/$ns" delete --force "$id" >/dev/null 2>&1
				h=$(printf '%s' "$sock/$ns/$id" | sha256sum | cut -d' ' -f1)
				rm -f "/run/containerd/s/$h" "/run/containerd/s/$h.debug"
			done
			rmdir "/run/containerd/runc/$ns" 2>/dev/null
			# ctr's containers live in cgroup /<ns>/<id>: drop the empty
			# /<ns> (rmdir fails on a cgroup still in use; k8s.io is shared).
			[ "$ns" = k8s.io ] || rmdir /sys/fs/cgroup/*/"$ns" 2>/dev/null
		done
	fi
	for p in $(_ctd_shim_pids "$sock"); do
		kill -KILL "$p" 2>/dev/null
	done
	kyb_rm_tree "$state" "$root"
	rm -f "$KYB_TEST_RUN/$n.pid" "$KYB_TEST_RUN/$n.version" "$KYB_TEST_RUN/$n.ns" "$KYB_TEST_RUN/$n.toml"
	# Keep the log next to the test's log when the test failed.
	if [ -f "$KYB_TEST_RUN/$n.log" ]; then
		if [ "$_kyb_fail" -gt 0 ]; then
			log "--- last lines of containerd log $n:"
			tail -n 40 "$KYB_TEST_RUN/$n.log" >&2
		fi
		mkdir -p "$BUILD/test-logs" 2>/dev/null && mv "$KYB_TEST_RUN/$n.log" "$BUILD/test-logs/containerd-$n.log" 2>/dev/null
		rm -f "$KYB_TEST_RUN/$n.log"
	fi
	return 0
}

# ctd_cni_bridge BRIDGE SUBNET: gives the current instance a CNI network, so
# that CRI pods with network POD get a network namespace of their own (the
# containers of a pod then share its loopback): the host's plugins
# (/usr/lib/cni: bridge, host-local) linked into its cni-bin and one bridge
# network (BRIDGE, at most 15 characters; SUBNET like 10.233.7.0/24; IP
# addresses kept in $CTD_ROOT/ipam). Waits until the CRI plugin reports
# NetworkReady (it reloads its CNI config on its own). The bridge is deleted
# at exit. Pick a BRIDGE and SUBNET of its own for every instance that runs
# at the same time as another.
_ctd_network_ready() {
	[ "$(cri status | jq -r '.status.conditions[] | select(.type == "NetworkReady") | .status')" = true ]
}
ctd_cni_bridge() {
	local br=$1 subnet=$2 d=${KYB_CNI_PLUGINS:-/usr/lib/cni} p
	[ ${#br} -le 15 ] || die "ctd_cni_bridge: bridge name '$br' is longer than 15 characters"
	require_cmd ip
	for p in bridge host-local loopback; do
		[ -x "$d/$p" ] || skip_all "CNI plugin $d/$p is missing (containernetworking-plugins; run scripts/setup.sh)"
	done
	mkdir -p "$CTD_ROOT/cni-bin" "$CTD_ROOT/cni-conf" "$CTD_ROOT/ipam"
	ln -sf "$d"/* "$CTD_ROOT/cni-bin/"
	jq -n --arg br "$br" --arg subnet "$subnet" --arg ipam "$CTD_ROOT/ipam" '{cniVersion: "0.4.0",
		name: ("kyb-" + $br), plugins: [{type: "bridge", bridge: $br, isGateway: true, ipMasq: false,
		ipam: {type: "host-local", ranges: [[{subnet: $subnet}]], dataDir: $ipam}}]}' \
		>"$CTD_ROOT/cni-conf/10-kyb.conflist"
	kyb_on_exit "ip link del '$br' >/dev/null 2>&1"
	kyb_wait_eval 30 _ctd_network_ready ||
		die "containerd $CTD_VERSION ($CTD_NAME) did not load the CNI network: $(cri status 2>&1 | jq -c . 2>&1)"
}

# ---- CRI client ------------------------------------------------------------------------

# cri ARGS...: tests/lib/cri-client.js against the current instance.
cri() { node "$KYB_CRI_CLIENT" --endpoint "$CTD_CRI_ENDPOINT" "$@"; }

# cri_pod_json NAME UID LOG_DIR: a pod sandbox config (host network) on stdout.
cri_pod_json() {
	jq -n --arg n "$1" --arg u "$2" --arg d "$3" '{metadata: {name: $n, uid: $u,
		namespace: "default", attempt: 0}, log_directory: $d,
		linux: {security_context: {namespace_options: {network: "NODE"}}}}'
}

# cri_ctr_json NAME LOG_PATH CMD...: a container config for $KYB_BUSYBOX
# (PID namespace of its own: CONTAINER) on stdout.
cri_ctr_json() {
	local n=$1 l=$2 a cmd
	shift 2
	cmd=$(for a in "$@"; do jq -n --arg a "$a" '$a'; done | jq -cs .)
	jq -n --arg n "$n" --arg l "$l" --arg img "$KYB_BUSYBOX" --argjson cmd "$cmd" '{metadata: {name: $n,
		attempt: 0}, image: {image: $img}, command: $cmd, log_path: $l,
		linux: {security_context: {namespace_options: {pid: "CONTAINER"}}}}'
}

# require_cri: skips when the CRI client cannot run here.
require_cri() {
	require_cmd node
	require_file "$KYB_CRI_PROTO" "the CRI api.proto"
	require_file "$KYB_NODE_MODULES/@grpc/grpc-js" "npm @grpc/grpc-js"
	require_file "$KYB_NODE_MODULES/@grpc/proto-loader" "npm @grpc/proto-loader"
}
