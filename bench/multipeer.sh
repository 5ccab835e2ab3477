#!/usr/bin/env bash
# bench/multipeer.sh: owns the multi-peer download benchmark. It builds a
# throw-away topology of network namespaces (a hub with a bridge, three
# seeders and one downloader, names carrying this shell's pid), shapes each
# seeder's egress with tbf, generates one game identical on every seeder,
# downloads it with lanspread-peer-cli and prints the wall time against the
# ideal (size / sum of the seeders' link rates). Every namespace, process and
# temp file it creates is removed on exit, also when it fails halfway.
#
#   bench/multipeer.sh [--size MIB] [--case NAME]... [--rates R0,R1,R2]
#                      [--build DIR] [--keep-log]
#
# Cases: even (512 MiB at 100/100/100 Mbit/s), uneven (512 MiB at
# 100/100/10), uneven-small (128 MiB at 100/100/10: the end game decides it),
# uneven-small-busy (the same while one busy loop per CPU runs at nice 19,
# as a game would be played meanwhile; it also prints its time against
# uneven-small's when both ran: busy_vs_quiet).
# --size MIB sets the size of the large cases; uneven-small gets a quarter of
# it (at least 8 MiB). --case may repeat or take a comma list (default: all).
# --rates replaces the uneven cases' 100,100,10 (Mbit/s), for experiments.
# --build DIR holds lanspread-peer-cli and lanspread-gen (default $BUILD_DIR,
# else <repo>/build-bench; scripts/bench passes its own). --keep-log copies
# the downloader's timestamped JSON lines and its log to
# /tmp/multipeer-<case>.jsonl and .dl.log (left for you to delete).
# Needs root (ip netns, tc); exits 77 without them. Target per case:
# ratio >= 0.90, RSS < 64 MiB. A tiny run (scripts/bench --tiny): --size 8.
set -euo pipefail
export LC_ALL=C # a dot in $EPOCHREALTIME and in awk output

usage() {
  sed -n '2,23s/^# \{0,1\}//p' "$0"
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
big_mib=512
small_mib=
selected=()
keep_log=0
uneven_rates=(100 100 10)

readonly PORT=7400
readonly GAME_BIG=g0001
readonly GAME_SMALL=g0002
readonly TARGET_RATIO=0.90
readonly RSS_LIMIT_MIB=64
readonly DOWNLOAD_TIMEOUT_S=600
# tbf: burst 4 ms of the rate (at least 16 KiB: a few frames at 10 Mbit/s),
# queue up to 50 ms. The same burst rule as tests/common/netns.c.
readonly TBF_LATENCY=50ms

# ---- state the cleanup trap needs -------------------------------------------
run_id="lsmp$$"
subnet="10.214.$(( $$ % 250 + 1 ))"
tmp=
namespaces=()
pids=()
hogs=() # busy loops of the busy case, while it runs
dl_pid=
dl_in=
dl_out= # the downloader's fifos, while it runs

# ---- arguments ----------------------------------------------------------------
parse_args() {
  while [[ $# -gt 0 ]]; do
    case $1 in
      -h|--help) usage; exit 0 ;;
      --size) big_mib=${2:?--size needs MIB}; shift 2 ;;
      --size=*) big_mib=${1#*=}; shift ;;
      --case) IFS=, read -r -a more <<<"${2:?--case needs a name}"; selected+=("${more[@]}"); shift 2 ;;
      --case=*) IFS=, read -r -a more <<<"${1#*=}"; selected+=("${more[@]}"); shift ;;
      --rates) IFS=, read -r -a uneven_rates <<<"${2:?--rates needs R0,R1,R2}"; shift 2 ;;
      --build) build=${2:?--build needs DIR}; shift 2 ;;
      --keep-log) keep_log=1; shift ;;
      *) echo "multipeer: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
  done
  big_mib=${big_mib%[Mm]}
  [[ $big_mib =~ ^[0-9]+$ && $big_mib -ge 4 ]] || { echo "multipeer: --size must be a whole number of MiB >= 4" >&2; exit 2; }
  small_mib=$(( big_mib / 4 < 8 ? 8 : big_mib / 4 ))
  [[ ${#selected[@]} -gt 0 ]] || selected=(even uneven uneven-small uneven-small-busy)
  [[ ${#uneven_rates[@]} -eq 3 && "${uneven_rates[*]}" =~ ^[0-9]+\ [0-9]+\ [0-9]+$ &&
     ! " ${uneven_rates[*]} " =~ \ 0\  ]] ||
    { echo "multipeer: --rates needs three whole Mbit/s rates > 0, e.g. 100,100,10" >&2; exit 2; }
  local c
  for c in "${selected[@]}"; do
    case $c in
      even|uneven|uneven-small|uneven-small-busy) ;;
      *) echo "multipeer: no case '$c' (even, uneven, uneven-small, uneven-small-busy)" >&2; exit 2 ;;
    esac
  done
}

check_prerequisites() {
  # Exit 77: it cannot run on this machine (scripts/bench reports a skip).
  [[ $(id -u) -eq 0 ]] || { echo "multipeer: needs root (ip netns, tc)" >&2; exit 77; }
  local tool
  for tool in ip tc; do
    command -v "$tool" >/dev/null || { echo "multipeer: '$tool' not found" >&2; exit 77; }
  done
  command -v cmp >/dev/null || { echo "multipeer: 'cmp' not found" >&2; exit 2; }
  for tool in lanspread-peer-cli lanspread-gen; do
    [[ -x $build/$tool ]] || { echo "multipeer: no $build/$tool (build it, or pass --build DIR)" >&2; exit 2; }
  done
}

# ---- cleanup --------------------------------------------------------------------
cleanup() {
  local status=$? pid ns
  trap - EXIT INT TERM
  stop_hogs
  for pid in "${pids[@]}" ${dl_pid:+"$dl_pid"}; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}" ${dl_pid:+"$dl_pid"}; do
    wait_for_exit "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
  done
  for ns in "${namespaces[@]}"; do
    ip netns del "$ns" 2>/dev/null || true
  done
  [[ -n $tmp && -d $tmp ]] && rm -rf "$tmp"
  exit "$status"
}

on_signal() {
  echo "multipeer: interrupted" >&2
  exit 130
}

# Waits up to SECONDS for PID to go away; 1 if it is still there.
wait_for_exit() {
  local pid=$1 seconds=$2 i
  for (( i = 0; i < seconds * 20; i++ )); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.05
  done
  return 1
}

die() {
  echo "multipeer: $*" >&2
  exit 1
}

# ---- topology -------------------------------------------------------------------
# Hub namespace with bridge br0; host i gets veth v<i> (hub side, on the
# bridge) and eth0 (its side) with address <subnet>.<i+1>/24.
create_topology() {
  local hub=$run_id-hub i ns
  ip netns add "$hub"
  namespaces+=("$hub")
  ip -n "$hub" link add br0 type bridge mcast_snooping 0
  ip -n "$hub" link set br0 up
  ip -n "$hub" link set lo up
  for i in 0 1 2 3; do
    ns=$(host_ns "$i")
    ip netns add "$ns"
    namespaces+=("$ns")
    ip -n "$hub" link add "v$i" type veth peer name eth0 netns "$ns"
    ip -n "$hub" link set "v$i" master br0 up
    ip -n "$ns" addr add "$(host_addr "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
}

# Hosts 0-2 are the seeders, host 3 the downloader.
host_ns() { echo "$run_id-h$1"; }
host_addr() { echo "$subnet.$(( $1 + 1 ))"; }

# Replaces the tbf on seeder i's eth0 (fresh counters), rate in Mbit/s.
shape_seeder() {
  local i=$1 mbit=$2 burst
  burst=$(( mbit * 1000000 / 8 / 250 ))
  (( burst >= 16384 )) || burst=16384
  ip netns exec "$(host_ns "$i")" tc qdisc del dev eth0 root 2>/dev/null || true
  ip netns exec "$(host_ns "$i")" tc qdisc add dev eth0 root tbf rate "${mbit}mbit" \
    burst "$burst" latency "$TBF_LATENCY"
}

# "BYTES,DROPPED": what seeder i's tbf has sent (bytes) and dropped
# (packets) since it was last shaped.
seeder_tbf_counters() {
  ip netns exec "$(host_ns "$1")" tc -s qdisc show dev eth0 |
    sed -n 's/^ *Sent \([0-9]*\) bytes [0-9]* pkt (dropped \([0-9]*\).*/\1,\2/p' | head -n 1
}

# ---- the game ---------------------------------------------------------------------
# Both games are generated once into seeder 0's directory and hard-linked
# into the others (identical by construction: same arguments and seed).
generate_games() {
  local dir=$tmp/seed0/games i
  mkdir -p "$dir"
  "$build/lanspread-gen" --game-dir "$dir" --games 1 --first 1 --id-prefix g --archives 8 \
    --size "${big_mib}M" --game-version 1.0 --seed 1 --catalog "$tmp/catalog.json" --quiet
  "$build/lanspread-gen" --game-dir "$dir" --games 1 --first 2 --id-prefix g --archives 8 \
    --size "${small_mib}M" --game-version 1.0 --seed 1 --catalog "$tmp/catalog.json" \
    --catalog-merge --quiet
  for i in 1 2; do
    mkdir -p "$tmp/seed$i"
    cp -al "$dir" "$tmp/seed$i/games"
  done
}

# ---- peers -------------------------------------------------------------------------
start_seeder() {
  local i=$1 dir=$tmp/seed$1
  ip netns exec "$(host_ns "$i")" "$build/lanspread-peer-cli" --serve --no-mdns \
    --game-dir "$dir/games" --catalog "$tmp/catalog.json" --state-dir "$dir/state" \
    --listen "$(host_addr "$i"):$PORT" --name "seed$i" \
    </dev/null >"$dir/out.jsonl" 2>"$dir/err.log" &
  pids+=("$!")
}

wait_seeders_ready() {
  local i t
  for i in 0 1 2; do
    for (( t = 0; t < 600; t++ )); do
      grep -q '"type":"ready"' "$tmp/seed$i/out.jsonl" 2>/dev/null && continue 2
      kill -0 "${pids[$i]}" 2>/dev/null || die "seeder $i exited: $(tail -n 5 "$tmp/seed$i/err.log")"
      sleep 0.05
    done
    die "seeder $i not ready after 30 s"
  done
}

# The downloader talks through two fifos: commands go to fd $dl_in, its JSON
# lines come from fd $dl_out and are logged, each prefixed with the time it
# was read. (Not a coprocess: bash unsets a coprocess's variables when it
# reaps it, which can be after the next case started one of the same name.)
start_downloader() {
  local dir=$tmp/dl
  rm -rf "$dir"
  mkdir -p "$dir/games"
  local args=(--no-mdns --game-dir "$dir/games" --catalog "$tmp/catalog.json"
              --state-dir "$dir/state" --listen "$(host_addr 3):$PORT" --name downloader)
  local i
  for i in 0 1 2; do
    args+=(--peer "$(host_addr "$i"):$PORT")
  done
  mkfifo "$dir/in" "$dir/out"
  ip netns exec "$(host_ns 3)" "$build/lanspread-peer-cli" "${args[@]}" \
    <"$dir/in" >"$dir/out" 2>"$dir/err.log" &
  dl_pid=$!
  exec {dl_in}>"$dir/in" {dl_out}<"$dir/out" # in the order the peer opens them
  : >"$dir/out.jsonl"
}

send() {
  echo "$*" >&"$dl_in"
}

# Reads the downloader's lines until one matches the extended regex PATTERN;
# fails after TIMEOUT seconds, on a failed download, or on an error reply.
# Sets last_time: when that line was read, in seconds since the epoch.
read_until() {
  local pattern=$1 timeout=$2 deadline now line
  deadline=$(( EPOCHSECONDS + timeout ))
  while :; do
    now=$EPOCHSECONDS
    (( now < deadline )) || die "timed out waiting for /$pattern/ (log: $(tail -n 3 "$tmp/dl/err.log"))"
    if ! IFS= read -r -t $(( deadline - now )) -u "$dl_out" line; then
      kill -0 "$dl_pid" 2>/dev/null || die "the downloader exited: $(tail -n 5 "$tmp/dl/err.log")"
      continue
    fi
    last_time=$EPOCHREALTIME
    printf '%s %s\n' "$last_time" "$line" >>"$tmp/dl/out.jsonl"
    [[ $line == *'"type":"game-download-failed"'* ]] && die "download failed: $line"
    [[ $line == *'"type":"reply"'*'"ok":false'* ]] && die "command failed: $line"
    [[ $line =~ $pattern ]] && return 0
  done
}

# Seconds from the last progress event (100%, sent as the last chunk is
# written) to game-download-finished: the commit (fsync of every payload
# file, version.ini) and the local refresh.
commit_seconds() {
  local log=$tmp/dl/out.jsonl t_last t_fin
  t_last=$(grep '"type":"game-download-progress"' "$log" | tail -n 1 | cut -d' ' -f1)
  t_fin=$(grep '"type":"game-download-finished"' "$log" | tail -n 1 | cut -d' ' -f1)
  awk -v a="$t_last" -v b="$t_fin" 'BEGIN { printf "%.2f", b - a }'
}

# Peak resident set of the downloader (VmHWM), in KiB.
downloader_peak_rss_kib() {
  sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$dl_pid/status"
}

stop_downloader() {
  send quit
  read_until '"type":"reply","cmd":"quit"' 30
  wait_for_exit "$dl_pid" 10 || die "the downloader did not exit after quit"
  exec {dl_in}>&- {dl_out}<&-
  dl_pid=
}

# cmp of every payload file and version.ini against seeder 0's copy.
verify_download() {
  local id=$1 src=$tmp/seed0/games/$1 dst=$tmp/dl/games/$1 f n=0
  for f in "$src"/*; do
    cmp -s "$f" "$dst/${f##*/}" || die "$id: ${f##*/} differs from the seeder's (or is missing)"
    n=$(( n + 1 ))
  done
  (( n > 0 )) || die "$id: the seeder has no files"
}

# ---- CPU hogs ---------------------------------------------------------------------------
# One busy loop per CPU at the lowest priority there is: the machine is
# never idle, but every other process still comes first.
start_hogs() {
  local i
  for (( i = 0; i < $(nproc); i++ )); do
    nice -n 19 bash -c 'while :; do :; done' &
    hogs+=("$!")
  done
}

stop_hogs() {
  local pid
  for pid in "${hogs[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  hogs=()
}

# ---- one case -------------------------------------------------------------------------
# run_case NAME ID SIZE_MIB RATE0 RATE1 RATE2 [busy]
run_case() {
  local name=$1 id=$2 mib=$3 rates=("$4" "$5" "$6") busy=${7:-} i
  for i in 0 1 2; do
    shape_seeder "$i" "${rates[$i]}"
  done
  start_downloader
  send "wait-peers 3 30"
  read_until '"type":"reply","cmd":"wait-peers"' 40

  # Warm-up: the first file-list request makes every seeder hash the game
  # (cached in its index afterwards); a real library has those hashes
  # already, so it is kept out of the timed download.
  local t_get=$EPOCHREALTIME
  send "get $id"
  read_until "\"type\":\"game-files\",\"id\":\"$id\"" 300
  local get_s
  get_s=$(awk -v a="$t_get" -v b="$last_time" 'BEGIN { printf "%.2f", b - a }')
  read_until '"type":"reply","cmd":"get"' 30
  for i in 0 1 2; do
    shape_seeder "$i" "${rates[$i]}" # fresh byte counters
  done

  [[ -n $busy ]] && start_hogs
  local t0=$EPOCHREALTIME t1
  send "download $id"
  send "wait game-download-finished $id $DOWNLOAD_TIMEOUT_S"
  read_until "\"type\":\"game-download-finished\",\"id\":\"$id\"" $(( DOWNLOAD_TIMEOUT_S + 10 ))
  t1=$last_time
  stop_hogs
  walls[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  read_until '"type":"reply","cmd":"wait"' 30
  local rss_kib sent=() drops=() counters
  rss_kib=$(downloader_peak_rss_kib)
  for i in 0 1 2; do
    counters=$(seeder_tbf_counters "$i")
    sent+=("${counters%,*}")
    drops+=("${counters#*,}")
  done
  stop_downloader
  verify_download "$id"
  local commit_s
  commit_s=$(commit_seconds)
  if (( keep_log )); then
    cp "$tmp/dl/out.jsonl" "/tmp/multipeer-$name.jsonl"
    cp "$tmp/dl/err.log" "/tmp/multipeer-$name.dl.log"
  fi

  report_case "$name" "$mib" "$t0" "$t1" "$rss_kib" "$get_s,$commit_s" "${rates[@]}" "${sent[@]}" \
    "$(IFS=,; echo "${drops[*]}")"
  rm -rf "$tmp/dl"
}

# report_case NAME MIB T0 T1 RSS_KIB GET_S,COMMIT_S RATE0 RATE1 RATE2 SENT0 SENT1 SENT2 DROPS
report_case() {
  local name=$1 mib=$2 t0=$3 t1=$4 rss_kib=$5 get_s=${6%,*} commit_s=${6#*,}
  local r0=$7 r1=$8 r2=$9 s0=${10} s1=${11} s2=${12} tbf_drops=${13}
  awk -v name="$name" -v mib="$mib" -v t0="$t0" -v t1="$t1" -v rss="$rss_kib" \
      -v get_s="$get_s" -v commit_s="$commit_s" -v r0="$r0" -v r1="$r1" -v r2="$r2" -v s0="$s0" -v s1="$s1" -v s2="$s2" -v drops="$tbf_drops" \
      -v target="$TARGET_RATIO" -v rss_limit="$RSS_LIMIT_MIB" 'BEGIN {
    bytes = mib * 1048576
    wall = t1 - t0
    ideal = bytes * 8 / ((r0 + r1 + r2) * 1e6)
    ratio = ideal / wall
    printf "multipeer.%s size_MiB=%d rates_mbit=%d,%d,%d wall_s=%.2f MB_s=%.1f ideal_s=%.2f ratio=%.3f (target >= %.2f) rss_MiB=%.1f\n",
      name, mib, r0, r1, r2, wall, bytes / wall / 1e6, ideal, ratio, target, rss / 1024
    # Detail: bytes each seeder put on its link (QUIC and frame overhead
    # included) and the share of the payload they amount to.
    printf "  detail: sent_MiB=%.1f,%.1f,%.1f (%.0f%%,%.0f%%,%.0f%% of the game) link_util=%.2f,%.2f,%.2f tbf_drops=%s commit_s=%s ratio_without_commit=%.3f cold_get_s=%s%s%s\n",
      s0 / 1048576, s1 / 1048576, s2 / 1048576,
      100 * s0 / bytes, 100 * s1 / bytes, 100 * s2 / bytes,
      s0 * 8 / (r0 * 1e6 * wall), s1 * 8 / (r1 * 1e6 * wall), s2 * 8 / (r2 * 1e6 * wall), drops, commit_s, ideal / (wall - commit_s), get_s,
      (ratio < target ? "  BELOW TARGET" : ""), (rss / 1024 >= rss_limit ? "  RSS OVER LIMIT" : "")
  }'
}

declare -A walls=() # case name -> timed wall seconds

main() {
  parse_args "$@"
  check_prerequisites
  trap cleanup EXIT
  trap on_signal INT TERM
  tmp=$(mktemp -d /tmp/multipeer.XXXXXX)
  create_topology
  generate_games
  for i in 0 1 2; do
    start_seeder "$i"
  done
  wait_seeders_ready
  echo "# multipeer: $run_id, seeders $(host_addr 0)-$(host_addr 2), downloader $(host_addr 3);" \
       "tbf burst 4 ms (>= 16 KiB) latency $TBF_LATENCY; binaries from $build"
  local c
  for c in "${selected[@]}"; do
    case $c in
      even) run_case even "$GAME_BIG" "$big_mib" 100 100 100 ;;
      uneven) run_case uneven "$GAME_BIG" "$big_mib" "${uneven_rates[@]}" ;;
      uneven-small) run_case uneven-small "$GAME_SMALL" "$small_mib" "${uneven_rates[@]}" ;;
      uneven-small-busy)
        run_case uneven-small-busy "$GAME_SMALL" "$small_mib" "${uneven_rates[@]}" busy ;;
    esac
  done
  if [[ -n ${walls[uneven-small]:-} && -n ${walls[uneven-small-busy]:-} ]]; then
    awk -v q="${walls[uneven-small]}" -v b="${walls[uneven-small-busy]}" 'BEGIN {
      printf "multipeer.busy_vs_quiet ratio=%.3f (uneven-small %.2f s quiet, %.2f s with %s nice 19 busy loops; 1.0: no loss)\n",
        q / b, q, b, "'"$(nproc)"'" }'
  fi
}

main "$@"
