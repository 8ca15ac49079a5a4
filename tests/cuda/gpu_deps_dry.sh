#!/usr/bin/env bash
# gpu_deps_dry.sh — scripts/gpu-deps.sh's derivation of the packages, offline, in a scratch copy
# (its own git folder and CMakeLists.txt: the repository's .gpu-deps is never touched), with
# stand-ins for dpkg, pkg-config and apt on PATH. Here no package owns the .pc files nor jpeglib.h
# (libraries built into /usr/local, say): the script must say so and take its fixed list, not stop.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/gpu_deps_dry.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/repo/scripts" "$T/bin"
cp "$ROOT/scripts/gpu-deps.sh" "$T/repo/scripts/"
cp "$ROOT/CMakeLists.txt" "$T/repo/"
git -C "$T/repo" init -q || exit 1
cat >"$T/bin/dpkg" <<'EOF'
#!/bin/sh
case "$1" in --print-architecture) echo amd64 ;; *) exit 1 ;; esac   # -S: no package owns it
EOF
cat >"$T/bin/dpkg-architecture" <<'EOF'
#!/bin/sh
echo x86_64-linux-gnu
EOF
cat >"$T/bin/pkg-config" <<'EOF'
#!/bin/sh
echo "/usr/local/lib/pkgconfig/$2.pc"
EOF
printf '#!/bin/sh\nexit 0\n' >"$T/bin/apt-cache"   # no dependencies
cat >"$T/bin/apt-get" <<'EOF'
#!/bin/sh
[ "$1" = download ] || exit 1
shift
for p in "$@"; do : >"${p}_1.0_amd64.deb"; done
EOF
cat >"$T/bin/dpkg-deb" <<'EOF'
#!/bin/sh
for f; do :; done   # the .deb: the last argument
echo "deb $(basename "$f" _1.0_amd64.deb) 1.0"
EOF
chmod +x "$T/bin"/*
out=$(cd "$T/repo" && PATH="$T/bin:$PATH" GPU_DEPS_NO_WHEELS=1 bash scripts/gpu-deps.sh 2>&1)
rc=$?
echo "$out"
fails=0
[ $rc -eq 0 ] || { echo "FAIL: gpu-deps.sh exit $rc, expected 0"; fails=$((fails + 1)); }
echo "$out" | grep -q "no package found here for pkg-config module 'lmdb'" || { echo "FAIL: no message for the unowned module"; fails=$((fails + 1)); }
echo "$out" | grep -q "using the fixed list" || { echo "FAIL: the fixed list was not taken"; fails=$((fails + 1)); }
for p in libopenblas-openmp-dev liblmdb-dev libjpeg62-turbo-dev pkgconf-bin; do
    [ -f "$T/repo/.gpu-deps/debs/${p}_1.0_amd64.deb" ] || { echo "FAIL: $p not downloaded"; fails=$((fails + 1)); }
done
grep -q '^deb liblmdb-dev 1.0$' "$T/repo/.gpu-deps/MANIFEST" 2>/dev/null || { echo "FAIL: MANIFEST lacks liblmdb-dev"; fails=$((fails + 1)); }
[ $fails -eq 0 ] && echo "gpu_deps_dry: all checks passed" && exit 0
echo "gpu_deps_dry: $fails failures"; exit 1
