#!/usr/bin/env bash
# Runs one benchmark with two builds of towerlock, alternating (A B A B …)
# in one session, and prints each run's final key=value line and the
# median of each figure per build: a before/after comparison on a shared
# machine, where runs taken at different times cannot be compared.
#
#   scripts/bench-compare.sh BEFORE_DIR AFTER_DIR ROUNDS -- bench cluster --voters 500
#
# BEFORE_DIR and AFTER_DIR each hold a `towerlock` and `towerlock-validator`
# (e.g. copies of target/release from two commits).
set -euo pipefail

if [ "$#" -lt 5 ] || [ "$4" != "--" ]; then
    sed -n '2,10p' "$0" >&2
    exit 1
fi
before=$1 after=$2 rounds=$3
shift 4
for dir in "$before" "$after"; do
    for bin in towerlock towerlock-validator; do
        [ -x "$dir/$bin" ] || { echo "bench-compare.sh: $dir/$bin is missing" >&2; exit 1; }
    done
done

lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
for round in $(seq 1 "$rounds"); do
    for side in before after; do
        dir=$before
        [ "$side" = after ] && dir=$after
        echo "== round $round/$rounds: $side" >&2
        line=$("$dir/towerlock" "$@" --validator-bin "$dir/towerlock-validator" | tail -n 1)
        echo "$side $line" | tee -a "$lines"
    done
done

# The median of every numeric figure, per side.
awk '
    {
        side = $1
        for (i = 2; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[2] ~ /^-?[0-9.]+$/) {
                n[side, kv[1]]++
                v[side, kv[1], n[side, kv[1]]] = kv[2]
                keys[kv[1]] = 1
            }
        }
    }
    function median(side, key,    m, i, j, t, a) {
        m = n[side, key]
        for (i = 1; i <= m; i++) a[i] = v[side, key, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
        line = ""
        for (key in keys) {
            if (n["before", key] && n["after", key]) {
                line = line sprintf("%s_before=%s %s_after=%s ", key, median("before", key), key, median("after", key))
            }
        }
        print "medians:"
        print line
    }
' "$lines"
