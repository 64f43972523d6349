#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs everything the build and the tests need on a Debian or Ubuntu host.
# Idempotent: every step checks first, and a run on a complete machine takes a
# second or two and prints one line.
#
#   scripts/setup.sh           install what is missing
#   scripts/setup.sh --check   report what is missing, change nothing (exit 1 if any)
#   scripts/setup.sh --verbose say what is checked
# Environment: KYB_OPT (default /opt/kybernate), KYB_SETUP_EXTRA_PKGS (more
# host packages), KYB_TRIXIE_MIRROR (default http://deb.debian.org/debian; sid
# comes from the same mirror).
#
# What it provides:
#   - host packages (compiler, protobuf-c, libsystemd, sqlite3, cjson, clang +
#     libFuzzer runtime, runc, containerd 1.6, iptables, busybox-static, ...);
#   - CRIU >= 4: the host's criu when `criu check` passes, it is >= 4 and it
#     dumps a process holding a TCP socket, else sid's criu (4.2) with trixie's
#     libraries unpacked into $KYB_OPT/criu and run through that
#     directory's own dynamic loader by the wrapper /usr/local/sbin/criu (which
#     precedes /usr/sbin in PATH, so runc finds it first);
#   - checkpointctl from trixie, same prefix, wrapper /usr/local/bin/checkpointctl;
#   - containerd 1.7 from trixie in $KYB_OPT/containerd-1.7/bin and containerd
#     2.1 from sid in $KYB_OPT/containerd-2.1/bin (containerd, ctr and its runc
#     shim; they need only glibc 2.34); the host's containerd and runc stay as
#     they are (sid's runc needs a newer glibc);
#   - the CRI api.proto from trixie's golang-github-kubernetes-cri-api-dev,
#     without its gogoproto options, as $KYB_OPT/cri-api/api.proto;
#   - npm's @grpc/grpc-js and @grpc/proto-loader in $KYB_OPT/node/node_modules;
#   - a private registry for the tests: docker-registry (CNCF distribution),
#     skopeo, zstd (pulled zstd layers), htpasswd (apache2-utils), openssl, curl,
#     and podman (the peer bench/cross-node-bench.sh measures against). The package's own system
#     service is stopped and disabled: tests start their own registry on a free
#     loopback port, and nothing may be left listening on port 5000.
#
# trixie packages are fetched with a PRIVATE apt sources file and list
# directory under $KYB_OPT/apt (sid's under $KYB_OPT/apt-sid); the host's apt
# sources are never touched (adding trixie there would let the next install pull
# Debian 13's libc into the host).
set -euo pipefail

KYB_OPT=${KYB_OPT:-/opt/kybernate}
TRIXIE_MIRROR=${KYB_TRIXIE_MIRROR:-http://deb.debian.org/debian}
CHECK_ONLY=0
VERBOSE=0

for a in "$@"; do
	case $a in
	--check) CHECK_ONLY=1 ;;
	--verbose | -v) VERBOSE=1 ;;
	-h | --help)
		sed -n '3,14p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "setup.sh: unknown option '$a' (try --help)" >&2
		exit 2
		;;
	esac
done

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C

missing=()   # descriptions of what is (or was) missing
did=()       # descriptions of what this run installed

say() { [ "$VERBOSE" -eq 0 ] || echo "setup: $*"; }
note() { echo "setup: $*"; }
die() {
	echo "setup: ERROR: $*" >&2
	exit 1
}

need_root() {
	[ "$(id -u)" -eq 0 ] || die "$1 is missing and installing it needs root (run as root, or see --check)"
}

# --- host packages ----------------------------------------------------------

HOST_PKGS=(build-essential gcc make pkg-config git ca-certificates
	protobuf-c-compiler libprotobuf-c-dev libsystemd-dev libsqlite3-dev libcjson-dev
	clang runc containerd iptables iproute2 busybox-static sqlite3 util-linux
	tmux systemd tar jq shellcheck debian-archive-keyring xz-utils python3-yaml
	cppcheck clang-format clang-tidy containernetworking-plugins)

apt_updated=0
host_apt_update() {
	[ "$apt_updated" -eq 0 ] || return 0
	apt_updated=1
	note "apt-get update (host sources)"
	# A host may list extra sources that are unreachable here; what matters is
	# that the Debian lists refresh, so a failure is only a warning.
	if ! apt-get -q update >/tmp/kyb-setup-apt-update.log 2>&1; then
		note "warning: apt-get update reported errors (see /tmp/kyb-setup-apt-update.log); going on"
	fi
}

host_apt_install() {
	need_root "host packages ($*)"
	host_apt_update
	note "apt-get install $*"
	if ! apt-get -q -y -o DPkg::Lock::Timeout=300 --no-install-recommends install "$@" \
		>/tmp/kyb-setup-apt-install.log 2>&1; then
		tail -n 20 /tmp/kyb-setup-apt-install.log >&2
		die "apt-get install $* failed (full log: /tmp/kyb-setup-apt-install.log)"
	fi
	did+=("apt: $*")
}

# Prints the packages of "$@" that are not installed.
pkgs_missing() {
	local p st
	for p in "$@"; do
		st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
		[[ $st == ii* ]] || echo "$p"
	done
}

step_host_packages() {
	command -v dpkg-query >/dev/null || die "this script supports Debian/Ubuntu hosts only (no dpkg-query)"
	local want=("${HOST_PKGS[@]}") todo extra
	# KYB_SETUP_EXTRA_PKGS: more host packages, space separated.
	read -r -a extra <<<"${KYB_SETUP_EXTRA_PKGS:-}"
	want+=("${extra[@]}")
	# Node.js: any node + npm in PATH will do (a host may have its own build).
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		want+=(nodejs npm)
	fi
	mapfile -t todo < <(pkgs_missing "${want[@]}")
	if [ ${#todo[@]} -gt 0 ]; then
		missing+=("host packages: ${todo[*]}")
		[ "$CHECK_ONLY" -eq 1 ] || host_apt_install "${todo[@]}"
	fi
	# libFuzzer runtime matching the installed clang.
	if command -v clang >/dev/null; then
		local major rt
		major=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
		rt=libclang-rt-$major-dev
		if [ -n "$major" ] && [ -n "$(pkgs_missing "$rt")" ]; then
			if [ "$CHECK_ONLY" -eq 0 ]; then host_apt_update; fi
			if apt-cache show "$rt" >/dev/null 2>&1; then
				missing+=("host package: $rt (libFuzzer runtime)")
				[ "$CHECK_ONLY" -eq 1 ] || host_apt_install "$rt"
			else
				# Older distributions ship the runtime in libclang-common-N-dev.
				say "no package $rt here; the fuzz targets need clang's libFuzzer runtime"
			fi
		fi
	fi
	say "host packages ok"
}

# --- private trixie apt -----------------------------------------------------

APT_DIR=$KYB_OPT/apt
# suite_apt_opts DIR: apt options for the private sources and lists in DIR.
suite_apt_opts() {
	printf '%s\n' \
		-o "Dir::Etc::SourceList=$1/etc/sources.list" \
		-o "Dir::Etc::SourceParts=-" \
		-o "Dir::Etc::Preferences=/dev/null" \
		-o "Dir::Etc::PreferencesParts=-" \
		-o "Dir::State::Lists=$1/lists" \
		-o "Dir::State::status=/dev/null" \
		-o "Dir::Cache=$1/cache" \
		-o "APT::Default-Release=" \
		-o "APT::Sandbox::User=root"
}
trixie_apt_opts() { suite_apt_opts "$APT_DIR"; }

trixie_updated=0
trixie_update() {
	[ "$trixie_updated" -eq 0 ] || return 0
	local opts
	mapfile -t opts < <(trixie_apt_opts)
	mkdir -p "$APT_DIR/etc" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[ -r "$keyring" ] || die "missing $keyring (install debian-archive-keyring)"
	echo "deb [signed-by=$keyring] $TRIXIE_MIRROR trixie main" >"$APT_DIR/etc/sources.list"
	note "apt-get update (private trixie lists in $APT_DIR)"
	if ! apt-get -q "${opts[@]}" update >"$APT_DIR/update.log" 2>&1; then
		tail -n 20 "$APT_DIR/update.log" >&2
		die "could not fetch the trixie package lists from $TRIXIE_MIRROR (log: $APT_DIR/update.log)"
	fi
	trixie_updated=1
}

# trixie_download DIR PKG... : downloads the .debs of PKG... (exact names)
# into DIR. Refreshes the private lists once if they are absent or stale.
trixie_download() {
	local dir=$1 opts
	shift
	mapfile -t opts < <(trixie_apt_opts)
	if [ ! -e "$APT_DIR/etc/sources.list" ] || ! compgen -G "$APT_DIR/lists/*Packages*" >/dev/null; then
		trixie_update
	fi
	mkdir -p "$dir"
	if ! (cd "$dir" && apt-get -q "${opts[@]}" download "$@") >"$dir/download.log" 2>&1; then
		[ "$trixie_updated" -eq 0 ] || { tail -n 20 "$dir/download.log" >&2; die "apt-get download $* (trixie) failed"; }
		trixie_update
		if ! (cd "$dir" && apt-get -q "${opts[@]}" download "$@") >"$dir/download.log" 2>&1; then
			tail -n 20 "$dir/download.log" >&2
			die "apt-get download $* (trixie) failed (log: $dir/download.log)"
		fi
	fi
}

# trixie_closure PKG... : PKG and everything it depends on, recursively (trixie).
trixie_closure() {
	local opts
	mapfile -t opts < <(trixie_apt_opts)
	apt-cache "${opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances "$@" 2>/dev/null | grep -v '^ ' | grep -v '^<' | sort -u
}

# sid_download DIR PKG... : downloads the .debs of PKG... from Debian's sid
# suite into DIR, through a private sources file and list directory of its own
# ($SID_APT_DIR: kept apart from trixie's, where the same package names would
# then resolve to sid's versions). Fetches the lists on each call: they change
# daily, and only an install calls this.
SID_APT_DIR=$KYB_OPT/apt-sid
sid_download() {
	local dir=$1 opts
	shift
	mapfile -t opts < <(suite_apt_opts "$SID_APT_DIR")
	mkdir -p "$SID_APT_DIR/etc" "$SID_APT_DIR/lists/partial" "$SID_APT_DIR/cache/archives/partial" "$dir"
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[ -r "$keyring" ] || die "missing $keyring (install debian-archive-keyring)"
	echo "deb [signed-by=$keyring] $TRIXIE_MIRROR sid main" >"$SID_APT_DIR/etc/sources.list"
	note "apt-get update (private sid lists in $SID_APT_DIR)"
	if ! apt-get -q "${opts[@]}" update >"$SID_APT_DIR/update.log" 2>&1; then
		tail -n 20 "$SID_APT_DIR/update.log" >&2
		die "could not fetch the sid package lists from $TRIXIE_MIRROR (log: $SID_APT_DIR/update.log)"
	fi
	if ! (cd "$dir" && apt-get -q "${opts[@]}" download "$@") >"$dir/download.log" 2>&1; then
		tail -n 20 "$dir/download.log" >&2
		die "apt-get download $* (sid) failed (log: $dir/download.log)"
	fi
}

# Multiarch triplet and loader name of this host.
case $(uname -m) in
x86_64) TRIPLET=x86_64-linux-gnu LDSO=ld-linux-x86-64.so.2 ;;
aarch64) TRIPLET=aarch64-linux-gnu LDSO=ld-linux-aarch64.so.1 ;;
*) TRIPLET='' LDSO='' ;;
esac

STAGE=
cleanup_stage() { [ -z "$STAGE" ] || rm -rf --one-file-system "$STAGE"; }
trap cleanup_stage EXIT
new_stage() {
	cleanup_stage
	STAGE=$(mktemp -d /tmp/kyb-setup.XXXXXX)
}

# replace_dir NEW DEST: moves NEW into place as DEST (the old DEST goes away).
replace_dir() {
	local new=$1 dest=$2
	if [ -e "$dest" ]; then
		mv "$dest" "$dest.old.$$"
		rm -rf --one-file-system "$dest.old.$$"
	fi
	mkdir -p "$(dirname "$dest")"
	mv "$new" "$dest"
}

# --- CRIU >= 4 ----------------------------------------------------------------

CRIU_PREFIX=$KYB_OPT/criu
CRIU_WRAPPER=/usr/local/sbin/criu
CKCTL_WRAPPER=/usr/local/bin/checkpointctl
CRIU_PKGS=(criu)
# From sid, over trixie's libraries: criu 4.2, which dumps inet sockets on
# Linux >= 6.16 (criu_dumps), and what it needs newer than trixie has.
CRIU_SID_PKGS=(criu libcompel1 libnet9 libnl-3-200)
CKCTL_PKGS=(checkpointctl)

criu_major() { "$1" --version 2>/dev/null | sed -n 's/^Version: *\([0-9]*\).*/\1/p' | head -n 1; }

# criu_good PATH: the binary is CRIU >= 4 and `criu check` says it works.
criu_good() {
	local c=$1 m
	[ -x "$c" ] || return 1
	m=$(criu_major "$c")
	[ -n "$m" ] && [ "$m" -ge 4 ] || return 1
	local out
	out=$("$c" check 2>&1) || return 1
	[[ $out == *"Looks good"* ]]
}

# criu_dumps PATH: PATH really dumps a process holding a TCP socket, within
# 20 s. `criu check` passes on virtual machines whose hypervisor does not
# deliver hardware breakpoints to the guest; there, CRIU arms one to catch the
# parasite's sigreturn and waits for the trap forever (seen on Firecracker
# guests: every dump hung after "new_sp="). And CRIU 4.1 cannot dump any inet
# socket on Linux >= 6.16 (its getsockopt(SO_PASSCRED) on one fails with
# EOPNOTSUPP since the kernel limited that option to Unix and netlink sockets):
# a server, or two containers of a pod talking over loopback, would not dump.
# The listener must not hold our lock (fd 9): CRIU refuses to dump file locks.
criu_dumps() {
	local c=$1 d pid rc
	d=$(mktemp -d /tmp/kyb-criu-probe.XXXXXX)
	pid=$(setsid sh -c 'busybox nc -l -p 0 </dev/null >/dev/null 2>&1 & echo $!' 9>&-)
	sleep 0.2
	timeout -s KILL 20 "$c" dump -t "$pid" -D "$d" --shell-job -o dump.log >/dev/null 2>&1
	rc=$?
	[ "$VERBOSE" -eq 0 ] || [ "$rc" -eq 0 ] || tail -n 5 "$d/dump.log" >&2
	kill -KILL "$pid" 2>/dev/null
	pkill -KILL -f "dump -t $pid -D $d" 2>/dev/null
	rm -rf --one-file-system "$d"
	return $rc
}

# criu_dumps_without_breakpoints PATH: PATH dumps with hardware breakpoints
# switched off (CRIU_FAULT=130, CRIU's own switch for guests without them: it
# stops the task with PTRACE_SYSCALL instead).
criu_dumps_without_breakpoints() {
	CRIU_FAULT=130 criu_dumps "$1"
}

# ckctl_good PATH: checkpointctl runs (it has no version command).
ckctl_good() {
	local out
	out=$("$1" --help 2>/dev/null) || return 1
	[[ $out == *"checkpoint archives"* ]]
}

# write_wrapper PATH BIN NAME [ENV-LINE]: a wrapper running BIN from the private
# prefix; ENV-LINE (a shell line) goes before the exec.
write_wrapper() {
	local path=$1 bin=$2 name=$3 env=${4:-} tmp
	tmp=$(mktemp "$path.XXXXXX")
	cat >"$tmp" <<EOF
#!/bin/sh
# Generated by kybernate scripts/setup.sh: runs $name from Debian's packages
# unpacked in $CRIU_PREFIX, through that directory's own dynamic loader. The
# library path is given to the loader only (not LD_LIBRARY_PATH), so programs
# $name runs (iptables-restore, tar, ip) use the host's libraries.
P=$CRIU_PREFIX
$env
exec "\$P/usr/lib/$TRIPLET/$LDSO" --library-path "\$P/usr/lib/$TRIPLET:\$P/lib/$TRIPLET" \\
	--argv0 "\$0" "\$P$bin" "\$@"
EOF
	chmod 0755 "$tmp"
	mv "$tmp" "$path"
}

# Unpacks trixie's checkpointctl and criu's libraries (libc included) and sid's
# criu (CRIU_SID_PKGS) into $CRIU_PREFIX.
install_criu_prefix() {
	need_root "CRIU >= 4"
	[ -n "$TRIPLET" ] || die "no private CRIU for architecture $(uname -m); install CRIU >= 4 by hand"
	new_stage
	local pkgs
	trixie_update
	mapfile -t pkgs < <(trixie_closure "${CRIU_PKGS[@]}" "${CKCTL_PKGS[@]}")
	[ ${#pkgs[@]} -gt 0 ] || die "could not resolve the dependencies of criu in trixie"
	note "fetching trixie's ${CRIU_PKGS[*]} ${CKCTL_PKGS[*]} and ${#pkgs[@]} packages of libraries"
	trixie_download "$STAGE/debs" "${pkgs[@]}"
	mkdir -p "$STAGE/root"
	local d
	note "fetching sid's ${CRIU_SID_PKGS[*]}"
	sid_download "$STAGE/sid" "${CRIU_SID_PKGS[@]}"
	for d in "$STAGE"/debs/*.deb "$STAGE"/sid/*.deb; do
		dpkg-deb -x "$d" "$STAGE/root"
	done
	[ -x "$STAGE/root/usr/sbin/criu" ] || die "sid's criu package has no /usr/sbin/criu"
	[ -x "$STAGE/root/usr/lib/$TRIPLET/$LDSO" ] || die "trixie's libc6 has no /usr/lib/$TRIPLET/$LDSO"
	# Keep only what is run: drop documentation.
	rm -rf "$STAGE/root/usr/share/doc" "$STAGE/root/usr/share/man" "$STAGE/root/usr/share/locale"
	printf '%s\n' "${pkgs[@]}" "${CRIU_SID_PKGS[@]/%/ (sid)}" >"$STAGE/root/PACKAGES"
	replace_dir "$STAGE/root" "$CRIU_PREFIX"
	did+=("sid criu + trixie checkpointctl in $CRIU_PREFIX")
}

NO_BP_LINE='# This machine does not deliver hardware breakpoints (a dump hung): CRIU stops
# tasks with PTRACE_SYSCALL instead.
export CRIU_FAULT=130'

# criu_wrap_prefix: writes the wrapper of the prefix's criu, without hardware
# breakpoints where the machine needs that; fails if it does not work.
criu_wrap_prefix() {
	write_wrapper "$CRIU_WRAPPER" /usr/sbin/criu criu
	criu_good "$CRIU_WRAPPER" || return 1
	criu_dumps "$CRIU_WRAPPER" && return 0
	criu_dumps_without_breakpoints "$CRIU_WRAPPER" || return 1
	write_wrapper "$CRIU_WRAPPER" /usr/sbin/criu criu "$NO_BP_LINE"
	note "criu: this machine does not deliver hardware breakpoints; the wrapper sets CRIU_FAULT=130"
}

step_criu() {
	# 1. our wrapper is in place and works
	if [ -x "$CRIU_WRAPPER" ] && criu_good "$CRIU_WRAPPER" && criu_dumps "$CRIU_WRAPPER"; then
		say "criu ok ($CRIU_WRAPPER)"
		return 0
	fi
	# 2. the distribution's criu is good enough (and no stale wrapper hides it)
	local c
	for c in /usr/sbin/criu /usr/bin/criu; do
		[ ! -e "$CRIU_WRAPPER" ] && criu_good "$c" || continue
		if criu_dumps "$c"; then
			say "criu ok ($c)"
			return 0
		fi
		if [ "$CHECK_ONLY" -eq 0 ] && criu_dumps_without_breakpoints "$c"; then
			printf '#!/bin/sh\n# Generated by kybernate scripts/setup.sh.\n%s\nexec %s "$@"\n' \
				"$NO_BP_LINE" "$c" >"$CRIU_WRAPPER"
			chmod 0755 "$CRIU_WRAPPER"
			did+=("criu wrapper $CRIU_WRAPPER for $c without hardware breakpoints")
			return 0
		fi
	done
	missing+=("CRIU >= 4 that passes 'criu check' and dumps")
	[ "$CHECK_ONLY" -eq 0 ] || return 0
	# A prefix unpacked by an earlier run may hold an older criu, or be
	# damaged: unpack it afresh once.
	[ -x "$CRIU_PREFIX/usr/sbin/criu" ] || install_criu_prefix
	if ! criu_wrap_prefix; then
		install_criu_prefix
		criu_wrap_prefix || die "$CRIU_WRAPPER does not pass 'criu check' or cannot dump a process holding a TCP socket"
	fi
	did+=("criu wrapper $CRIU_WRAPPER ($("$CRIU_WRAPPER" --version | head -n 1))")
}

step_checkpointctl() {
	local c
	c=$(command -v checkpointctl || true)
	if [ -n "$c" ] && ckctl_good "$c"; then
		say "checkpointctl ok ($c)"
		return 0
	fi
	missing+=("checkpointctl")
	[ "$CHECK_ONLY" -eq 0 ] || return 0
	[ -x "$CRIU_PREFIX/usr/bin/checkpointctl" ] || install_criu_prefix
	write_wrapper "$CKCTL_WRAPPER" /usr/bin/checkpointctl checkpointctl
	ckctl_good "$CKCTL_WRAPPER" || die "$CKCTL_WRAPPER does not run"
	did+=("checkpointctl wrapper $CKCTL_WRAPPER")
}

# --- containerd 1.7 -----------------------------------------------------------

CTD17=$KYB_OPT/containerd-1.7
step_containerd17() {
	if [ -x "$CTD17/bin/containerd" ] && [ -x "$CTD17/bin/ctr" ] &&
		[ -x "$CTD17/bin/containerd-shim-runc-v2" ] &&
		[[ $("$CTD17/bin/containerd" --version 2>/dev/null) == *" 1.7."* ]]; then
		say "containerd 1.7 ok ($CTD17)"
		return 0
	fi
	missing+=("containerd 1.7 in $CTD17")
	[ "$CHECK_ONLY" -eq 0 ] || return 0
	need_root "containerd 1.7"
	new_stage
	note "fetching trixie's containerd (1.7) into $CTD17"
	trixie_download "$STAGE/debs" containerd
	dpkg-deb -x "$STAGE"/debs/containerd_*.deb "$STAGE/x"
	mkdir -p "$STAGE/new/bin"
	local b
	for b in containerd ctr containerd-shim-runc-v2; do
		[ -x "$STAGE/x/usr/bin/$b" ] || die "trixie's containerd package has no /usr/bin/$b"
		cp -p "$STAGE/x/usr/bin/$b" "$STAGE/new/bin/"
	done
	[[ $("$STAGE/new/bin/containerd" --version) == *" 1.7."* ]] ||
		die "trixie's containerd is not 1.7: $("$STAGE/new/bin/containerd" --version)"
	replace_dir "$STAGE/new" "$CTD17"
	did+=("containerd 1.7 in $CTD17")
}

# --- containerd 2.1 -----------------------------------------------------------

CTD21=$KYB_OPT/containerd-2.1
step_containerd21() {
	if [ -x "$CTD21/bin/containerd" ] && [ -x "$CTD21/bin/ctr" ] &&
		[ -x "$CTD21/bin/containerd-shim-runc-v2" ] &&
		[[ $("$CTD21/bin/containerd" --version 2>/dev/null) == *" 2.1."* ]]; then
		say "containerd 2.1 ok ($CTD21)"
		return 0
	fi
	missing+=("containerd 2.1 in $CTD21")
	[ "$CHECK_ONLY" -eq 0 ] || return 0
	need_root "containerd 2.1"
	new_stage
	note "fetching sid's containerd (2.1) into $CTD21"
	sid_download "$STAGE/debs" containerd
	dpkg-deb -x "$STAGE"/debs/containerd_*.deb "$STAGE/x"
	mkdir -p "$STAGE/new/bin"
	local b
	for b in containerd ctr containerd-shim-runc-v2; do
		[ -x "$STAGE/x/usr/bin/$b" ] || die "sid's containerd package has no /usr/bin/$b"
		cp -p "$STAGE/x/usr/bin/$b" "$STAGE/new/bin/"
	done
	[[ $("$STAGE/new/bin/containerd" --version) == *" 2.1."* ]] ||
		die "sid's containerd is not 2.1: $("$STAGE/new/bin/containerd" --version)"
	replace_dir "$STAGE/new" "$CTD21"
	did+=("containerd 2.1 in $CTD21")
}

# --- CRI api.proto ------------------------------------------------------------

CRI_PROTO=$KYB_OPT/cri-api/api.proto
step_cri_proto() {
	if [ -s "$CRI_PROTO" ] && grep -q '^service RuntimeService' "$CRI_PROTO"; then
		say "CRI api.proto ok ($CRI_PROTO)"
		return 0
	fi
	missing+=("CRI api.proto ($CRI_PROTO)")
	[ "$CHECK_ONLY" -eq 0 ] || return 0
	need_root "CRI api.proto"
	new_stage
	note "fetching trixie's golang-github-kubernetes-cri-api-dev for the CRI api.proto"
	trixie_download "$STAGE/debs" golang-github-kubernetes-cri-api-dev
	dpkg-deb -x "$STAGE"/debs/golang-github-kubernetes-cri-api-dev_*.deb "$STAGE/x"
	local src
	src=$(find "$STAGE/x" -path '*/cri-api/pkg/apis/runtime/v1/api.proto' | head -n 1)
	[ -n "$src" ] || die "no runtime/v1/api.proto in golang-github-kubernetes-cri-api-dev"
	mkdir -p "$(dirname "$CRI_PROTO")"
	# The gogoproto import and options only matter to Go code generators.
	sed -e '/gogoproto/d' "$src" >"$CRI_PROTO.tmp"
	grep -q '^service RuntimeService' "$CRI_PROTO.tmp" || die "unexpected api.proto content"
	mv "$CRI_PROTO.tmp" "$CRI_PROTO"
	did+=("CRI api.proto in $CRI_PROTO")
}

# --- npm packages for the CRI test client ----------------------------------------

NODE_PREFIX=$KYB_OPT/node
NPM_PKGS=("@grpc/grpc-js@^1" "@grpc/proto-loader@^0.7")
step_node_modules() {
	if [ -f "$NODE_PREFIX/node_modules/@grpc/grpc-js/package.json" ] &&
		[ -f "$NODE_PREFIX/node_modules/@grpc/proto-loader/package.json" ]; then
		say "node modules ok ($NODE_PREFIX/node_modules)"
		return 0
	fi
	missing+=("npm @grpc/grpc-js @grpc/proto-loader in $NODE_PREFIX")
	[ "$CHECK_ONLY" -eq 0 ] || return 0
	need_root "npm packages"
	command -v npm >/dev/null || die "npm is not installed"
	mkdir -p "$NODE_PREFIX"
	[ -f "$NODE_PREFIX/package.json" ] || echo '{"name":"kybernate-test-deps","private":true}' >"$NODE_PREFIX/package.json"
	note "npm install ${NPM_PKGS[*]} into $NODE_PREFIX"
	if ! npm --prefix "$NODE_PREFIX" install --no-audit --no-fund --loglevel=error "${NPM_PKGS[@]}" \
		>"$NODE_PREFIX/npm-install.log" 2>&1; then
		tail -n 20 "$NODE_PREFIX/npm-install.log" >&2
		die "npm install failed (log: $NODE_PREFIX/npm-install.log)"
	fi
	node -e "require('$NODE_PREFIX/node_modules/@grpc/grpc-js'); require('$NODE_PREFIX/node_modules/@grpc/proto-loader')" ||
		die "the installed grpc modules do not load"
	did+=("npm grpc modules in $NODE_PREFIX")
}

# --- registry for the tests -------------------------------------------------------

REGISTRY_PKGS=(docker-registry skopeo zstd apache2-utils openssl curl podman)
REGISTRY_BIN=/usr/bin/docker-registry

# registry_service_pids: pids of docker-registry processes started by the
# package's init script or unit (they serve /etc/docker/registry/config.yml);
# test registries serve a config under /tmp and are left alone.
registry_service_pids() {
	local p cmd
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$REGISTRY_BIN" ] || continue
		cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		[[ $cmd == *" /etc/docker/registry/config.yml"* ]] && echo "${p#/proc/}"
	done
	return 0
}

# registry_service_enabled: the package's service would start at boot.
registry_service_enabled() {
	compgen -G '/etc/rc[2-5].d/S*docker-registry' >/dev/null ||
		[ -e /etc/systemd/system/multi-user.target.wants/docker-registry.service ]
}

step_registry() {
	local todo pids p
	mapfile -t todo < <(pkgs_missing "${REGISTRY_PKGS[@]}")
	if [ ${#todo[@]} -gt 0 ]; then
		missing+=("registry packages: ${todo[*]}")
		[ "$CHECK_ONLY" -eq 1 ] || host_apt_install "${todo[@]}"
	fi
	[ -x "$REGISTRY_BIN" ] || return 0 # --check on a machine without it
	mapfile -t pids < <(registry_service_pids)
	if [ ${#pids[@]} -gt 0 ] || registry_service_enabled; then
		missing+=("docker-registry's system service stopped and disabled")
		[ "$CHECK_ONLY" -eq 0 ] || return 0
		need_root "stopping docker-registry's system service"
		if [ -x /etc/init.d/docker-registry ]; then
			/etc/init.d/docker-registry stop >/dev/null 2>&1 || true
			update-rc.d docker-registry disable >/dev/null 2>&1 || true
		fi
		if [ -e /etc/systemd/system/multi-user.target.wants/docker-registry.service ]; then
			systemctl disable docker-registry.service >/dev/null 2>&1 ||
				rm -f /etc/systemd/system/multi-user.target.wants/docker-registry.service
		fi
		for p in $(registry_service_pids); do kill -TERM "$p" 2>/dev/null || true; done
		sleep 0.5
		for p in $(registry_service_pids); do kill -KILL "$p" 2>/dev/null || true; done
		[ -z "$(registry_service_pids)" ] || die "docker-registry's system service does not stop"
		registry_service_enabled && die "docker-registry's system service is still enabled"
		did+=("docker-registry's system service stopped and disabled")
	fi
	say "registry tools ok (docker-registry, skopeo $(skopeo --version 2>/dev/null | awk '{print $3}'))"
}

# --- main -----------------------------------------------------------------------

if [ "$CHECK_ONLY" -eq 0 ] && [ "$(id -u)" -eq 0 ]; then
	# Several runs at once (parallel sessions, CI) must not unpack into the
	# same directories together.
	mkdir -p "$KYB_OPT"
	exec 9>"$KYB_OPT/.setup.lock"
	flock 9
fi

start=$SECONDS
step_host_packages
step_criu
step_checkpointctl
step_containerd17
step_containerd21
step_cri_proto
step_node_modules
step_registry

if [ "$CHECK_ONLY" -eq 1 ]; then
	if [ ${#missing[@]} -eq 0 ]; then
		echo "setup: all present"
		exit 0
	fi
	for m in "${missing[@]}"; do echo "setup: missing: $m"; done
	exit 1
fi

criu_v=$(criu --version 2>/dev/null | sed -n 's/^Version: *//p' | head -n 1)
if [ ${#did[@]} -eq 0 ]; then
	echo "setup: all present (criu $criu_v, containerd $(containerd --version | awk '{print $3}') + 1.7 in $CTD17 + 2.1 in $CTD21)"
else
	for d in "${did[@]}"; do echo "setup: installed: $d"; done
	echo "setup: done in $((SECONDS - start))s (criu $criu_v)"
fi
