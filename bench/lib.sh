#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Helpers the benchmark scripts share; sourced after tests/lib/common.sh.

now_ns() { date +%s%N; }
# ms START_NS END_NS
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
mib() { awk -v b="$1" 'BEGIN { if (b == "-") print "-"; else printf "%.1f", b / 1048576 }'; }
usms() { awk -v u="$1" 'BEGIN { if (u == "-") print "-"; else printf "%.1f", u / 1000 }'; }
# pct A B: A against B, as "+1.2%"
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%+.1f%%", (a - b) * 100 / b }'; }

# median: of the numbers on stdin ("-" when none).
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (!NR) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
		else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# stats_dump FILE: prints "freezing_us frozen_us" from CRIU's stats-dump (a
# service image: two magics, then a u32 length and a StatsEntry whose field 1
# is DumpStatsEntry {1 freezing_time, 2 frozen_time, ...}, times in us).
stats_dump() {
	perl -e '
		open(my $f, "<:raw", $ARGV[0]) or die "open $ARGV[0]: $!";
		local $/; my $b = <$f>;
		my $len = unpack("V", substr($b, 8, 4));
		my $r = substr($b, 12, $len); my $i = 0;
		my $varint = sub { my ($s, $i) = @_; my ($v, $sh) = (0, 0);
			while (1) { my $c = ord(substr($$s, $$i++, 1)); $v |= ($c & 0x7f) << $sh; $sh += 7; last unless $c & 0x80 }
			$v };
		my ($fz, $fr) = ("-", "-");
		while ($i < length $r) { my $k = $varint->(\$r, \$i);
			if (($k & 7) == 2) { my $l = $varint->(\$r, \$i); my $sub = substr($r, $i, $l); $i += $l;
				next unless ($k >> 3) == 1; my $j = 0;
				while ($j < length $sub) { my $kk = $varint->(\$sub, \$j);
					if (($kk & 7) == 0) { my $v = $varint->(\$sub, \$j);
						$fz = $v if ($kk >> 3) == 1; $fr = $v if ($kk >> 3) == 2 }
					elsif (($kk & 7) == 2) { $j += $varint->(\$sub, \$j) }
					elsif (($kk & 7) == 1) { $j += 8 } elsif (($kk & 7) == 5) { $j += 4 } else { last } } }
			elsif (($k & 7) == 0) { $varint->(\$r, \$i) } else { last } }
		print "$fz $fr\n";' "$1" 2>/dev/null || echo "- -"
}

# docs_write_section TITLE FILE [NOTE]: replaces the "## TITLE" section of
# docs/BENCHMARKS.md (up to the next "## " heading) with FILE, or appends it.
docs_write_section() {
	local doc=$KYB_TOP/docs/BENCHMARKS.md tmp
	tmp=$(mktemp "$doc.XXXXXX")
	awk -v h="## $1" -v sf="$2" '
		function emit() { while ((getline l < sf) > 0) print l; done = 1 }
		/^## / { if (skip) { skip = 0; print "" } }
		{ t = $0; sub(/[[:space:]]+$/, "", t) }
		t == h { skip = 1; emit(); next }
		!skip { print }
		END { if (!done) { print ""; emit() } }' "$doc" >"$tmp"
	# squeeze the runs of blank lines the splice may leave; keep the file's mode
	cat -s "$tmp" >"$doc.new" && chmod 644 "$doc.new" && mv "$doc.new" "$doc"
	rm -f "$tmp"
	log "wrote the \"## $1\" section of $doc${3:+ ($3)}"
}
