#!/usr/bin/env bash
# gpu-deps.sh — run HERE (Debian 12, apt and pip with network) before a GPU device run. Fills
# .gpu-deps/ (ignored through .git/info/exclude) with what the bare, offline GPU image lacks:
#   .gpu-deps/debs/    the -dev packages of every library CMakeLists.txt asks pkg-config /
#                      find_package(JPEG) for, with their library dependencies (the toolchain's
#                      own — libc, libgcc, libgomp, libstdc++ — excluded: the image's gcc brings
#                      newer ones), plus pkgconf (used only if the image has no pkg-config)
#   .gpu-deps/wheels/  diffusers and the pure-python dependencies the image lacks
#   .gpu-deps/MANIFEST what was taken, with versions
# scripts/gpu-check.sh unpacks the debs into $BUILD/deps (dpkg -x, never into /) and installs the
# wheels into $BUILD/pysite when it finds them. The device call carries the folder:
#   run(command="OUT=$OUT bash scripts/gpu-check.sh", carry=[".gpu-deps"], timeout_s=600)
# MPI is not brought: without it cameo builds single-process (CMake option CAMEO_MPI).
# Environment: DIFFUSERS (diffusers version, default 0.42.1), GPU_DEPS_NO_WHEELS=1 (skip wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.gpu-deps
DIFFUSERS=${DIFFUSERS:-0.42.1}
# diffusers' Requires-Dist the image lacks: importlib_metadata (8.7: needs only zipp, which the
# image has; 3.12's diffusers uses the standard library's importlib.metadata anyway)
WHEELS=("diffusers==$DIFFUSERS" "importlib_metadata==8.7.0")
ARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
[ "$(dpkg --print-architecture)" = amd64 ] || { echo "gpu-deps: needs an amd64 Debian machine (the device is x86-64)"; exit 1; }

# --- never travels in git, travels as a carried path ---
EXCLUDE=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$EXCLUDE")"
grep -qxF '/.gpu-deps/' "$EXCLUDE" 2>/dev/null || echo '/.gpu-deps/' >>"$EXCLUDE"

# --- the roots: the -dev package owning each pkg-config module and header CMakeLists.txt needs ---
# (derived on this machine, where scripts/setup.sh installed them; the fallback list is the same
# set spelt out)
FALLBACK=(libopenblas-openmp-dev liblmdb-dev libzstd-dev libwebp-dev libyaml-dev libpng-dev libcjson-dev libjpeg62-turbo-dev)
mods=$(grep -oE 'pkg_check_modules\([^)]*\)' CMakeLists.txt | sed -E 's/.*[[:space:]]([^[:space:])]+)\)$/\1/' | sort -u)
roots=()
for m in $mods; do
    pc=$(PKG_CONFIG_PATH=/usr/lib/$ARCH/openblas-openmp/pkgconfig pkg-config --path "$m" 2>/dev/null || true)
    p=""
    # (|| true: under pipefail a file no package owns would end the script here, silently)
    [ -n "$pc" ] && p=$(dpkg -S "$(readlink -f "$pc")" 2>/dev/null | head -1 | cut -d: -f1 || true)
    [ -n "$p" ] && roots+=("$p") || echo "gpu-deps: no package found here for pkg-config module '$m'"
done
if grep -q 'find_package(JPEG' CMakeLists.txt; then
    p=$(dpkg -S /usr/include/jpeglib.h 2>/dev/null | head -1 | cut -d: -f1 || true)
    roots+=("${p:-libjpeg62-turbo-dev}")
fi
[ ${#roots[@]} -ge ${#FALLBACK[@]} ] || { echo "gpu-deps: derivation incomplete (${roots[*]:-none}); using the fixed list"; roots=("${FALLBACK[@]}"); }
# tools the image may lack; gpu-check.sh uses them only where the image has none
TOOLS=(pkgconf-bin)

# --- closure over Depends (no Recommends), the toolchain / libc part left to the image ---
BASE='^(libc6|libc6-dev|libc-dev-bin|linux-libc-dev|libcrypt1|libcrypt-dev|libnsl2|libnsl-dev|libtirpc.*|rpcsvc-proto|libgcc-s1|gcc-[0-9]+-base|libgomp1|libstdc\+\+6|libssl3|libgssapi-krb5-2|libk5crypto3|libkeyutils1|libkrb5.*|libcom-err2|debconf|dpkg|perl-base|libselinux1|libpcre2-8-0)$'
declare -A seen=()
queue=("${roots[@]}" "${TOOLS[@]}")
pkgs=()
while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}; queue=("${queue[@]:1}")
    [ -n "${seen[$p]:-}" ] && continue
    seen[$p]=1
    [[ $p =~ $BASE ]] && continue
    pkgs+=("$p")
    while read -r dep; do
        [ -n "$dep" ] && queue+=("$dep")
    done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
                 --no-enhances "$p" 2>/dev/null | sed -nE 's/^ +\|?(Pre)?Depends: ([^<][^ ]*)$/\2/p')
done
echo "gpu-deps: CMakeLists.txt needs ${roots[*]}"
echo "gpu-deps: downloading ${#pkgs[@]} packages: ${pkgs[*]}"

rm -rf "$DEST/debs.new"
mkdir -p "$DEST/debs.new"
if ! (cd "$DEST/debs.new" && apt-get download "${pkgs[@]}" >/dev/null 2>"../apt.err"); then
    echo "gpu-deps: apt-get download failed ($(tail -1 "$DEST/apt.err")); apt-get update, then again"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    (cd "$DEST/debs.new" && apt-get download "${pkgs[@]}" >/dev/null)
fi
rm -f "$DEST/apt.err"
rm -rf "$DEST/debs" && mv "$DEST/debs.new" "$DEST/debs"

# --- wheels ---
if [ -z "${GPU_DEPS_NO_WHEELS:-}" ]; then
    rm -rf "$DEST/wheels.new"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$DEST/wheels.new" "${WHEELS[@]}"
    rm -rf "$DEST/wheels" && mv "$DEST/wheels.new" "$DEST/wheels"
    for w in "$DEST"/wheels/diffusers-*.whl; do
        echo "gpu-deps: $(basename "$w") needs (the image has the others, see docs/cuda.md):"
        unzip -p "$w" '*/METADATA' | grep '^Requires-Dist' | grep -v 'extra ==' | sed 's/^/    /'
    done
fi

# --- manifest and size ---
{
    echo "# .gpu-deps made by scripts/gpu-deps.sh on $(date -u '+%Y-%m-%d %H:%M UTC'), $(. /etc/os-release; echo "$PRETTY_NAME")"
    for d in "$DEST"/debs/*.deb; do dpkg-deb -W --showformat="deb \${Package} \${Version}\n" "$d"; done
    for w in "$DEST"/wheels/*.whl; do [ -f "$w" ] && echo "wheel $(basename "$w")"; done
} >"$DEST/MANIFEST"
size=$(du -sb "$DEST" | cut -f1)
echo "gpu-deps: $(ls "$DEST"/debs/*.deb | wc -l) debs ($(du -sh "$DEST/debs" | cut -f1)), $(ls "$DEST"/wheels/*.whl 2>/dev/null | wc -l) wheels ($(du -sh "$DEST/wheels" 2>/dev/null | cut -f1)); total $((size / 1024 / 1024)) MiB in $DEST/"
if [ "$size" -gt $((40 * 1024 * 1024)) ]; then
    echo "gpu-deps: WARNING: over 40 MiB; the working tree travels too (64 MiB in all)"
fi
