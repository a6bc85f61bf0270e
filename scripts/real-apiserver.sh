#!/usr/bin/env bash
# Obtain a real Kubernetes 1.36 CRD API server (the stock k8s.io/apiextensions-apiserver) plus etcd
# and kubectl for the contract tests in tests/contract/.
#
# No registry ships kube-apiserver, but Debian sid ships the Go sources of apiextensions-apiserver and
# everything it imports as golang-*-dev packages, plus Go and etcd. This script downloads those
# packages through a PRIVATE apt state directory (the system's apt sources and dpkg database are never
# touched, nothing is installed), unpacks them with `dpkg -x` and builds the server with the unpacked
# Go toolchain. The result is cached under
#     ${NEURONFLEET_CACHE:-<repo>/.cache}/real-apiserver/<key>/bin/{apiextensions-apiserver,etcd,kubectl}
# where <key> is a hash of the exact .deb file names (so of the package versions) and of this recipe,
# so a second run takes seconds. The last line on stdout is that directory; progress goes to stderr.
#
# Exit status: 0 ready; 2 the packages cannot be fetched (Debian mirror unreachable, package gone
# from sid) and no earlier build is cached; 3 the build failed.
#
# Environment:
#   NEURONFLEET_CACHE             cache root (default: <repo>/.cache)
#   NEURONFLEET_REALAPI_OFFLINE=1 skip apt entirely and use the newest cached build
#   NEURONFLEET_REALAPI_KEEP_WORK=1 keep the unpacked sources and Go build cache (~2 GB) for debugging
#   NEURONFLEET_REALAPI_LIST_HOURS refresh the sid package list when older than this (default 12)
#   NEURONFLEET_DEBIAN_MIRROR     Debian mirror URL (default: the system's first Debian mirror)
set -euo pipefail

RECIPE_VERSION=1   # bump when the build command below changes, so the cache key changes
K8S_VERSION=v1.36.4

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${NEURONFLEET_CACHE:-$repo/.cache}/real-apiserver
debs_list=$repo/scripts/real-apiserver-debs.txt

say() { printf 'real-apiserver: %s\n' "$*" >&2; }
die() { local code=$1; shift; printf 'real-apiserver: ERROR: %s\n' "$*" >&2; exit "$code"; }

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
if ! flock -n 9; then
    say "another run holds $cache_root/.lock; waiting"
    flock 9
fi

latest_build() {
    # Newest complete build, if any (a directory with a .complete marker).
    local d
    d=$(ls -1td "$cache_root"/*/.complete 2>/dev/null | head -n1 || true)
    [[ -n $d ]] && dirname "$d"
}

use_cached_or_die() {
    local why=$1 prev
    prev=$(latest_build || true)
    if [[ -n $prev ]]; then
        say "WARNING: $why; using the cached build $prev"
        echo "$prev"
        exit 0
    fi
    die 2 "$why; no cached build under $cache_root either. The contract tests need network access to a Debian mirror once."
}

if [[ ${NEURONFLEET_REALAPI_OFFLINE:-0} == 1 ]]; then
    use_cached_or_die "NEURONFLEET_REALAPI_OFFLINE=1"
fi

command -v apt-get >/dev/null || die 2 "apt-get not found (this script needs a Debian-like system)"
command -v dpkg >/dev/null || die 2 "dpkg not found"

# 1. A private apt state directory that sees only Debian sid. Never `apt-get install` from it.
mirror=${NEURONFLEET_DEBIAN_MIRROR:-}
if [[ -z $mirror ]]; then
    mirror=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
fi
if [[ -z $mirror ]]; then
    mirror=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}
aptdir=$cache_root/apt
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
echo "deb $mirror sid main" >"$aptdir/sid.list"
apt_opts=(
    -o "Dir::State::Lists=$aptdir/lists"
    -o "Dir::Etc::SourceList=$aptdir/sid.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::Cache=$aptdir/cache"
    -o "APT::Get::List-Cleanup=1"
    -o "Acquire::Retries=3"
    -o "APT::Sandbox::User=root"
)
# The list is refreshed at most every NEURONFLEET_REALAPI_LIST_HOURS (default 12): a warm run then
# needs no network beyond resolving the file names, and an older list only means older versions.
stamp=$aptdir/lists/.refreshed
max_age_min=$(( ${NEURONFLEET_REALAPI_LIST_HOURS:-12} * 60 ))
if [[ -f $stamp && -z $(find "$stamp" -mmin +"$max_age_min") && $(cat "$stamp") == "$mirror" ]]; then
    say "the private Debian sid package list is fresh (refreshed $(date -r "$stamp" -u +%FT%TZ))"
else
    say "refreshing the private Debian sid package list from $mirror"
    rm -f "$stamp"
    # --error-on=any: a mirror outage is an error, not a warning that leaves no package list.
    if ! apt-get "${apt_opts[@]}" -qq --error-on=any update >&2; then
        use_cached_or_die "cannot fetch the Debian sid package list from $mirror (mirror outage or no network?)"
    fi
    echo "$mirror" >"$stamp"
fi

mapfile -t go_debs < <(grep -v '^\s*\(#\|$\)' "$debs_list")
packages=(golang-1.26-go golang-1.26-src etcd-server kubectl "${go_debs[@]}")
# `pkg/sid` everywhere: the machine may have a newer non-Debian kubectl installed, which plain
# `apt-get download kubectl` would try (and fail) to fetch.
targets=()
for p in "${packages[@]}"; do targets+=("$p/sid"); done

# The URIs name every .deb with its version, so they make the cache key.
if ! uris=$(apt-get "${apt_opts[@]}" download --print-uris "${targets[@]}" 2>&1); then
    printf '%s\n' "$uris" | grep -E '^(E|W):' | head -n 5 >&2 || true
    use_cached_or_die "cannot resolve the sid packages (a package may have left sid; see scripts/real-apiserver-debs.txt)"
fi
key=$( { echo "recipe=$RECIPE_VERSION k8s=$K8S_VERSION"; printf '%s\n' "$uris" | awk '{print $2, $4}' | sort; } |
    sha256sum | cut -c1-16)
dest=$cache_root/$key

if [[ -f $dest/.complete ]]; then
    say "cached build for these package versions: $dest"
    echo "$dest"
    exit 0
fi

# 2. Download and unpack into a scratch directory next to the destination; rename when done.
work=$cache_root/.work-$key
rm -rf "$work"
mkdir -p "$work/debs" "$work/root" "$work/tools" "$work/out/bin"
# The Go build cache lives beside the builds: kept when a build fails (the rerun takes seconds),
# removed after a success unless NEURONFLEET_REALAPI_KEEP_WORK=1 (it is ~1.4 GB).
gocache=$cache_root/gocache
cleanup() {
    # Renamed now, deleted in the background: removing ~700 MB of small files can take minutes on
    # a busy disk, and nothing needs to wait for it.
    [[ ${NEURONFLEET_REALAPI_KEEP_WORK:-0} == 1 || ! -d $work ]] && return
    local trash=$cache_root/.trash-$$-$RANDOM
    mv "$work" "$trash" && (nohup rm -rf "$trash" >/dev/null 2>&1 &)
}
trap cleanup EXIT

say "no cached build for key $key; downloading ${#targets[@]} packages (about 100 MB)"
t0=$SECONDS
if ! (cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download "${targets[@]}") >&2; then
    use_cached_or_die "downloading the sid packages from $mirror failed"
fi
say "unpacking $(ls "$work/debs" | wc -l) packages"
for f in "$work"/debs/*.deb; do
    case $(basename "$f") in
        golang-*) dpkg -x "$f" "$work/root" ;;
        *) dpkg -x "$f" "$work/tools" ;;
    esac
done
say "download + unpack took $((SECONDS - t0)) s"

# 3. Build in GOPATH mode, as Debian builds Go packages: every import resolves from the unpacked
# /usr/share/gocode tree; no module proxy, no network.
goroot=$work/root/usr/lib/go-1.26
[[ -x $goroot/bin/go ]] || die 3 "unpacked Go toolchain not found at $goroot/bin/go"
say "building k8s.io/apiextensions-apiserver with $("$goroot/bin/go" version) (about 5 minutes on 2 cores)"
t0=$SECONDS
vpkg=k8s.io/component-base/version
if ! env PATH="$goroot/bin:$PATH" GO111MODULE=off GOTOOLCHAIN=local GOPROXY=off GOFLAGS= \
    GOCACHE="$gocache" GOPATH="$work/root/usr/share/gocode" CGO_ENABLED=0 \
    go build -trimpath \
    -ldflags "-s -w -X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=36" \
    -o "$work/out/bin/apiextensions-apiserver" k8s.io/apiextensions-apiserver >&2; then
    die 3 "go build failed (kept nothing; rerun with NEURONFLEET_REALAPI_KEEP_WORK=1 to inspect $work)"
fi
say "build took $((SECONDS - t0)) s"

for tool in etcd etcdctl kubectl; do
    src=$(find "$work/tools" -type f -name "$tool" -perm -u+x | head -n1)
    [[ -n $src ]] && cp "$src" "$work/out/bin/$tool"
done
[[ -x $work/out/bin/etcd ]] || die 3 "etcd binary not found in the etcd-server package"
"$work/out/bin/apiextensions-apiserver" --help >/dev/null || die 3 "the built server does not run"
"$work/out/bin/etcd" --version | head -n1 >&2 || true
printf '%s\n' "$uris" | awk '{print $2}' | sort >"$work/out/packages.txt"

rm -rf "$dest"
mv "$work/out" "$dest"
touch "$dest/.complete"
if [[ ${NEURONFLEET_REALAPI_KEEP_WORK:-0} != 1 ]]; then
    trash=$cache_root/.trash-gocache-$$
    mv "$gocache" "$trash" && (nohup rm -rf "$trash" >/dev/null 2>&1 &)
fi
# Keep this build and the one before it (a fallback); older ones only take disk.
ls -1td "$cache_root"/*/.complete 2>/dev/null | tail -n +3 | while read -r old; do
    say "removing the old build $(dirname "$old")"
    rm -rf "$(dirname "$old")"
done
say "ready: $dest ($(du -sh "$dest" | cut -f1))"
echo "$dest"
