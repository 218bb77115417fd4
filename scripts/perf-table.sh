#!/usr/bin/env bash
# Runs the benchmarks (release build) and regenerates the Performance table
# of README.md, between its perf-table markers, from each benchmark's final
# key=value line. Never edit that table by hand: run this again.
#
#   scripts/perf-table.sh            # the benchmarks at their defaults
#   scripts/perf-table.sh --quick    # fewer rounds each (the table says so)
#   scripts/perf-table.sh --find     # also bench scale --find (long)
#   scripts/perf-table.sh --no-build # use the release binaries as they are
set -euo pipefail

cd "$(dirname "$0")/.."
readme=README.md
begin='<!-- perf-table:begin (scripts/perf-table.sh writes this table) -->'
end='<!-- perf-table:end -->'

quick=0 find=0 build=1
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        --find) find=1 ;;
        --no-build) build=0 ;;
        -h | --help)
            sed -n '2,10p' "$0"
            exit 0
            ;;
        *)
            echo "perf-table.sh: unknown flag $arg" >&2
            exit 1
            ;;
    esac
done
grep -qF "$begin" "$readme" && grep -qF "$end" "$readme" || {
    echo "perf-table.sh: $readme has no perf-table markers" >&2
    exit 1
}

if [ "$build" = 1 ]; then
    cargo build --release --workspace
fi
towerlock=target/release/towerlock
[ -x "$towerlock" ] || {
    echo "perf-table.sh: $towerlock missing: cargo build --release --workspace" >&2
    exit 1
}

# name|arguments of `towerlock bench`|figures shown (empty: the whole line)
if [ "$quick" = 1 ]; then
    benches=(
        "storage|storage --rounds 200|fenced_p50_ms plain_p50_ms ratio fenced_p99_ms file_fsync_p50_ms file_nofsync_p50_ms takeover_p50_ms"
        "vote-path|vote-path --rounds 2 --slots-per-round 30|"
        "failover|failover --failovers 3 --slot-ms 400|"
        "failover alpenglow|failover --consensus alpenglow --failovers 3 --slot-ms 400|"
        "sentinel|sentinel --rounds 3 --slot-ms 400|"
        "scale|scale --validators 1000 --minutes 0.5|"
        "cluster|cluster --pairs 1 --window-seconds 6|"
    )
else
    benches=(
        "storage|storage|fenced_p50_ms plain_p50_ms ratio fenced_p99_ms file_fsync_p50_ms file_nofsync_p50_ms takeover_p50_ms"
        "vote-path|vote-path|"
        "failover|failover|"
        "failover alpenglow|failover --consensus alpenglow|"
        "sentinel|sentinel|"
        "scale|scale|"
        "cluster|cluster|"
    )
fi
if [ "$find" = 1 ]; then
    benches+=("scale --find|scale --find --members 3|")
fi

# Figures shown per bench when the third field is empty: the medians,
# percentiles and ratios (not the run's parameters).
pick() {
    case "$1" in
        vote-path) echo "file_sent_p50_ms file_sent_p99_ms etcd_sent_p50_ms etcd_sent_p99_ms etcd_added_p99_ms file_landed_p50_ms etcd_landed_p50_ms file_store_p50_ms file_store_p99_ms etcd_store_p50_ms etcd_store_p99_ms etcd_store_added_p99_ms file_credits_per_slot etcd_credits_per_slot target_met" ;;
        failover) echo "set_identity_p50_ms first_vote_sent_p50_ms first_vote_sent_max_ms first_vote_after_bank_p50_ms first_vote_landed_p50_ms first_vote_landed_max_ms missed_votes_p50 missed_votes_max audit_clean" ;;
        "failover alpenglow") echo "set_identity_p50_ms first_vote_sent_p50_ms first_vote_sent_max_ms first_vote_sent_max_slots first_vote_landed_p50_ms first_vote_landed_max_ms missed_slots_max audit_clean" ;;
        sentinel) echo "landed_p50_ms landed_max_ms detected_p50_ms missed_slots_max false_promotions audit_clean" ;;
        scale) echo "m1_store_p50_ms m1_store_p99_ms m3_store_p50_ms m3_store_p99_ms p99_ratio m1_etcd_cores m3_etcd_cores m3_client_cores m1_fsync_mean_ms m3_fsync_mean_ms m3_writes_per_s m3_mb_per_validator_hour m3_quota_gib m3_missed target_met" ;;
        cluster) echo "votes_per_s send_p50_ms send_p99_ms landed landed_slots_max credits_per_vote cluster_cores_without cluster_cores_with cluster_us_per_vote slot_late_p99_ms_without slot_late_p99_ms_with validator_sent_p50_ms_without validator_sent_p50_ms_with audit_clean" ;;
        *) echo "" ;;
    esac
}

out=$(mktemp)
table=$(mktemp)
trap 'rm -f "$out" "$table"' EXIT

{
    cores=$(nproc)
    mem_gib=$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
    etcd_version=$(etcd --version 2>/dev/null | awk 'NR == 1 { print "etcd " $3 }' || true)
    echo "Taken $(date -u +%Y-%m-%d) on $cores cores, $mem_gib GiB of memory, Linux $(uname -r),"
    echo "${etcd_version:-etcd}, a release build; the machine is shared with"
    echo "other work, so absolute figures drift: compare within a row."
    if [ "$quick" = 1 ]; then
        echo "Short runs (\`scripts/perf-table.sh --quick\`): fewer rounds than the defaults."
    fi
    echo
    echo "| bench | command | figures (its final key=value line) |"
    echo "|---|---|---|"
} >"$table"

status=0
for entry in "${benches[@]}"; do
    IFS='|' read -r name args keys <<<"$entry"
    [ -n "$keys" ] || keys=$(pick "$name")
    echo "== towerlock bench $args" >&2
    # Its whole output goes to stderr too, for the record.
    # shellcheck disable=SC2086 # the arguments are words
    if ! "$towerlock" bench $args | tee "$out" >&2; then
        echo "perf-table.sh: bench $args failed (its figures are still shown)" >&2
        status=1
    fi
    line=$(tail -n 1 "$out")
    figures=""
    if [ -n "$keys" ]; then
        for key in $keys; do
            value=$(tr ' ' '\n' <<<"$line" | sed -n "s/^$key=//p" | head -1)
            figures+="${figures:+ }$key=${value:-?}"
        done
    else
        figures=$line
    fi
    echo "| $name | \`towerlock bench $args\` | \`$figures\` |" >>"$table"
done

# The table replaces whatever was between the markers.
awk -v begin="$begin" -v end="$end" -v table="$table" '
    $0 == begin { print; while ((getline line < table) > 0) print line; skip = 1; next }
    $0 == end { skip = 0 }
    !skip { print }
' "$readme" >"$readme.new"
mv "$readme.new" "$readme"
echo "perf-table.sh: the table in $readme is regenerated" >&2
exit "$status"
