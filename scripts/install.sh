#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs Kybernate on a node and registers its runtime with containerd.
#
#   scripts/install.sh [OPTIONS]              install (as root)
#   scripts/install.sh --dry-run [OPTIONS]    print what would change, change nothing
#   scripts/install.sh --uninstall [OPTIONS]  remove binaries, units and the runtime entry
#
# What it does, each step skipped when already done (a second run changes nothing):
#   1. builds the binaries with `make` if the build directory lacks them;
#   2. `make install`: containerd-shim-kybernate-v1 and kybernatectl into
#      PREFIX/bin, kybernated into PREFIX/sbin, kybernated.service and
#      kybernated.socket into the unit directory;
#   3. /etc/kybernate/kybernated.conf from kybernated.conf.example (only if absent),
#      /var/lib/kybernate (mode 0700);
#   4. registers the runtime in containerd's configuration: the CRI runtime
#      handler "kybernate" with runtime_type "io.containerd.kybernate.v1" and
#      pod_annotations = ["kybernate.io/*"] (a pod's restore-from reaches its containers), in
#      /etc/containerd/config.toml (config version 1, 2 or 3; a missing or empty
#      file gets a minimal version 2 one) and in MicroK8s' containerd template
#      when MicroK8s is installed. The old file is kept once as
#      <file>.kybernate.bak; the change is shown as a unified diff.
#   5. with --enable, `systemctl enable --now kybernated.socket`.
# containerd is NOT restarted unless --restart-containerd is given; the command
# to run is printed instead.
#
# Options:
#   -n, --dry-run            print the changes (diffs of containerd's files) only
#       --uninstall          undo: binaries, units, the runtime entry (the store
#                            /var/lib/kybernate and /etc/kybernate stay)
#       --config PATH        containerd configuration to edit (repeatable); default
#                            /etc/containerd/config.toml when containerd is installed
#                            or that file exists
#       --microk8s-template PATH  MicroK8s template to edit (repeatable); default
#                            /var/snap/microk8s/current/args/containerd-template.toml
#                            if it exists and no --config was given
#       --no-containerd      do not touch any containerd configuration
#       --only-containerd    only the containerd configuration (no binaries, units, dirs)
#       --handler NAME       CRI runtime handler name (default kybernate)
#       --runtime-path PATH  also set runtime_path (the shim binary containerd runs);
#                            set automatically when PREFIX/bin is not a usual PATH directory
#       --build DIR          build directory holding the binaries (default ./build)
#       --prefix DIR         installation prefix (default /usr/local, or $PREFIX)
#       --destdir DIR        stage everything below DIR (default $DESTDIR); also the
#                            default containerd config moves below DIR; nothing is
#                            enabled or restarted
#       --unitdir DIR        systemd unit directory (default PREFIX/lib/systemd/system
#                            for /usr and /usr/local, else /etc/systemd/system)
#       --containerd BIN     containerd binary used to check edited files (default:
#                            the one in PATH; "none" to skip the check)
#       --enable             systemctl enable --now kybernated.socket (systemd only)
#       --restart-containerd restart containerd after a change (systemd only)
#       --no-restart         do not restart containerd (the default)
#   -q, --quiet              only warnings, errors and diffs
#   -h, --help               this text
# Exit codes: 0 done (or nothing to do), 1 failure, 2 usage error, 3 a
# containerd file has a conflicting "kybernate" runtime (left unchanged).
set -euo pipefail
export LC_ALL=C

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=install.sh
RUNTIME_TYPE=io.containerd.kybernate.v1
SHIM_NAME=containerd-shim-kybernate-v1
MICROK8S_TEMPLATE_DEFAULT=/var/snap/microk8s/current/args/containerd-template.toml
# The first line of every block this script adds (uninstall finds them by it).
MARKER='# Added by Kybernate scripts/install.sh'

DRY_RUN=0 UNINSTALL=0 QUIET=0 ENABLE=0 RESTART=0
NO_CTD=0 ONLY_CTD=0
HANDLER=kybernate
RUNTIME_PATH=
BUILD_DIR=${KYB_INSTALL_BUILD:-$TOP/build}
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
UNITDIR=
CTD_BIN=
CONFIGS=()
TEMPLATES=()

usage() { sed -n '3,50p' "$0" | sed 's/^# \{0,1\}//'; }
die() {
	echo "$PROG: error: $*" >&2
	exit 1
}
usage_error() {
	echo "$PROG: $* (try --help)" >&2
	exit 2
}
warn() { echo "$PROG: warning: $*" >&2; }
say() { [ "$QUIET" -eq 1 ] || echo "$PROG: $*"; }

need_arg() { if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "option $1 needs a value"; fi; }
while [ $# -gt 0 ]; do
	case $1 in
	-n | --dry-run) DRY_RUN=1 ;;
	--uninstall) UNINSTALL=1 ;;
	--config) need_arg "$@"; CONFIGS+=("$2"); shift ;;
	--config=*) CONFIGS+=("${1#*=}") ;;
	--microk8s-template) need_arg "$@"; TEMPLATES+=("$2"); shift ;;
	--microk8s-template=*) TEMPLATES+=("${1#*=}") ;;
	--no-containerd) NO_CTD=1 ;;
	--only-containerd) ONLY_CTD=1 ;;
	--handler) need_arg "$@"; HANDLER=$2; shift ;;
	--handler=*) HANDLER=${1#*=} ;;
	--runtime-path) need_arg "$@"; RUNTIME_PATH=$2; shift ;;
	--runtime-path=*) RUNTIME_PATH=${1#*=} ;;
	--build) need_arg "$@"; BUILD_DIR=$2; shift ;;
	--build=*) BUILD_DIR=${1#*=} ;;
	--prefix) need_arg "$@"; PREFIX=$2; shift ;;
	--prefix=*) PREFIX=${1#*=} ;;
	--destdir) need_arg "$@"; DESTDIR=$2; shift ;;
	--destdir=*) DESTDIR=${1#*=} ;;
	--unitdir) need_arg "$@"; UNITDIR=$2; shift ;;
	--unitdir=*) UNITDIR=${1#*=} ;;
	--containerd) need_arg "$@"; CTD_BIN=$2; shift ;;
	--containerd=*) CTD_BIN=${1#*=} ;;
	--enable) ENABLE=1 ;;
	--restart-containerd) RESTART=1 ;;
	--no-restart) RESTART=0 ;;
	-q | --quiet) QUIET=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*) usage_error "unknown option '$1'" ;;
	esac
	shift
done

# ---- validation -------------------------------------------------------------------

[[ $HANDLER =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]] ||
	usage_error "invalid --handler '$HANDLER' (letters, digits, '_', '.', '-')"
for v in "$PREFIX" "${UNITDIR:-/x}" "${RUNTIME_PATH:-/x}"; do
	[[ $v == /* ]] || usage_error "'$v' must be an absolute path"
	[[ $v != *[[:space:]\"\'\\\|]* ]] || usage_error "'$v': no spaces, quotes, '|' or backslashes please"
done
[ -z "$DESTDIR" ] || [[ $DESTDIR == /* ]] || DESTDIR=$(pwd)/$DESTDIR
DESTDIR=${DESTDIR%/}
PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || usage_error "--prefix / is not supported (use /usr)"
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$(pwd)/$BUILD_DIR ;; esac
BUILD_DIR=${BUILD_DIR%/}
# make takes these unquoted in its recipes
for v in "$DESTDIR" "$BUILD_DIR"; do
	[[ $v != *[[:space:]\"\'\\\|\$]* ]] || usage_error "'$v': no spaces, quotes, '|', '\$' or backslashes please"
done
[ "$NO_CTD" -eq 0 ] || [ "$ONLY_CTD" -eq 0 ] || usage_error "--no-containerd and --only-containerd exclude each other"

BINDIR=$PREFIX/bin
SBINDIR=$PREFIX/sbin
if [ -z "$UNITDIR" ]; then
	case $PREFIX in
	/usr | /usr/local) UNITDIR=$PREFIX/lib/systemd/system ;;
	*) UNITDIR=/etc/systemd/system ;;
	esac
fi
# containerd finds shims through its PATH; a binary elsewhere needs runtime_path.
if [ -z "$RUNTIME_PATH" ]; then
	case $BINDIR in
	/usr/local/bin | /usr/bin | /bin | /usr/local/sbin | /usr/sbin | /sbin) ;;
	*) RUNTIME_PATH=$BINDIR/$SHIM_NAME ;;
	esac
fi

systemd_running() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

if [ "$DRY_RUN" -eq 0 ] && [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
	die "run as root (or use --dry-run, or --destdir to stage the files)"
fi

# Which containerd files to edit.
if [ "$NO_CTD" -eq 0 ] && [ ${#CONFIGS[@]} -eq 0 ] && [ ${#TEMPLATES[@]} -eq 0 ]; then
	std=$DESTDIR/etc/containerd/config.toml
	if [ -e "$std" ] || { [ -z "$DESTDIR" ] && command -v containerd >/dev/null; }; then
		CONFIGS+=("$std")
	fi
	[ ! -e "$DESTDIR$MICROK8S_TEMPLATE_DEFAULT" ] || TEMPLATES+=("$DESTDIR$MICROK8S_TEMPLATE_DEFAULT")
	if [ ${#CONFIGS[@]} -eq 0 ] && [ ${#TEMPLATES[@]} -eq 0 ]; then
		warn "no containerd found (no containerd in PATH, no $std, no MicroK8s): the runtime is not registered; use --config PATH"
	fi
fi
CTD_BIN_GIVEN=1
if [ -z "$CTD_BIN" ]; then
	CTD_BIN_GIVEN=0
	CTD_BIN=$(command -v containerd || true)
	[ -n "$CTD_BIN" ] || CTD_BIN=none
fi
MICROK8S_CTD=/snap/microk8s/current/bin/containerd

TMPD=$(mktemp -d /tmp/kybernate-install.XXXXXX)
trap 'rm -rf --one-file-system "$TMPD"' EXIT

# ---- containerd configuration: text-level TOML editing ------------------------------
#
# toml_edit MODE FILE OUT: MODE add or remove. Writes the new content to OUT and
# prints status lines: "status unchanged|changed|conflict VALUE",
# "version N", "warn TEXT", "note TEXT".
# Tables are recognised by their headers, normalised (whitespace and quotes
# dropped), so [plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes."x"] and
# the usual spelling are the same table. Lines inside multi-line strings are not
# taken for headers.
toml_edit() {
	local mode=$1 file=$2 out=$3
	local src=/dev/null
	[ ! -s "$file" ] || src=$file
	awk -v mode="$mode" -v handler="$HANDLER" -v rtype="$RUNTIME_TYPE" -v rpath="$RUNTIME_PATH" \
		-v marker="$MARKER" -v out="$out" '
	function norm(h,   s) {
		s = h
		sub(/^[ \t]*\[+/, "", s)
		sub(/\]+[ \t]*(#.*)?$/, "", s)
		gsub(/[ \t"\047]/, "", s)
		return s
	}
	function under(name, p) { return name == p || index(name, p ".") == 1 }
	function indent_of(s) { match(s, /^[ \t]*/); return substr(s, 1, RLENGTH) }
	function strval(s,   v) {
		v = s
		sub(/^[^=]*=[ \t]*/, "", v)
		sub(/[ \t]*(#.*)?$/, "", v)
		gsub(/^["\047]|["\047]$/, "", v)
		return v
	}
	# the last line of the section that starts with header i: before the next
	# header, without the blank and comment lines that lead into that header.
	function section_end(i,   j, e) {
		e = n
		for (j = i + 1; j <= nh; j++) if (hline[j] > hline[i]) { e = hline[j] - 1; break }
		while (e > hline[i] && (line[e] ~ /^[ \t]*$/ || line[e] ~ /^[ \t]*#/)) e--
		return e
	}
	{
		line[++n] = $0
		ml = $0
		# multi-line strings: an odd number of delimiters toggles
		c1 = gsub(/"""/, "", ml); c2 = gsub(/\047\047\047/, "", ml)
		if (!inml && $0 ~ /^[ \t]*\[/) {
			nh++; hline[nh] = n; hname[nh] = norm($0); hraw[nh] = $0
			cur = hname[nh]
		} else if (!inml) {
			if ($0 !~ /^[ \t]*(#.*)?$/) content = 1
			if (nh == 0 && $0 ~ /^[ \t]*version[ \t]*=/) version = strval($0) + 0
			if ($0 ~ /^[ \t]*default_runtime_name[ \t]*=/) defname[cur] = strval($0)
			if ($0 ~ /^[ \t]*runtime_type[ \t]*=/) rt[cur] = strval($0)
			if ($0 ~ /^[ \t]*pod_annotations[ \t]*=/ && index($0, "kybernate.io/")) podann[cur] = 1
			if ($0 !~ /^[ \t]*#/ && index($0, rtype)) mention[n] = 1
		}
		if (c1 % 2 || c2 % 2) inml = !inml
		if (nh > 0 && hline[nh] == n) content = 1
	}
	END {
		if (!content) version = 0
		if (version >= 3) prefix = "plugins.io.containerd.cri.v1.runtime"
		else if (version == 2) prefix = "plugins.io.containerd.grpc.v1.cri"
		else if (content) prefix = "plugins.cri"
		else prefix = "plugins.io.containerd.grpc.v1.cri"
		printf "version %d\n", (content ? (version < 1 ? 1 : version) : 2)
		if (content && version < 2)
			print "note no version line: containerd reads this file as version 1 ([plugins.cri]); version 2 is recommended"
		rts = prefix ".containerd.runtimes"
		mine = rts "." handler
		for (i = 1; i <= nh; i++) if (hname[i] == mine) found = i

		if (mode == "add") {
			if (found) {
				if (rt[mine] == rtype) {
					if (!(mine in podann))
						print "note runtime " handler " has no pod_annotations = [\"kybernate.io/*\"]: a pod\047s kybernate.io/restore-from does not reach its containers (pod checkpoints); add it by hand"
					print "status unchanged"; exit 0
				}
				print "status conflict " (rt[mine] == "" ? "(none)" : rt[mine]); exit 0
			}
			for (k in mention) {
				print "warn " rtype " is already named on line " k " (not in a [" rts "." handler "] table); leaving the file as it is"
				print "status unchanged"; exit 0
			}
			# A runtimes table in the file replaces the built-in list: when the
			# default runtime (runc unless default_runtime_name says otherwise) is not
			# in the file, it must be added with ours or every plain pod breaks.
			dname = (prefix ".containerd") in defname ? defname[prefix ".containerd"] : "runc"
			need_runc = 1
			for (i = 1; i <= nh; i++) if (hname[i] == rts ".runc") need_runc = 0
			if (dname != "runc") need_runc = 0
			# where: after the last runtime, else after the containerd table, else
			# after the plugin table, else at the end
			at = 0; ind = ""
			for (i = 1; i <= nh; i++) if (index(hname[i], rts ".") == 1) ref = i
			if (!ref) for (i = 1; i <= nh; i++) if (under(hname[i], prefix ".containerd")) ref = i
			if (!ref) for (i = 1; i <= nh; i++) if (under(hname[i], prefix)) ref = i
			if (ref) {
				at = section_end(ref)
				# indentation: that of the existing runtimes, else of the reference header
				ind = indent_of(hraw[ref])
				for (i = 1; i <= nh; i++) if (index(hname[i], rts ".") == 1) { ind = indent_of(hraw[i]); break }
			} else at = n
			tbl = rts; hdr = ""
			# header spelling as in the configuration
			if (prefix == "plugins.cri") hdr = "plugins.cri.containerd.runtimes"
			else if (prefix == "plugins.io.containerd.cri.v1.runtime") hdr = "plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes"
			else hdr = "plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes"
			blk = ""
			if (need_runc) {
				blk = blk "\n" ind marker ": containerd default runtime, listed because a\n"
				blk = blk ind "# runtimes table in this file replaces containerd\047s built-in list.\n"
				blk = blk ind "[" hdr ".runc]\n" ind "  runtime_type = \"io.containerd.runc.v2\"\n"
			}
			blk = blk "\n" ind marker ": checkpoint/restore runtime (RESTORE_FROM).\n"
			blk = blk ind "[" hdr "." handler "]\n" ind "  runtime_type = \"" rtype "\"\n"
			if (rpath != "") blk = blk ind "  runtime_path = \"" rpath "\"\n"
			# containerd hands a pod\047s annotations matching these on to its
			# containers: kybernate.io/restore-from on a pod restores it whole
			blk = blk ind "  pod_annotations = [\"kybernate.io/*\"]\n"
			if (!content) {
				printf "" > out
				for (i = 1; i <= n; i++) print line[i] > out
				if (n > 0 && line[n] !~ /^[ \t]*$/) print "" > out
				printf "version = 2\n%s", blk > out
			} else {
				for (i = 1; i <= at; i++) print line[i] > out
				printf "%s", blk > out
				for (i = at + 1; i <= n; i++) print line[i] > out
			}
			close(out)
			print "status changed"
			exit 0
		}

		# remove: our handler table with its subtables (and the marker comment
		# and blank line before it), and a runc block this script added
		del = 0
		for (i = 1; i <= nh; i++) {
			h = hname[i]
			if (h != mine && h != rts ".runc") continue
			s = hline[i]
			m = s - 1
			while (m > 0 && line[m] ~ /^[ \t]*#/ && index(line[m], marker) == 0) m--
			hasmark = (m > 0 && index(line[m], marker) > 0)
			if (h != mine && !hasmark) continue
			if (hasmark) { s = m; if (s > 1 && line[s - 1] ~ /^[ \t]*$/) s-- }
			e = section_end(i)
			for (k = s; k <= e; k++) gone[k] = 1
			drop[h] = 1
			del = 1
		}
		# subtables (.options ...) of a removed table, wherever they are
		for (i = 1; i <= nh; i++)
			for (h in drop)
				if (index(hname[i], h ".") == 1) {
					e = section_end(i)
					for (k = hline[i]; k <= e; k++) gone[k] = 1
				}
		if (!del) { print "status unchanged"; exit 0 }
		printf "" > out
		for (i = 1; i <= n; i++) if (!(i in gone)) print line[i] > out
		close(out)
		print "status changed"
	}' "$src"
}

# ctd_check FILE: `containerd config dump` of FILE succeeds (prints the dump).
ctd_check() {
	[ "$CTD_BIN" != none ] || return 2
	"$CTD_BIN" --config "$1" config dump 2>"$TMPD/ctd-check.err"
}

CHANGED_FILES=()
CONFLICT=0
# edit_ctd_file FILE KIND: KIND is config or microk8s.
edit_ctd_file() {
	local file=$1 kind=$2 mode=add new status line version=
	[ "$UNINSTALL" -eq 0 ] || mode=remove
	if [ -e "$file" ] && [ ! -f "$file" ]; then
		warn "$file is not a regular file; skipped"
		return 0
	fi
	if [ "$kind" = microk8s ] && [ ! -e "$file" ]; then
		warn "$file does not exist; skipped"
		return 0
	fi
	# MicroK8s' template is checked with MicroK8s' own containerd
	local CTD_BIN=$CTD_BIN
	if [ "$kind" = microk8s ] && [ "$CTD_BIN_GIVEN" -eq 0 ] && [ -x "$MICROK8S_CTD" ]; then
		CTD_BIN=$MICROK8S_CTD
	fi
	# A symlinked configuration is edited where it lives.
	if [ -L "$file" ]; then
		local real
		real=$(readlink -f -- "$file") || die "$file: dangling symlink"
		say "$file is a symlink: editing $real"
		file=$real
	fi
	new=$TMPD/new.toml
	rm -f "$new"
	status=
	while IFS= read -r line; do
		case $line in
		"status "*) status=${line#status } ;;
		"version "*) version=${line#version } ;;
		"warn "*) warn "$file: ${line#warn }" ;;
		"note "*) say "$file: ${line#note }" ;;
		esac
	done < <(toml_edit "$mode" "$file" "$new")
	case $status in
	unchanged)
		if [ "$mode" = add ]; then
			say "$file: runtime '$HANDLER' already registered (nothing to change)"
		else
			say "$file: no Kybernate runtime entry (nothing to change)"
		fi
		return 0
		;;
	conflict*)
		warn "$file: a runtime '$HANDLER' already exists with runtime_type ${status#conflict }, not $RUNTIME_TYPE; left unchanged (edit it by hand, or use --handler NAME)"
		CONFLICT=1
		return 0
		;;
	changed) ;;
	*) die "$file: could not analyse the file" ;;
	esac
	[ -f "$new" ] || die "$file: no output produced"
	local old=$file
	[ -e "$file" ] || old=/dev/null
	if [ "$mode" = add ]; then
		if [ ! -e "$file" ]; then
			say "$file: does not exist; it will be created (config version 2):"
		elif [ ! -s "$file" ]; then
			say "$file: empty; a minimal version 2 configuration will be written:"
		else
			say "$file: registering runtime '$HANDLER' (config version $version):"
		fi
	else
		say "$file: removing the Kybernate runtime entry:"
	fi
	diff -u --label "$file" --label "$file (new)" "$old" "$new" || true

	# Never write a file containerd could read before and cannot read after.
	# (Checked on copies in a private directory; a MicroK8s template is checked
	# with its ${...} placeholders as they are: they sit inside strings.)
	if [ "$CTD_BIN" != none ] && [ "$version" -lt 3 ]; then
		local probe_old=$TMPD/old-probe.toml probe_new=$TMPD/new-probe.toml ok=1 dump
		if [ -e "$file" ]; then cp "$file" "$probe_old"; else : >"$probe_old"; fi
		cp "$new" "$probe_new"
		if ctd_check "$probe_old" >/dev/null; then
			dump=$(ctd_check "$probe_new") || ok=0
			[ "$ok" -eq 1 ] ||
				die "$file: $CTD_BIN cannot read the edited configuration: $(tail -n 3 "$TMPD/ctd-check.err"); the file was NOT changed"
			if [ "$mode" = add ] && [[ $dump != *"runtimes.$HANDLER]"* ]]; then
				die "$file: $CTD_BIN does not see runtime '$HANDLER' in the edited configuration; the file was NOT changed"
			fi
			say "$file: $CTD_BIN reads the edited configuration"
		fi
	fi
	[ "$DRY_RUN" -eq 0 ] || return 0

	if [ -e "$file" ] && [ ! -e "$file.kybernate.bak" ]; then
		cp -p "$file" "$file.kybernate.bak"
		say "$file: backup of the original in $file.kybernate.bak"
	fi
	local dir tmp
	dir=$(dirname "$file")
	mkdir -p "$dir"
	tmp=$(mktemp "$dir/.$(basename "$file").XXXXXX")
	cat "$new" >"$tmp"
	if [ -e "$file" ]; then
		chmod --reference="$file" "$tmp"
		chown --reference="$file" "$tmp" 2>/dev/null || true
	else
		chmod 0644 "$tmp"
	fi
	sync -- "$tmp" 2>/dev/null || true
	mv -f "$tmp" "$file"
	CHANGED_FILES+=("$kind:$file")
	say "$file: written"
}

# ---- binaries, units, directories ----------------------------------------------------

BINS=("$BUILD_DIR/$SHIM_NAME" "$BUILD_DIR/kybernated" "$BUILD_DIR/kybernatectl")
MAKEVARS=(BUILD="$BUILD_DIR" PREFIX="$PREFIX" DESTDIR="$DESTDIR" UNITDIR="$UNITDIR")

install_files() {
	local missing=() b
	for b in "${BINS[@]}"; do [ -x "$b" ] || missing+=("$b"); done
	if [ ${#missing[@]} -gt 0 ]; then
		if [ "$DRY_RUN" -eq 1 ]; then
			say "would build: make -C $TOP BUILD=$BUILD_DIR (missing: ${missing[*]##*/})"
		else
			say "building the binaries (make BUILD=$BUILD_DIR)"
			make -C "$TOP" --no-print-directory -j"$(nproc 2>/dev/null || echo 2)" BUILD="$BUILD_DIR" "${BINS[@]}" >&2 ||
				die "make failed (run scripts/setup.sh first for the build dependencies)"
		fi
	fi
	if [ "$DRY_RUN" -eq 1 ]; then
		say "would install $SHIM_NAME and kybernatectl into $DESTDIR$BINDIR, kybernated into $DESTDIR$SBINDIR"
		say "would install kybernated.service and kybernated.socket into $DESTDIR$UNITDIR"
	else
		# -o: install what is built; never rebuild it here as a side effect.
		local olds=()
		for b in "${BINS[@]}"; do olds+=(-o "$b"); done
		make -C "$TOP" --no-print-directory -s "${olds[@]}" "${MAKEVARS[@]}" install >&2 ||
			die "make install failed"
		say "installed $SHIM_NAME, kybernatectl in $DESTDIR$BINDIR; kybernated in $DESTDIR$SBINDIR; units in $DESTDIR$UNITDIR"
	fi

	local conf=$DESTDIR/etc/kybernate/kybernated.conf
	if [ -e "$conf" ]; then
		say "$conf exists (kept as it is)"
	elif [ "$DRY_RUN" -eq 1 ]; then
		say "would create $conf from kybernated/kybernated.conf.example"
	else
		install -d -m 0755 "$DESTDIR/etc/kybernate"
		install -m 0644 "$TOP/kybernated/kybernated.conf.example" "$conf"
		say "created $conf (every setting commented out: the defaults)"
	fi

	local store=$DESTDIR/var/lib/kybernate
	if [ -d "$store" ] && [ "$(stat -c %a "$store")" = 700 ]; then
		:
	elif [ "$DRY_RUN" -eq 1 ]; then
		say "would create $store (mode 0700)"
	else
		install -d -m 0700 "$store"
		chmod 0700 "$store"
		say "created $store (mode 0700)"
	fi
}

uninstall_files() {
	if [ "$DRY_RUN" -eq 1 ]; then
		say "would stop and disable kybernated.socket and kybernated.service (systemd)"
		say "would remove $SHIM_NAME, kybernatectl from $DESTDIR$BINDIR, kybernated from $DESTDIR$SBINDIR, the units from $DESTDIR$UNITDIR"
		return 0
	fi
	if systemd_running; then
		systemctl disable --now kybernated.socket kybernated.service >/dev/null 2>&1 || true
	fi
	make -C "$TOP" --no-print-directory -s "${MAKEVARS[@]}" uninstall >&2 || die "make uninstall failed"
	! systemd_running || systemctl daemon-reload || true
	say "removed the binaries and units; kept $DESTDIR/etc/kybernate and the checkpoint store $DESTDIR/var/lib/kybernate (remove them by hand if you want)"
}

# ---- main ---------------------------------------------------------------------------

[ "$DRY_RUN" -eq 0 ] || say "dry run: nothing is changed"

if [ "$ONLY_CTD" -eq 0 ]; then
	if [ "$UNINSTALL" -eq 1 ]; then uninstall_files; else install_files; fi
fi

if [ "$NO_CTD" -eq 0 ]; then
	for f in "${CONFIGS[@]}"; do edit_ctd_file "$f" config; done
	for f in "${TEMPLATES[@]}"; do edit_ctd_file "$f" microk8s; done
fi

if [ "$UNINSTALL" -eq 0 ] && [ "$ONLY_CTD" -eq 0 ]; then
	if [ "$DRY_RUN" -eq 1 ]; then
		! systemd_running || say "would run: systemctl daemon-reload"
		[ "$ENABLE" -eq 0 ] || say "would run: systemctl enable --now kybernated.socket"
	elif systemd_running; then
		systemctl daemon-reload || warn "systemctl daemon-reload failed"
		if [ "$ENABLE" -eq 1 ]; then
			systemctl enable --now kybernated.socket || die "systemctl enable --now kybernated.socket failed"
			say "kybernated.socket enabled and listening (kybernated starts on the first connection)"
		else
			say "to start the daemon: systemctl enable --now kybernated.socket"
		fi
	elif [ -z "$DESTDIR" ]; then
		[ "$ENABLE" -eq 0 ] || warn "--enable: systemd is not running here"
		say "systemd is not running: start the daemon by hand with $SBINDIR/kybernated --foreground"
	fi
	if [ -z "$DESTDIR" ] && [ "$DRY_RUN" -eq 0 ]; then
		command -v runc >/dev/null || warn "runc is not in PATH: kybernated and the shim need it"
		c=$(command -v criu || true)
		if [ -z "$c" ]; then
			warn "criu is not in PATH: checkpoints need CRIU >= 4 (scripts/setup.sh installs one)"
		else
			m=$("$c" --version 2>/dev/null | sed -n 's/^Version: *\([0-9]*\).*/\1/p' | head -n 1)
			[ -z "$m" ] || [ "$m" -ge 4 ] || warn "$c is CRIU $m; CRIU >= 4 is needed on recent kernels (scripts/setup.sh)"
		fi
	fi
fi

# containerd 1.6 ignores runtime_path when it starts a pod sandbox's shim (1.7
# and later honour it): there the shim must be in containerd's PATH.
if [ "$UNINSTALL" -eq 0 ] && [ "$NO_CTD" -eq 0 ] && [ -n "$RUNTIME_PATH" ] && [ "$CTD_BIN" != none ]; then
	ctd_v=$("$CTD_BIN" --version 2>/dev/null | awk '{print $3}' | sed 's/^v//')
	if [[ $ctd_v =~ ^1\.([0-9]+)\. ]] && [ "${BASH_REMATCH[1]}" -lt 7 ]; then
		warn "containerd $ctd_v ignores runtime_path for pods: put $(dirname "$RUNTIME_PATH") in containerd's PATH, or: ln -s $RUNTIME_PATH /usr/local/bin/$SHIM_NAME"
	fi
fi
if [ ${#CHANGED_FILES[@]} -gt 0 ]; then
	for cf in "${CHANGED_FILES[@]}"; do
		kind=${cf%%:*} f=${cf#*:}
		if [ "$kind" = microk8s ]; then cmd="snap restart microk8s.daemon-containerd"; else cmd="systemctl restart containerd"; fi
		if [ "$RESTART" -eq 1 ] && systemd_running; then
			say "restarting containerd for $f: $cmd"
			$cmd || die "'$cmd' failed"
		else
			[ "$RESTART" -eq 0 ] || warn "--restart-containerd: systemd is not running here (or --destdir was given)"
			say "containerd reads $f only at start: run '$cmd' (running containers keep running)"
		fi
	done
fi
if [ "$CONFLICT" -eq 1 ]; then
	exit 3
fi
if [ "$UNINSTALL" -eq 0 ] && [ "$DRY_RUN" -eq 0 ]; then
	say "done. Kubernetes: kubectl apply -f $TOP/manifests/runtimeclass.yaml; walkthrough: docs/CPU_CHECKPOINT.md"
fi
exit 0
