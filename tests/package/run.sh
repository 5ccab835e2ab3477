#!/usr/bin/env bash
# tests/package/run.sh: the Debian package on this machine, end to end (run
# by scripts/test after the other suites; needs root, since it installs the
# package). In order:
#   1. scripts/package builds the .deb (and runs lintian);
#   2. apt installs it; --version of each program prints CMake's version,
#      man -w finds each man page, the system user and its directories exist;
#   3. systemd-analyze verify on both units (systemd is not PID 1 here, so
#      the system unit cannot be started: its ExecStart runs as its User=,
#      without privileges, in a network namespace of this test, and serves a
#      game to an installed lanspread-peer-cli);
#   4. a download between two installed lanspread-peer-cli processes on the
#      namespace's loopback;
#   5. dpkg -r removes every file but the conffiles, dpkg -P those too, and
#      the user's data (the seeder's games) is still there.
# Exit 0 when all held, 77 when it cannot run (not root), 1 otherwise. The
# package, the namespace, the processes and the temp dir are removed also
# on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ $(id -u) -ne 0 ]]; then
  echo "skipped: the package test installs a package: it needs root"
  exit 77
fi
if dpkg-query -W -f='${Status}' lanspread 2>/dev/null | grep -q installed; then
  echo "package test: lanspread is already installed here; it would be replaced and removed (dpkg -P lanspread first)" >&2
  exit 1
fi

version=$(sed -n 's/^project(lanspread VERSION \([0-9.]*\) .*/\1/p' CMakeLists.txt)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lanspread-pkg.XXXXXX")
chmod 755 "$tmp"
ns=lspkg$$
pids=()
user_existed=0
id lanspread >/dev/null 2>&1 && user_existed=1
installed=0

cleanup() {
  local p
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  if (( installed )); then dpkg -P lanspread >/dev/null 2>&1 || true; fi
  if (( installed && !user_existed )); then
    pkill -KILL -u lanspread 2>/dev/null || true
    rm -rf /var/lib/lanspread
    userdel lanspread 2>/dev/null || true
    groupdel lanspread 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "package test: FAILED: $*" >&2; exit 1; }
step() { echo "--- $*"; }

# Waits until FILE has a line matching REGEX (at most SECONDS).
wait_line() { # file regex seconds
  local end=$((SECONDS + $3))
  until grep -qE "$2" "$1" 2>/dev/null; do
    (( SECONDS < end )) || return 1
    sleep 0.2
  done
}

step "build"
deb=$(scripts/package | tail -n 1)
[[ -f $deb ]] || fail "scripts/package made no .deb"
cp "$deb" "$tmp/"
deb=$tmp/$(basename "$deb")

step "install $(basename "$deb")"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >"$tmp/apt.log" 2>&1 ||
  { cat "$tmp/apt.log" >&2; fail "apt-get install"; }
installed=1
dpkg -L lanspread | sort >"$tmp/files"
dpkg-query -W -f='${Conffiles}\n' lanspread | awk 'NF { print $1 }' | sort >"$tmp/conffiles"

for prog in lanspread lanspread-peer-cli lanspread-gen; do
  got=$(command -v "$prog") || fail "$prog is not on PATH"
  [[ $got == /usr/bin/$prog ]] || fail "$prog is $got, not /usr/bin/$prog"
  out=$("$prog" --version)
  [[ $out == "$prog $version" ]] || fail "$prog --version said '$out', not '$prog $version'"
  page=$(man -w "$prog") || fail "man -w $prog found no page"
  echo "$prog --version: $out; man page: $page"
done
[[ $(man -w lanspread) == /usr/share/man/man1/lanspread.1.gz ]] || fail "man -w lanspread: $(man -w lanspread)"
id lanspread >/dev/null || fail "no system user lanspread"
[[ $(stat -c %U /var/lib/lanspread/games) == lanspread ]] || fail "/var/lib/lanspread/games is not the seeder's"
[[ $(stat -c %a /var/lib/lanspread/state) == 700 ]] || fail "/var/lib/lanspread/state is not 0700"
grep -q '^ports=8361/udp' /etc/ufw/applications.d/lanspread || fail "the ufw profile does not open 8361/udp"

step "systemd units"
system_unit=/lib/systemd/system/lanspread-seeder.service
user_unit=/usr/lib/systemd/user/lanspread.service
systemd-analyze verify "$system_unit" || fail "systemd-analyze verify $system_unit"
mkdir -m 700 "$tmp/run"
XDG_RUNTIME_DIR=$tmp/run systemd-analyze --user verify "$user_unit" || fail "systemd-analyze --user verify $user_unit"
if [[ $(ps -p 1 -o comm=) == systemd ]]; then
  echo "note: systemd is PID 1 here, but the test still runs the unit's command itself (it must not touch the host's network)"
fi

ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }

step "the system unit's command serves a game (as its user, in namespace $ns)"
exec_start=$(sed -n 's/^ExecStart=//p' "$system_unit")
unit_user=$(sed -n 's/^User=//p' "$system_unit")
[[ -n $exec_start && $unit_user == lanspread ]] || fail "unexpected unit: ExecStart='$exec_start' User='$unit_user'"
# The game: aoe2 of the bundled catalog, made by the installed generator.
lanspread-gen --quiet --game-dir "$tmp/gen" --id-prefix g --games 1 --archives 2 --size 3M \
  --format tar --game-version 1.0 --expect-dir "$tmp/want"
mv "$tmp/gen/g0001" /var/lib/lanspread/games/aoe2
chown -R lanspread: /var/lib/lanspread/games/aoe2
read -ra cmd <<<"$exec_start"
ip netns exec "$ns" setpriv --reuid=lanspread --regid=lanspread --init-groups --no-new-privs \
  --inh-caps=-all --bounding-set=-all env -i HOME=/var/lib/lanspread PATH=/usr/bin:/bin \
  "${cmd[@]}" >"$tmp/seeder.out" 2>"$tmp/seeder.err" &
seeder=$!
pids+=("$seeder")
wait_line "$tmp/seeder.out" '^Lanspread UI: http://127\.0\.0\.1:8360/' 20 ||
  { cat "$tmp/seeder.err" >&2; fail "the seeder did not start"; }
cat "$tmp/seeder.out"
[[ $(stat -c %U /var/lib/lanspread/state/node.key) == lanspread ]] || fail "the seeder's key is not its own"

mkdir -p "$tmp/leech/games"
printf 'wait-peers 1 20\ndownload aoe2\nwait game-install-finished aoe2 120\nquit\n' |
  in_ns lanspread-peer-cli --game-dir "$tmp/leech/games" --state-dir "$tmp/leech/state" \
    --listen 127.0.0.1:9102 --peer 127.0.0.1:8361 --no-mdns >"$tmp/leech.jsonl" 2>"$tmp/leech.err" ||
  { cat "$tmp/leech.err" >&2; fail "lanspread-peer-cli (from the seeder) failed"; }
grep -q '"type":"game-install-finished"' "$tmp/leech.jsonl" ||
  { cat "$tmp/leech.jsonl" "$tmp/leech.err" >&2; fail "no install of aoe2 from the seeder"; }
diff -r "$tmp/want/g0001" "$tmp/leech/games/aoe2/local" || fail "aoe2 from the seeder differs"
echo "aoe2 came from the seeder's UDP 8361 and installed"
kill -TERM "$seeder" # what systemctl stop sends
rc=0
wait "$seeder" || rc=$?
(( rc == 0 )) || { cat "$tmp/seeder.err" >&2; fail "the seeder exited $rc after SIGTERM, not 0"; }
echo "the seeder stopped on SIGTERM with status 0"

step "a download between two installed lanspread-peer-cli processes"
lanspread-gen --quiet --game-dir "$tmp/a/games" --id-prefix g --games 1 --archives 3 --size 5M \
  --format tar --game-version 2.0 --catalog "$tmp/catalog.json" --expect-dir "$tmp/want2"
mkfifo "$tmp/a.in"
ip netns exec "$ns" lanspread-peer-cli --game-dir "$tmp/a/games" --state-dir "$tmp/a/state" --catalog "$tmp/catalog.json" \
  --listen 127.0.0.1:9201 --no-mdns --serve <"$tmp/a.in" >"$tmp/a.jsonl" 2>"$tmp/a.err" &
pids+=($!)
exec 7>"$tmp/a.in"
wait_line "$tmp/a.jsonl" '"type":"ready"' 20 || { cat "$tmp/a.err" >&2; fail "peer a did not start"; }
mkdir -p "$tmp/b/games"
printf 'wait-peers 1 20\ndownload g0001\nwait game-install-finished g0001 120\nquit\n' |
  in_ns lanspread-peer-cli --game-dir "$tmp/b/games" --state-dir "$tmp/b/state" --catalog "$tmp/catalog.json" \
    --listen 127.0.0.1:9202 --peer 127.0.0.1:9201 --no-mdns >"$tmp/b.jsonl" 2>"$tmp/b.err" ||
  { cat "$tmp/b.err" >&2; fail "peer b failed"; }
grep -q '"type":"game-install-finished"' "$tmp/b.jsonl" ||
  { cat "$tmp/b.jsonl" "$tmp/b.err" >&2; fail "no install of g0001 on b"; }
cmp "$tmp/a/games/g0001/version.ini" "$tmp/b/games/g0001/version.ini" || fail "version.ini differs"
for f in "$tmp"/a/games/g0001/*.eti; do
  cmp "$f" "$tmp/b/games/g0001/$(basename "$f")" || fail "$(basename "$f") differs"
done
diff -r "$tmp/want2/g0001" "$tmp/b/games/g0001/local" || fail "b's install differs"
echo "g0001 went from a to b and installed"
echo quit >&7
exec 7>&-
wait "${pids[-1]}" || fail "peer a did not quit cleanly"
pids=()

step "remove (dpkg -r), then purge (dpkg -P)"
dpkg -r lanspread >/dev/null
left=()
while read -r f; do
  [[ -d $f ]] && continue
  if [[ -e $f || -L $f ]] && ! grep -qxF "$f" "$tmp/conffiles"; then left+=("$f"); fi
done <"$tmp/files"
(( ${#left[@]} == 0 )) || fail "dpkg -r left: ${left[*]}"
[[ -f /etc/lanspread/config.json ]] || fail "dpkg -r removed the conffile /etc/lanspread/config.json"
dpkg -P lanspread >/dev/null
installed=0
while read -r f; do
  [[ -d $f ]] && continue
  [[ -e $f || -L $f ]] && fail "dpkg -P left $f"
done <"$tmp/files"
[[ ! -e /etc/lanspread ]] || fail "dpkg -P left /etc/lanspread"
[[ -f /var/lib/lanspread/games/aoe2/version.ini ]] || fail "removing the package deleted the seeder's games"
echo "removed: no file of the package is left; the seeder's games and state are"
installed=1 # so that cleanup removes this test's user and data
echo "package test: passed"
