#!/usr/bin/env bash
# gpu-check.sh — the whole GPU check in one command, no network, bounded by DEADLINE (default 540 s:
# a device call's 10 minutes less the margin; DEADLINE=470 keeps it under 8 minutes, the sanitizer
# and the ncu profile, last, taking what is left either way):
#   0. inventory: GPU, driver, nvcc, cmake, gcc, python3 (torch, diffusers), and for each library
#      cameo needs whether the image has it; the libraries it lacks come from .gpu-deps/
#      (scripts/gpu-deps.sh, run beforehand where apt works: .debs unpacked into BUILD/deps, never
#      into /; wheels installed into BUILD/pysite)
#   1. configure with CUDA for sm_90 and build          (BUILD dir, default build/)
#   2. ctest -L cuda                                     (every backend op, GPU vs CPU, f32 + bf16)
#   3. the GPU benchmark                                  (bf16 peak, GEMM vs cuBLAS, the mma / wgmma ceilings, flash attention by family)
#   3a. the model benchmark                               (FLUX blocks + IP at 512²: MFU, PyTorch; the full step's memory;
#       then at 1024², the third stage's shapes; with wgmma3; at batch 8, a card's share of the paper's batch)
#       with --profile: each block's and each step's device time per op (kernels/profile.h)
#   4. a tiny training run on the GPU (bf16) compared with the same run on the CPU (f32)
#   4a. the same, short, with bf16 AdamW moments and the projector held (adapter.freeze)
#   4b. an evaluation sweep (cameo eval) of its checkpoint on the GPU against the CPU
#   4c. with two GPUs or more (and MPI, NCCL): 2 ranks over NCCL against 1 process (e2e_mpi's NCCL half)
#   4d. compute-sanitizer memcheck + racecheck            (cameo's own kernels, every attention family)
#       (PROFILE=1: an ncu profile of the attention kernels first, as the sanitizer takes what is left)
#   (the kernels' GPU-against-CPU tests first: a benchmark of a wrong kernel means nothing; then the
#   figures issue 6 still lacks, which earlier H100 runs could not all take in the time; then the
#   end-to-end runs, which passed on the H100 before (their CPU references are the slow part), and
#   the sanitizer, which takes what is left of DEADLINE)
#   5. a short results table, written last               ($OUT/gpu-check.md if OUT is set, else BUILD/gpu-check.md;
#      also after every step, marked unfinished, for a run stopped from outside)
# Exit status: 0 when the build and the GPU tests pass (the benchmark and the training run never
# fail the check; their outcome is in the table). Every step has a timeout, and all of them together
# stay inside DEADLINE seconds (later steps get what is left), so the table is always written.
# With OUT set, the table and the logs are copied there after every step (8 files at most: what a device run
# brings back): gpu-check.md inventory.log configure.log build.log ctest.log bench.log train.log
# train-cpu.log.
# Environment: BUILD (build dir), ARCH (CUDA architectures; default: GPU 0's compute capability as
#              nvidia-smi reports it — 90a on sm_90, sm_90 with wgmma; 80 on an A100, 89, 100, ... —,
#              90a when it reports none), JOBS (build parallelism),
#              BENCH_ARGS (extra arguments to the benchmark, e.g. --quick), SKIP (steps to leave out,
#              e.g. SKIP=train,train2,sanitizer for a rerun of the benchmarks), PROFILE=1 (an ncu
#              profile of the attention kernels, into bench.log), DEADLINE (seconds for
#              the whole check, default 540), GPU_DEPS (auto: the image's libraries when it has
#              every one, else all from .gpu-deps; always; off), GPU_DEPS_DIR (default .gpu-deps),
#              GENERATOR (CMake generator for a new build dir; default Ninja when ninja is there).
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
ARCH_ASKED=${ARCH:-}   # empty: chosen from the GPU below
ARCH=${ARCH:-90a}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
DEADLINE=${DEADLINE:-540}
SKIP=${SKIP:-}   # steps left out, comma-separated: ctest,train,train_cpu,train2,train3,eval,nccl,bench,blocks,blocks1024,blocks_wgmma3,blocks_b8,text_cache,ref_cache,sanitizer
GPU_DEPS=${GPU_DEPS:-auto}
DEPS_SRC=${GPU_DEPS_DIR:-$ROOT/.gpu-deps}
RESULTS=${OUT:+$OUT/gpu-check.md}
RESULTS=${RESULTS:-$BUILD/gpu-check.md}
LOG=$BUILD/gpu-check-logs
INV=$LOG/inventory.log
mkdir -p "$BUILD" "$LOG" "$(dirname "$RESULTS")"
# every output of an earlier check on this machine (a warm machine keeps the build folder): the
# training runs would otherwise refuse their run folders as an earlier run's
rm -rf "$LOG"/*.log "$LOG"/*.md "$LOG"/run-* "$LOG"/eval-*
START=$(date +%s)
export PATH=/usr/local/cuda/bin:$PATH
MA=$(gcc -print-multiarch 2>/dev/null); MA=${MA:-x86_64-linux-gnu}

status_deps="not run"; status_python="not run"
status_build="not run"; status_test="not run"; status_bench="not run"; status_train="not run"
status_train2="not run"; status_train3="not run"; status_eval="not run"; status_blocks="not run"; status_blocks1024="not run"; status_blocks_wg3="not run"; status_blocks_b8="not run"; status_text_cache="not run"; status_ref_cache="not run"
status_sanitizer="not run"; status_profile="not asked (PROFILE=1)"; status_nccl="not run"
test_summary=""; gpu_name="unknown"; BENCH_MD=$LOG/bench.md

step() { printf '\n=== %s (%ss) ===\n' "$1" "$(( $(date +%s) - START ))"; }
elapsed() { echo "$(( $(date +%s) - $1 ))s"; }
# cap N: a step's timeout: N seconds, or less so that 25 s stay for the table before DEADLINE
cap() {
    local left=$(( DEADLINE - ($(date +%s) - START) - 25 ))
    if [ "$left" -lt "$1" ]; then echo $(( left > 5 ? left : 5 )); else echo "$1"; fi
}
skipping() { case ",$SKIP," in *",$1,"*) return 0 ;; esac; return 1; }
# loss_gap A B BOUND DIGITS: two runs' metrics.jsonl line by line, the worst relative gap of their
# smoothed losses printed (DIGITS decimals); exit 0 when there are lines and it is within BOUND
loss_gap() {
    paste -d' ' "$1" "$2" | awk -v bound="$3" -v digits="$4" '
            { g = $0; sub(/\} \{.*/, "", g); sub(/.*"loss_smoothed":/, "", g); sub(/,.*/, "", g)
              c = $0; sub(/^.*\} \{/, "", c); sub(/.*"loss_smoothed":/, "", c); sub(/,.*/, "", c)
              d = (g - c) / c; if (d < 0) d = -d; if (d > worst) worst = d; n++ }
            END { printf "%d points, worst relative gap %." digits "f", n, worst; exit (n > 0 && worst <= bound) ? 0 : 1 }'
}
out_of_time() { [ $(( DEADLINE - ($(date +%s) - START) )) -lt "${1:-40}" ]; }
# the results table as it stands (after every step too: a run stopped from outside, e.g. by a
# device call's timeout_s under DEADLINE, still brings one back); `write_table final` at the end
write_table() {
    {
        echo "# cameo GPU check"
        echo
        echo "$(date '+%Y-%m-%d %H:%M %Z') · $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ' + changes') · GPU: $gpu_name · total $(elapsed "$START")"
        [ "${1:-}" = final ] || { echo; echo "**Unfinished:** written $(elapsed "$START") into the check; the steps not reached say 'not run'."; }
        echo
        echo "| step | result |"
        echo "|---|---|"
        echo "| libraries | $status_deps |"
        echo "| python (comparison scripts) | $status_python |"
        echo "| build (sm_$ARCH) | $status_build |"
        echo "| ctest -L cuda | $status_test |"
        echo "| benchmark | $status_bench |"
        echo "| model benchmark (blocks, full step) | $status_blocks |"
        echo "| the same at 1024² (4096 image tokens; stage 3) | $status_blocks1024 |"
        echo "| the 512² step with CAMEO_ATTN=wgmma3 (warp-specialised attention) | $status_blocks_wg3 |"
        echo "| the 512² step at batch 8 (the paper config's 64 over 8 GPUs) | $status_blocks_b8 |"
        echo "| text cache: full-size rows read and sent to the card (bench text-cache) | $status_text_cache |"
        echo "| reference cache: full-size features read and sent to the card (bench ref-cache) | $status_ref_cache |"
        echo "| compute-sanitizer | $status_sanitizer |"
        echo "| ncu profile (attention) | $status_profile |"
        echo "| tiny GPU training | $status_train |"
        echo "| tiny GPU training, bf16 moments + adapter.freeze + recompute auto | $status_train2 |"
        echo "| tiny GPU training with the three caches (model.text_cache + ref_cache + latent_cache) against without | $status_train3 |"
        echo "| tiny GPU evaluation sweep | $status_eval |"
        echo "| NCCL: 2 ranks on 2 GPUs against 1 process | $status_nccl |"
        echo
        if [ -f "$BENCH_MD" ]; then
            echo "## benchmark"
            echo
            cat "$BENCH_MD"
            echo
            # the attention rows the decisions read (docs/cuda.md, "After the run"), fastest first
            if grep -q '^| attention fwd+bwd' "$BENCH_MD"; then
                echo "## attention fwd+bwd, fastest first"
                echo
                echo '```'
                for pat in '^\| attention fwd\+bwd \[' '^\| attention fwd\+bwd at 512\^2, joint \[' \
                           '^\| attention fwd\+bwd at 512\^2, IP \[' '^\| attention fwd\+bwd at 512\^2, joint \+ IP \['; do
                    grep -E "$pat" "$BENCH_MD" |
                        awk -F'|' '{ gsub(/^ +| +$/, "", $2); gsub(/ /, "", $4); printf "%10s ms  %s\n", $4, $2 }' | sort -g
                    echo
                done
                echo '```'
            fi
        fi
        if grep -q '^FAIL' "$LOG/ctest.log" 2>/dev/null; then
            echo "## failing comparisons"
            echo
            echo '```'
            grep '^FAIL' "$LOG/ctest.log" | head -40
            echo '```'
        fi
    } >"$RESULTS"
}
publish() {
    collect_python 0
    write_table
    [ -n "${OUT:-}" ] || return 0
    local f
    for f in inventory configure build ctest bench train train-cpu; do
        [ -f "$LOG/$f.log" ] && cp -f "$LOG/$f.log" "$OUT/" 2>/dev/null
    done
    return 0
}
inv() { tee -a "$INV"; }
# runs our binaries with the libraries taken from .gpu-deps (empty when none)
RUN_LD=""
with_deps() { if [ -n "$RUN_LD" ]; then LD_LIBRARY_PATH=$RUN_LD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$@"; else "$@"; fi; }
ver() { "$@" 2>&1 | grep -m1 -E '[0-9]+\.[0-9]+' || echo "not found"; }

# ---------------------------------------------------------------------------------------------
step "inventory" | inv
{
    echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')  host $(uname -n) $(uname -r)"
    echo "system:   $( (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME") || echo '?'), glibc $(ldd --version 2>&1 | head -1 | grep -oE '[0-9.]+$'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo 2>/dev/null), user $(id -un 2>/dev/null || id -u)"
    echo "tree:     $ROOT (git $(git rev-parse --short HEAD 2>/dev/null || echo 'n/a')), BUILD=$BUILD, DEADLINE=${DEADLINE}s"
} | inv
if command -v nvidia-smi >/dev/null 2>&1; then
    timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_cap --format=csv,noheader \
        >"$LOG/gpu.txt" 2>&1 \
        || timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader >"$LOG/gpu.txt" 2>&1
    gpu_name=$(head -1 "$LOG/gpu.txt")
    echo "gpu:      $gpu_name" | inv
    # the architecture GPU 0 runs: code built for sm_90a alone runs on nothing else (an A100 would
    # fail every kernel with "no kernel image"), so it follows the card unless ARCH says otherwise
    cc=$(echo "$gpu_name" | awk -F', *' 'NF >= 5 && $5 ~ /^[0-9]+\.[0-9]+$/ {print $5}')
    if [ -z "$ARCH_ASKED" ] && [ -n "$cc" ]; then
        case "$cc" in 9.0) ARCH=90a ;; *) ARCH=${cc/./} ;; esac
        echo "arch:     compute capability $cc: building for sm_$ARCH (ARCH= to choose)" | inv
    fi
    timeout 30 nvidia-smi 2>&1 | head -20 >>"$INV"
else
    echo "gpu:      nvidia-smi not found: the tests will report whether a device is usable" | inv
fi
{
    echo "nvcc:     $(command -v nvcc || echo -) $(nvcc --version 2>&1 | grep -m1 release || echo "not found")"
    echo "cmake:    $(command -v cmake || echo -) $(ver cmake --version)"
    echo "ctest:    $(command -v ctest || echo -)"
    echo "gcc:      $(command -v gcc || echo -) $(ver gcc --version)"
    echo "g++:      $(command -v g++ || echo -) $(ver g++ --version)"
    echo "ninja:    $(command -v ninja || echo -) $(ver ninja --version)"
    echo "make:     $(command -v make || echo -) $(ver make --version)"
    echo "pkg-conf: $(command -v pkg-config || echo -) $(ver pkg-config --version)"
    echo "dpkg:     $(command -v dpkg || echo -)   ar: $(command -v ar || echo -)"
    echo "python3:  $(command -v python3 || echo -) $(ver python3 --version)"
    m=$(mpicc --showme:version 2>/dev/null || mpicc --version 2>/dev/null | head -1)
    echo "mpi:      ${m:-none (cameo builds single-process)}"
} | inv

# ---------------------------------------------------------------------------------------------
# Dependencies. What CMakeLists.txt asks for: pkg-config modules + find_package(JPEG) (+ MPI,
# optional). The image is asked first (its own pkg-config and standard folders only).
step "dependencies" | inv
# the modules CMakeLists.txt asks pkg-config for (VAR module pairs), as scripts/gpu-deps.sh reads them
PAIRS=$(grep -oE 'pkg_check_modules\([^)]*\)' CMakeLists.txt 2>/dev/null \
        | sed -E 's/pkg_check_modules\(([A-Za-z_]+)[^)]*[[:space:]]([^[:space:])]+)\)$/\1 \2/')
[ -n "$PAIRS" ] || PAIRS=$'OPENBLAS openblas\nLMDB lmdb\nZSTD libzstd\nWEBP libwebp\nYAML yaml-0.1\nPNG libpng\nCJSON libcjson'
MODS=$(echo "$PAIRS" | awk '{print $2}' | paste -sd' ')
VARS=$(echo "$PAIRS" | awk '{print $1}' | paste -sd' ')
DEPS=$BUILD/deps
PC=$(command -v pkg-config 2>/dev/null)
[ -n "$PC" ] && [ -x "$PC" ] && "$PC" --version >/dev/null 2>&1 || PC=""
# the image's pkg-config view: its standard folders and Debian/Ubuntu's openblas-openmp folder
img_pc() { [ -n "$PC" ] && env -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH=/usr/lib/$MA/openblas-openmp/pkgconfig "$PC" "$@" 2>/dev/null; }
have_debs=0
ls "$DEPS_SRC"/debs/*.deb >/dev/null 2>&1 && have_debs=1

unpack_debs() {  # .gpu-deps/debs/*.deb -> $DEPS (a prefix, never /), .pc files and links made to point inside it
    local d n=0 bad=0 m dpkg_ok=0
    rm -rf "$DEPS"; mkdir -p "$DEPS"
    dpkg --version >/dev/null 2>&1 && dpkg_ok=1
    for d in "$DEPS_SRC"/debs/*.deb; do
        if [ "$dpkg_ok" = 1 ] && dpkg -x "$d" "$DEPS" 2>>"$INV"; then n=$((n + 1)); continue; fi
        m=$(cd "$DEPS" && ar t "$d" 2>/dev/null | grep -m1 '^data\.tar')
        case "$m" in
            *.xz)  (cd "$DEPS" && ar p "$d" "$m" | tar -xJ) ;;
            *.zst) (cd "$DEPS" && ar p "$d" "$m" | tar --zstd -x) ;;
            *.gz)  (cd "$DEPS" && ar p "$d" "$m" | tar -xz) ;;
            *)     false ;;
        esac && n=$((n + 1)) || { bad=$((bad + 1)); echo "  could not unpack $(basename "$d")"; }
    done
    # .pc files say prefix=/usr (or absolute /usr/... paths): make them point into $DEPS
    find "$DEPS" -name '*.pc' -print0 | xargs -0 -r sed -i -E \
        -e "s#^([A-Za-z_]+)=/usr#\1=$DEPS/usr#" -e "s#^([A-Za-z_]+)=/lib#\1=$DEPS/lib#" \
        -e "s#([[:space:]]-[IL])/usr/#\1$DEPS/usr/#g"
    # absolute symlinks (libz.so -> /lib/.../libz.so.1.2.13) point into $DEPS too
    find "$DEPS" -type l -print0 | while IFS= read -r -d '' l; do
        t=$(readlink "$l")
        case "$t" in /*) [ -e "$DEPS$t" ] && ln -sfn "$DEPS$t" "$l" ;; esac
    done
    echo "  unpacked $n .deb into $DEPS ($(du -sh "$DEPS" | cut -f1)); $bad failed"
    [ "$bad" -eq 0 ]
}

if [ "$have_debs" = 1 ] && [ "$GPU_DEPS" != off ]; then
    unpack_debs 2>&1 | inv
    if [ -z "$PC" ] && [ -x "$DEPS/usr/bin/pkgconf" ]; then
        # the image has no pkg-config: the carried pkgconf, its library found through a wrapper only
        mkdir -p "$DEPS/bin"
        printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s" "$@"\n' \
            "$DEPS/usr/lib/$MA" "$DEPS/usr/bin/pkgconf" >"$DEPS/bin/pkg-config"
        chmod +x "$DEPS/bin/pkg-config"
        PC=$DEPS/bin/pkg-config
        echo "  no pkg-config in the image: using the carried pkgconf ($("$PC" --version))" | inv
    fi
fi

# the image's own libraries (standard pkg-config folders, Debian/Ubuntu's openblas-openmp folder)
{
    echo "library     image                                                        .gpu-deps"
    for m in $MODS; do
        img="missing"
        img_pc --exists "$m" && img="$(img_pc --modversion "$m") ($(img_pc --variable=pcfiledir "$m"))"
        dep="-"
        [ -f "$DEPS/usr/lib/$MA/pkgconfig/$m.pc" ] && dep=$(sed -n 's/^Version: *//p' "$DEPS/usr/lib/$MA/pkgconfig/$m.pc")
        [ "$m" = openblas ] && [ -f "$DEPS/usr/lib/$MA/openblas-openmp/pkgconfig/openblas.pc" ] && dep="$(sed -n 's/^version=//p' "$DEPS/usr/lib/$MA/openblas-openmp/pkgconfig/openblas.pc") (openmp)"
        printf '%-11s %-60s %s\n' "$m" "$img" "$dep"
    done
    img="missing"; [ -f /usr/include/jpeglib.h ] && img="/usr/include/jpeglib.h"
    dep="-"; [ -f "$DEPS/usr/include/jpeglib.h" ] && dep="jpeglib.h (libjpeg62-turbo)"
    printf '%-11s %-60s %s\n' "jpeg" "$img" "$dep"
    echo "runtime libraries the image's loader knows: $(ldconfig -p 2>/dev/null | grep -oE 'lib(openblas|lmdb|zstd|webp|yaml-0|png16|jpeg|cjson|gfortran|gomp|z)\.so\.[0-9]+' | sort -u | paste -sd' ')"
} 2>&1 | inv
missing=$(for m in $MODS; do
    img_pc --exists "$m" || echo -n " $m"
done; [ -f /usr/include/jpeglib.h ] || echo -n " jpeg")

CMAKE_DEPS_ARGS=()
use_deps=0
case "$GPU_DEPS" in
    always) [ "$have_debs" = 1 ] && use_deps=1 ;;
    off)    ;;
    *)      [ "$have_debs" = 1 ] && [ -n "$missing" ] && use_deps=1 ;;
esac
if [ "$use_deps" = 1 ]; then
    # every library from .gpu-deps (one consistent set: headers, .pc, .so), the toolchain's own
    # (libc, libgcc, libgomp, libstdc++) from the image. The image's pkg-config folders stay
    # behind ours as a fallback; CMakeLists.txt itself prefers /usr/lib/<arch>/openblas-openmp
    # when the image has it.
    export PKG_CONFIG_PATH=$DEPS/usr/lib/$MA/openblas-openmp/pkgconfig:$DEPS/usr/lib/$MA/pkgconfig:$DEPS/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
    export CMAKE_PREFIX_PATH=$DEPS/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
    CMAKE_DEPS_ARGS=(
        -DJPEG_INCLUDE_DIR="$DEPS/usr/include" -DJPEG_LIBRARY_RELEASE="$DEPS/usr/lib/$MA/libjpeg.so"
        -DJPEG_LIBRARY="$DEPS/usr/lib/$MA/libjpeg.so"
        # Debian keeps jconfig.h (and others) in the multiarch folder, which is a default include
        # folder only under /usr
        -DCMAKE_C_FLAGS="-isystem $DEPS/usr/include/$MA"
        # DT_RPATH (not RUNPATH): the binaries find libgfortran & co. (needed by libopenblas, not
        # by them) without LD_LIBRARY_PATH; -rpath-link lets the linker find them
        -DCMAKE_EXE_LINKER_FLAGS="-Wl,--disable-new-dtags -Wl,-rpath-link,$DEPS/usr/lib/$MA:$DEPS/lib/$MA"
    )
    [ "$PC" = "$DEPS/bin/pkg-config" ] && CMAKE_DEPS_ARGS+=(-DPKG_CONFIG_EXECUTABLE="$PC")
    RUN_LD=$DEPS/usr/lib/$MA:$DEPS/lib/$MA   # + openblas-openmp once CMake has said which openblas it took
    status_deps="from .gpu-deps (GPU_DEPS=$GPU_DEPS; the image lacks:${missing:- nothing})"
elif [ -n "$missing" ]; then
    status_deps="image lacks:${missing}; no .gpu-deps (run scripts/gpu-deps.sh here and carry .gpu-deps)"
else
    status_deps="all from the image"
fi
echo "dependencies: $status_deps" | inv
{
    echo "PKG_CONFIG_PATH=${PKG_CONFIG_PATH:-}"
    echo "CMAKE_PREFIX_PATH=${CMAKE_PREFIX_PATH:-}"
    echo "cmake args: ${CMAKE_DEPS_ARGS[*]:-}"
} >>"$INV"

# Python packages (diffusers for the PyTorch comparison scripts); the import check runs in the
# background while cameo builds
PYSITE=$BUILD/pysite
if ls "$DEPS_SRC"/wheels/*.whl >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1; then
    rm -rf "$PYSITE"
    if PIP_ROOT_USER_ACTION=ignore timeout "$(cap 120)" python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --disable-pip-version-check --target "$PYSITE" "$DEPS_SRC"/wheels/*.whl >>"$INV" 2>&1; then
        export PYTHONPATH=$PYSITE${PYTHONPATH:+:$PYTHONPATH}
        echo "wheels: installed $(cd "$DEPS_SRC/wheels" && ls *.whl | paste -sd' ') into $PYSITE" | inv
    else
        echo "wheels: pip install failed (see above)" | inv
    fi
fi
# for later commands of the same device run: `. BUILD/gpu-env.sh`
{
    echo "# written by scripts/gpu-check.sh: the Python packages and libraries it brought"
    [ -d "$PYSITE" ] && echo "export PYTHONPATH=$PYSITE\${PYTHONPATH:+:\$PYTHONPATH}"
    echo "export CAMEO_DEPS_LD='$RUN_LD'   # LD_LIBRARY_PATH for cameo's binaries, if ever needed"
} >"$BUILD/gpu-env.sh"
PY_OUT=$LOG/python.txt
: >"$PY_OUT"
PY_PID=""
if command -v python3 >/dev/null 2>&1; then
    timeout "$(cap 150)" python3 - >"$PY_OUT" 2>&1 <<'EOF' &
import sys, importlib
print("python", sys.version.split()[0], sys.executable)
for name in ("numpy", "torch", "transformers", "safetensors", "huggingface_hub", "diffusers"):
    try:
        m = importlib.import_module(name)
        print(f"{name} {getattr(m, '__version__', '?')} ({m.__file__})")
    except Exception as e:
        print(f"{name} FAILED: {type(e).__name__}: {e}")
try:
    import torch
    print("torch.cuda", torch.cuda.is_available(), torch.version.cuda,
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
    from diffusers import FluxTransformer2DModel  # what the comparison scripts use
    print("diffusers FluxTransformer2DModel ok")
except Exception as e:
    print(f"FAILED: {type(e).__name__}: {e}")
EOF
    PY_PID=$!
else
    echo "python3 not found" >"$PY_OUT"
fi
# collect_python N: once the import check has ended (waiting up to N seconds, then stopping it),
# its result goes into inventory.log and the table
collect_python() {
    [ "$status_python" = "not run" ] || return 0
    if [ -n "$PY_PID" ]; then
        local i=0
        while kill -0 "$PY_PID" 2>/dev/null && [ "$i" -lt "$1" ]; do sleep 1; i=$((i + 1)); done
        if kill -0 "$PY_PID" 2>/dev/null; then
            [ "$1" -gt 0 ] || return 0
            kill "$PY_PID" 2>/dev/null; echo "still running: stopped" >>"$PY_OUT"
        fi
        wait "$PY_PID" 2>/dev/null
        echo "exit $?" >>"$PY_OUT"
    fi
    { echo "python (import check):"; sed 's/^/  /' "$PY_OUT"; } >>"$INV"
    if grep -q "FluxTransformer2DModel ok" "$PY_OUT"; then
        status_python="ok: torch $(py_line torch), diffusers $(py_line diffusers), transformers $(py_line transformers); cuda $(sed -n 's/^torch.cuda \([A-Za-z]*\).*/\1/p' "$PY_OUT")"
    else
        status_python="PROBLEM: $(grep -m1 -E 'FAILED|not found|still running|exit [1-9]' "$PY_OUT" | cut -c1-150)"
    fi
}
py_line() { sed -n "s/^$1 \([^ ]*\).*/\1/p" "$PY_OUT" | head -1; }
publish

# ---------------------------------------------------------------------------------------------
step "configure + build (CUDA architectures $ARCH, $JOBS jobs)"
t0=$(date +%s)
GEN_ARGS=()
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    if [ -n "${GENERATOR:-}" ]; then GEN_ARGS=(-G "$GENERATOR")
    elif command -v ninja >/dev/null 2>&1; then GEN_ARGS=(-G Ninja)
    elif ! command -v make >/dev/null 2>&1 && [ -x "$(dirname "$(command -v python3 || echo /)")/ninja" ]; then
        GEN_ARGS=(-G Ninja -DCMAKE_MAKE_PROGRAM="$(dirname "$(command -v python3)")/ninja")   # pip's ninja
    fi
fi
timeout "$(cap 180)" cmake -S . -B "$BUILD" "${GEN_ARGS[@]}" -DCMAKE_BUILD_TYPE=Release -DCAMEO_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCH" "${CMAKE_DEPS_ARGS[@]}" >"$LOG/configure.log" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
    timeout "$(cap 360)" cmake --build "$BUILD" -j"$JOBS" >"$LOG/build.log" 2>&1
    rc=$?
    why="build $([ $rc -eq 124 ] && echo "timed out" || echo failed)"
else
    why="configure $([ $rc -eq 124 ] && echo "timed out" || echo failed)"
fi
if [ $rc -eq 0 ]; then
    status_build="ok ($(elapsed $t0))"
else
    # the whole tree failed: try at least the CUDA library and its test (other folders may be mid-change)
    tail -30 "$LOG/configure.log" "$LOG/build.log" 2>/dev/null
    if [ -f "$BUILD/build.ninja" ] || [ -f "$BUILD/Makefile" ] && ! out_of_time 60 \
       && timeout "$(cap 240)" cmake --build "$BUILD" -j"$JOBS" --target test_cuda_ops >>"$LOG/build.log" 2>&1; then
        status_build="PARTIAL: $why, test_cuda_ops built ($(elapsed $t0)); see $LOG/build.log"
    else
        status_build="FAILED: $why ($(elapsed $t0)); see $LOG/configure.log, $LOG/build.log"
    fi
fi
echo "build: $status_build"
# which library CMake took from where
if [ -f "$BUILD/CMakeCache.txt" ]; then
    {
        echo "libraries as configured (CMakeCache.txt):"
        for v in $VARS; do
            l=$(sed -n "s/^pkgcfg_lib_${v}_[^:]*:FILEPATH=//p" "$BUILD/CMakeCache.txt" | head -1)
            case "$l" in *NOTFOUND) l="" ;; esac
            case "$l" in "$DEPS"/*) w=".gpu-deps" ;; "") w="NOT FOUND" ;; *) w="image" ;; esac
            printf '  %-9s %-10s %s\n' "$v" "$w" "$l"
        done
        l=$(sed -n -e 's/^JPEG_LIBRARY_RELEASE:[A-Z]*=//p' -e 's/^JPEG_LIBRARY:[A-Z]*=//p' "$BUILD/CMakeCache.txt" | grep -v NOTFOUND | head -1)
        case "$l" in "$DEPS"/*) w=".gpu-deps" ;; "") w="NOT FOUND" ;; *) w="image" ;; esac
        printf '  %-9s %-10s %s\n' JPEG "$w" "$l"
        l=$(sed -n 's/^MPI_C_LIB_NAMES:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
        # (FindMPI caches its test's result as MPI_RESULT_C_test_mpi_normal; MPI_C_WORKS in older CMake)
        printf '  %-9s %s\n' MPI "$(grep -qE '^MPI_(C_WORKS|RESULT_C_test_mpi_normal):INTERNAL=TRUE' "$BUILD/CMakeCache.txt" 2>/dev/null && echo "found ($l)" || echo 'not found: single-process build')"
        grep -E '^CMAKE_(GENERATOR|C_COMPILER|CUDA_COMPILER|CUDA_HOST_COMPILER|COMMAND):' "$BUILD/CMakeCache.txt" | sed 's/^/  /'
        grep -E -i 'warning|not found' "$LOG/configure.log" | sed 's/^/  configure: /' | head -10
    } | inv
    case "$(sed -n 's/^pkgcfg_lib_OPENBLAS_[^:]*:FILEPATH=//p' "$BUILD/CMakeCache.txt" | head -1)" in
        "$DEPS"/*) RUN_LD=$DEPS/usr/lib/$MA/openblas-openmp${RUN_LD:+:$RUN_LD} ;;
    esac
    [ -n "$RUN_LD" ] && sed -i "s#^export CAMEO_DEPS_LD=.*#export CAMEO_DEPS_LD='$RUN_LD'#" "$BUILD/gpu-env.sh"
fi
# the CUDA runtime and cuBLAS (linked shared): if the image's loader does not know the toolkit's
# folder, our runs get it through LD_LIBRARY_PATH
for b in "$BUILD/tests/test_cuda_ops" "$BUILD/cameo"; do
    [ -x "$b" ] || continue
    if with_deps ldd "$b" 2>/dev/null | grep -qE 'lib(cudart|cublas|cublasLt)\.so.*not found'; then
        cuda_root=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
        for d in "$cuda_root/targets/x86_64-linux/lib" "$cuda_root/lib64"; do
            [ -d "$d" ] && RUN_LD=${RUN_LD:+$RUN_LD:}$d
        done
        echo "the loader does not find the CUDA libraries: LD_LIBRARY_PATH gets $cuda_root's" | inv
        sed -i "s#^export CAMEO_DEPS_LD=.*#export CAMEO_DEPS_LD='$RUN_LD'#" "$BUILD/gpu-env.sh"
    fi
    break
done
for b in "$BUILD/cameo" "$BUILD/tests/test_cuda_ops"; do
    [ -x "$b" ] || continue
    nf=$(with_deps ldd "$b" 2>/dev/null | grep -c 'not found')
    echo "$(basename "$b"): $nf libraries not found (ldd); from .gpu-deps: $(with_deps ldd "$b" 2>/dev/null | grep -F "$DEPS/" | awk '{print $1}' | paste -sd' '); CUDA: $(with_deps ldd "$b" 2>/dev/null | grep -E 'libcu(dart|blas)' | awk '{print $3}' | paste -sd' ')" | inv
    [ "$nf" != 0 ] && with_deps ldd "$b" | grep 'not found' | inv
done
publish

# ---------------------------------------------------------------------------------------------
step "ctest -L cuda"
t0=$(date +%s)
if skipping ctest; then status_test="skipped (SKIP=$SKIP)"
elif [ -x "$BUILD/tests/test_cuda_ops" ] && ! out_of_time 45; then
    T=$(cap 300)
    # each test at most 90 s (all of them took 49 s on the H200): a kernel that hangs on the GPU
    # (a named barrier's count the emulator took and the hardware does not) costs one test, not the step
    TT=$((T - 10)); [ $TT -gt 90 ] && TT=90
    (cd "$BUILD" && with_deps timeout "$T" ctest -L cuda -V --timeout $TT) >"$LOG/ctest.log" 2>&1
    rc=$?
    cat "$LOG/ctest.log"
    test_summary=$(grep -E "tests passed|tests failed" "$LOG/ctest.log" | tail -1)
    # ctest's exit status decides: a crash (***Exception) or a test's timeout (***Timeout) is no
    # "Failed" line, and beside a skipped test it must not read as SKIPPED
    nskip=$(grep -c '\*\*\*Skipped' "$LOG/ctest.log")
    if [ $rc -eq 124 ]; then status_test="TIMEOUT after ${T}s"
    elif [ $rc -ne 0 ]; then status_test="FAILED: $test_summary ($(elapsed $t0))"
    elif [ "$nskip" -gt 0 ]; then
        status_test="SKIPPED: $nskip tests ($(grep -ho 'SKIP: .*' "$LOG/ctest.log" | head -1)); $test_summary ($(elapsed $t0))"
    else status_test="ok: $test_summary ($(elapsed $t0))"
    fi
    fails=$(grep -c '^FAIL' "$LOG/ctest.log" || true)
    [ "$fails" != "0" ] && status_test="$status_test; $fails failing comparisons (see $LOG/ctest.log)"
elif [ -x "$BUILD/tests/test_cuda_ops" ]; then
    status_test="not run: out of time (DEADLINE ${DEADLINE}s)"
else
    status_test="not run: test_cuda_ops was not built"
fi
echo "tests: $status_test"
publish

# ---------------------------------------------------------------------------------------------
step "GPU benchmark"
t0=$(date +%s)
BENCH_MD=$LOG/bench.md
rm -f "$BENCH_MD"
if [ -x "$BUILD/cameo" ] && with_deps timeout 30 "$BUILD/cameo" bench gpu --help >/dev/null 2>&1; then
    BENCH=("$BUILD/cameo" bench gpu)
else
    BENCH=("$BUILD/tests/test_cuda_ops" --bench)  # until `cameo bench gpu` is wired
fi
if skipping bench; then status_bench="skipped (SKIP=$SKIP)"
elif [ -x "${BENCH[0]}" ] && ! out_of_time 45; then
    T=$(cap 240)
    # shellcheck disable=SC2086
    with_deps timeout "$T" "${BENCH[@]}" --md "$BENCH_MD" ${BENCH_ARGS:-} 2>&1 | tee "$LOG/bench.log"
    rc=${PIPESTATUS[0]}
    if [ $rc -eq 0 ]; then status_bench="ok ($(elapsed $t0))"
    elif [ $rc -eq 124 ]; then status_bench="TIMEOUT after ${T}s (partial output in $LOG/bench.log)"
    else status_bench="exit $rc ($(elapsed $t0)); see $LOG/bench.log"
    fi
elif [ -x "${BENCH[0]}" ]; then
    status_bench="not run: out of time (DEADLINE ${DEADLINE}s)"
else
    status_bench="not run: no benchmark binary"
fi
publish

# ---------------------------------------------------------------------------------------------
# The model-level benchmark: a FLUX double and single block with the IP branch at 512² (MFU
# against the peak measured in the run, PyTorch eager's time where diffusers imports), the whole
# adapter step projected, and one real full-size step with its allocator peak beside the
# arithmetic (--full-step). Appends to the benchmark's markdown; never fatal.
step "model benchmark (cameo bench blocks)"
# the time by kind of a profiled step (--profile) in the benchmark's markdown: the first "By kind"
# line after a line starting with $1 and then one containing $2 (the step with fewer blocks
# recomputed where it ran, else the all-recompute one)
# and the rate of its GEMMs and of its attention (the "**all GEMMs**" / "**all attention**" rows
# of the shape table under it)
step_kinds() {
    local k r
    for sec in "#### One step, fewer blocks recomputed" "#### One step, every block recomputed"; do
        k=$(awk -v a="$1" -v b="$sec" 'index($0, a) == 1 {w = 1} w && index($0, b) {f = 1}
                f && /^By kind:/ {sub(/^By kind: /, ""); print; exit}' "$BENCH_MD" 2>/dev/null)
        r=$(awk -v a="$1" -v b="$sec" 'index($0, a) == 1 {w = 1} w && index($0, b) {f = 1}
                f && /^[|] [*][*]all (GEMMs|attention)[*][*]/ {n = split($0, c, "|"); v = c[n - 1]; gsub(/ /, "", v)
                    nm = c[2]; sub(/.*[*][*]all /, "", nm); sub(/[*][*].*/, "", nm)
                    printf "%s%s at %s TFLOP/s", sep, nm, v; sep = ", "; if (++got == 2) exit}' "$BENCH_MD" 2>/dev/null)
        [ -n "$k" ] && { echo "${k%.}${r:+ ($r)}"; return; }
    done
}
t0=$(date +%s)
status_blocks="not run"
if skipping blocks; then status_blocks="skipped (SKIP=$SKIP)"
elif [ -x "$BUILD/cameo" ] && ! out_of_time 60; then
    T=$(cap 200)
    with_deps timeout "$T" "$BUILD/cameo" bench blocks --device cuda:0 --full-step --profile --md "$BENCH_MD" 2>&1 | tee -a "$LOG/bench.log"
    rc=${PIPESTATUS[0]}
    kinds=$(step_kinds "## cameo bench blocks")
    if [ $rc -eq 0 ]; then status_blocks="ok ($(elapsed $t0))${kinds:+; device time of a step: $kinds}"
    elif [ $rc -eq 124 ]; then status_blocks="TIMEOUT after ${T}s (partial output in $LOG/bench.log)"
    else status_blocks="exit $rc ($(elapsed $t0)); see $LOG/bench.log"
    fi
elif [ -x "$BUILD/cameo" ]; then
    status_blocks="not run: out of time (DEADLINE ${DEADLINE}s)"
fi
# blocks_run VAR SKIPNAME HEADING CAP ENV [ARGS...]: one more `bench blocks --full-step --profile` on
# cuda:0 without the PyTorch twin, ARGS added, under the environment words ENV (may be empty); its
# tables under HEADING in the benchmark's markdown, its row's result (ENV named in it) into VAR
blocks_run() {
    local var=$1 skip=$2 head=$3 capn=$4 envw=$5 t0 rc kinds st
    shift 5
    if skipping blocks || skipping "$skip"; then st="skipped (SKIP=$SKIP)"
    elif [ -x "$BUILD/cameo" ] && ! out_of_time 90; then
        t0=$(date +%s)
        echo "$head" >>"$BENCH_MD"
        # shellcheck disable=SC2086  # envw: NAME=VALUE words for env
        with_deps env $envw timeout "$(cap "$capn")" "$BUILD/cameo" bench blocks --device cuda:0 "$@" --full-step --profile \
            --no-torch --md "$BENCH_MD" 2>&1 | tee -a "$LOG/bench.log"
        rc=${PIPESTATUS[0]}
        kinds=$(step_kinds "$head")
        if [ "$rc" -eq 0 ]; then st="ok ($(elapsed "$t0"))${envw:+; $envw}${kinds:+; device time of a step: $kinds}"
        else st="exit $rc ($(elapsed "$t0"))${envw:+; $envw}"; fi
    elif [ -x "$BUILD/cameo" ]; then st="not run: out of time (DEADLINE ${DEADLINE}s)"
    else st="not run"; fi
    printf -v "$var" '%s' "$st"
}
# the same at 1024² (4096 image tokens + 512 text: the paper's third, high-resolution stage),
# default kernels: the blocks' MFU at 4608 tokens and the stage-3 step's time and memory. (Until
# session 22 this run repeated the 512² one with CAMEO_ATTN=wgmma, CAMEO_GEMM_TUNE=1 and bf16
# moments; wgmma is the default now and the tuning gained 0.2 %.)
blocks_run status_blocks1024 blocks1024 "## at 1024² (4096 image tokens)" 150 "" --tokens-img 4096
# the 512² step again with the warp-specialised attention kernels (CAMEO_ATTN=wgmma3, session 23):
# with `bench gpu`'s kernel rows, what decides whether they become the default. It runs wgmma3 the
# way `bench gpu` found fastest at the 512² step's shapes (its "joint + IP [wgmma3…, WAY]" rows:
# the fused backward or the 128-key forward, one launch each way, two streams or one after the
# other; session 25), plain wgmma3 where that benchmark did not run
wg3_env() {
    local best env="CAMEO_ATTN=wgmma3"
    best=$(grep -E '^\| attention fwd\+bwd at 512\^2, joint \+ IP \[wgmma3' "$BENCH_MD" 2>/dev/null |
        awk -F'|' '{ v = $4; gsub(/ /, "", v); print v "|" $2 }' | sort -g | head -1)
    case "$best" in *"wgmma3-fused,"*) env="$env CAMEO_ATTN_BWD=fused" ;; *"wgmma3-k128,"*) env="$env CAMEO_WGMMA3_KEYS=128" ;; esac
    case "$best" in *"one after the other"*) env="$env CAMEO_ATTN_PAIR=0 CAMEO_SIDE_STREAMS=0" ;; *"two streams"*) env="$env CAMEO_ATTN_PAIR=0" ;; esac
    echo "$env"
}
WG3_ENV=$(wg3_env)
blocks_run status_blocks_wg3 blocks_wgmma3 "## $WG3_ENV at 512²" 120 "$WG3_ENV"
# the 512² step at the batch a card takes in the paper's schedule (configs/instantcharacter-flux.yaml:
# a global batch of 64, so 8 a card on 8 GPUs), default kernels. The rows above are batch 1, where
# a 1536-row GEMM is two waves of 128 x 256 tiles on 132 SMs and the attention kernels' 288 blocks
# fill 2.2 waves; at batch 8 the same work per sample fills the GPU, and the optimizer's time is
# shared by 8 samples. Without per-block recompute it wants ~27 GiB of activations beside the
# 64 GiB of the one-card step: an H200 fits it, an 80 GB card recomputes some blocks
# (`train.recompute: auto`; with ZeRO-1 over 8 ranks, 49 GiB of state a card).
blocks_run status_blocks_b8 blocks_b8 "## at 512², batch 8" 120 "" --batch 8
# the caches' paths in a step (model.text_cache, model.ref_cache): a batch of 8 full-size entries
# looked up and copied to the card, beside memcpy (seconds each: the reference cache writes 16
# entries of 31 MB first; their tables go into the benchmark's markdown)
for kind in text ref; do
    t0=$(date +%s); st=""
    if skipping ${kind}_cache; then st="skipped (SKIP=$SKIP)"
    elif [ -x "$BUILD/cameo" ] && ! out_of_time 20; then
        with_deps timeout "$(cap 40)" "$BUILD/cameo" bench $kind-cache --device cuda:0 >"$LOG/$kind-cache.md" 2>>"$LOG/bench.log"
        rc=$?
        cat "$LOG/$kind-cache.md" >>"$BENCH_MD"
        row=$(grep -m1 '^| lookup + to' "$LOG/$kind-cache.md" | awk -F'|' '{gsub(/ /, "", $4); print $4}')
        if [ $rc -eq 0 ]; then st="ok ($(elapsed $t0)): ${row:-?} ms a sample to the card"
        else st="exit $rc ($(elapsed $t0)); see $LOG/bench.log"
        fi
    elif [ -x "$BUILD/cameo" ]; then
        st="not run: out of time (DEADLINE ${DEADLINE}s)"
    fi
    if [ -n "$st" ]; then printf -v "status_${kind}_cache" '%s' "$st"; fi
    publish
done

# ---------------------------------------------------------------------------------------------
# Tiny training on the GPU (bf16) and the same run on the CPU (f32): the smoothed loss curves
# must agree within 10% at every logged step (bf16 rounding, same data, σ and noise). Reported,
# never fatal.
step "tiny training: GPU (bf16) against CPU (f32)"
t0=$(date +%s)
if skipping train; then status_train="skipped (SKIP=$SKIP)"
elif [ -x "$BUILD/cameo" ] && [ -f configs/tiny.yaml ] && ! out_of_time 60; then
    TRAIN_ARGS="--set stages.0.steps=60 --set stages.1.steps=40 --set stages.2.steps=30 --set run.log_every=10 --set run.ckpt_every=0 --quiet
                --set validation.every=50 --set validation.samples=8"
    T=$(cap 240)
    # shellcheck disable=SC2086
    with_deps timeout "$T" "$BUILD/cameo" train configs/tiny.yaml $TRAIN_ARGS --set run.device=cuda:0 --set run.out_dir="$LOG/run-gpu" \
        --set data.path="$LOG/demo-data" >"$LOG/train.log" 2>&1
    rc=$?
    T=$(cap 240)
    rc_cpu=0
    # SKIP=train_cpu: the GPU run alone (its checkpoint for the evaluation sweep), no reference
    # shellcheck disable=SC2086
    skipping train_cpu || with_deps timeout "$T" "$BUILD/cameo" train configs/tiny.yaml $TRAIN_ARGS --set run.device=cpu \
        --set run.out_dir="$LOG/run-cpu" --set data.path="$LOG/demo-data" >"$LOG/train-cpu.log" 2>&1
    rc_cpu=$?
    tail -8 "$LOG/train.log"
    if [ $rc -eq 0 ] && skipping train_cpu; then
        status_train="GPU run ok ($(elapsed $t0): $(grep -m1 '^done:' "$LOG/train.log")); the CPU reference skipped (SKIP=$SKIP)"
    elif [ $rc -eq 0 ] && [ $rc_cpu -eq 0 ]; then
        cmp=$(paste -d' ' "$LOG/run-gpu/tiny/metrics.jsonl" "$LOG/run-cpu/tiny/metrics.jsonl" | awk '
            { g = $0; sub(/\} \{.*/, "", g); sub(/.*"loss_smoothed":/, "", g); sub(/,.*/, "", g)
              c = $0; sub(/^.*\} \{/, "", c); sub(/.*"loss_smoothed":/, "", c); sub(/,.*/, "", c)
              d = (g - c) / c; if (d < 0) d = -d; if (d > worst) worst = d; n++; last_g = g; last_c = c
              r = $0; sub(/\} \{.*/, "", r)   # the GPU run: its step time and the host time on batches
              if (r ~ /"data_s":/) { a = r; sub(/.*"step_s":/, "", a); sub(/,.*/, "", a)
                                    b = r; sub(/.*"data_s":/, "", b); sub(/,.*/, "", b); st += a; dt += b; m++ } }
            END { printf "%d points, worst relative gap %.3f, final smoothed loss gpu %s cpu %s", n, worst, last_g, last_c;
                  if (m) printf "; gpu step %.1f ms, of it %.2f ms taking + uploading batches", 1000 * st / m, 1000 * dt / m;
                  exit (n > 0 && worst <= 0.10) ? 0 : 1 }')
        ok=$?
        # the validation loss (fixed samples, σ and noise; forward only) of the last validation on each
        vg=$(tail -1 "$LOG/run-gpu/tiny/validation.jsonl" 2>/dev/null | sed -n 's/.*"loss":\([^,]*\),.*/\1/p')
        vc=$(tail -1 "$LOG/run-cpu/tiny/validation.jsonl" 2>/dev/null | sed -n 's/.*"loss":\([^,]*\),.*/\1/p')
        cmp="$cmp; last validation loss gpu ${vg:-none} cpu ${vc:-none}"
        if [ $ok -eq 0 ]; then status_train="ok ($(elapsed $t0)): $cmp"; else status_train="loss curves differ ($(elapsed $t0)): $cmp"; fi
    elif [ $rc -eq 124 ]; then status_train="TIMEOUT (GPU run, not fatal)"
    elif [ $rc -ne 0 ]; then status_train="exit $rc, not fatal ($(elapsed $t0)): $(tail -1 "$LOG/train.log" | cut -c1-120)"
    else status_train="GPU run ok, CPU run exit $rc_cpu ($(elapsed $t0)): $(tail -1 "$LOG/train-cpu.log" | cut -c1-120)"
    fi
elif [ -x "$BUILD/cameo" ] && [ -f configs/tiny.yaml ]; then
    status_train="skipped: out of time (DEADLINE ${DEADLINE}s)"
else
    status_train="skipped: $BUILD/cameo or configs/tiny.yaml missing"
fi
publish

# ---------------------------------------------------------------------------------------------
# The same short run with the AdamW moments in bf16 (stochastic rounding, the bf16 state kernel in
# the trainer) and the projector held fixed (adapter.freeze: the fine-tuning set-up of
# configs/finetune-character.yaml), and train.recompute: auto (the device's free memory read), GPU
# against CPU: losses within 10 %, the freeze told by both, the GPU run's recompute choice shown.
# Logs go to train-cpu.log. Reported, never fatal.
step "tiny training, bf16 moments + adapter.freeze + recompute auto: GPU against CPU"
t0=$(date +%s)
status_train2="not run"
if skipping train2; then status_train2="skipped (SKIP=$SKIP)"
elif [ -x "$BUILD/cameo" ] && [ -f configs/tiny.yaml ] && [ -d "$LOG/demo-data" ] && ! out_of_time 60; then
    TRAIN2_ARGS="--set stages.0.steps=20 --set stages.1.steps=10 --set stages.2.steps=10 --set run.log_every=10 --set run.ckpt_every=0
                 --quiet --set optimizer.state_dtype=bf16 --set adapter.freeze=[image_proj] --set data.path=$LOG/demo-data
                 --set train.recompute=auto"
    # shellcheck disable=SC2086
    with_deps timeout "$(cap 90)" "$BUILD/cameo" train configs/tiny.yaml $TRAIN2_ARGS --set run.device=cuda:0 \
        --set run.out_dir="$LOG/run-gpu2" >>"$LOG/train-cpu.log" 2>&1
    rc=$?
    # shellcheck disable=SC2086
    with_deps timeout "$(cap 90)" "$BUILD/cameo" train configs/tiny.yaml $TRAIN2_ARGS --set run.device=cpu \
        --set run.out_dir="$LOG/run-cpu2" >>"$LOG/train-cpu.log" 2>&1
    rc_cpu=$?
    if [ $rc -eq 0 ] && [ $rc_cpu -eq 0 ]; then
        cmp=$(loss_gap "$LOG/run-gpu2/tiny/metrics.jsonl" "$LOG/run-cpu2/tiny/metrics.jsonl" 0.10 3)
        ok=$?
        held=$(grep -c 'adapter.freeze: .* held fixed' "$LOG/train-cpu.log")
        rca=$(grep -m1 -o 'recompute: auto: the first [0-9]* of [0-9]* FLUX blocks recompute' "$LOG/train-cpu.log")
        cmp="$cmp; GPU ${rca:-recompute: auto: no choice logged}"
        if [ $ok -eq 0 ] && [ "$held" -ge 2 ]; then status_train2="ok ($(elapsed $t0)): $cmp; projector held on both"
        else status_train2="differs ($(elapsed $t0)): $cmp; freeze messages $held"; fi
    else
        status_train2="exit $rc (GPU) / $rc_cpu (CPU), not fatal ($(elapsed $t0)); see train-cpu.log"
    fi
elif [ -x "$BUILD/cameo" ]; then
    status_train2="skipped: out of time, or no demo data from the first training run"
fi
publish

# ---------------------------------------------------------------------------------------------
# The fine-tuning set-up with the three caches: T5 / CLIP's outputs, SigLIP / DINOv2's features and
# the VAE's latents built on the GPU in bf16 (cameo cache-text, cache-refs, cache-latents), then the
# same short GPU run with them (the towers and text encoders not loaded, the VAE run on no target)
# against without, both with centre crops: smoothed losses within 2 % (a feature computed in another
# batch rounds otherwise in bf16). Logs go to train-cpu.log. Reported, never fatal.
step "tiny training with the three caches on the GPU, against without"
t0=$(date +%s)
if skipping train3; then status_train3="skipped (SKIP=$SKIP)"
elif [ -x "$BUILD/cameo" ] && [ -f configs/tiny.yaml ] && [ -d "$LOG/demo-data" ] && ! out_of_time 60; then
    TRAIN3_ARGS="--set stages.0.steps=20 --set stages.1.steps=10 --set stages.2.steps=10 --set run.log_every=10 --set run.ckpt_every=0
                 --quiet --set data.path=$LOG/demo-data --set run.device=cuda:0 --set data.random_crop=false"
    rc=0
    for kind in text refs latents; do
        # shellcheck disable=SC2086
        [ $rc -ne 0 ] || { with_deps timeout "$(cap 60)" "$BUILD/cameo" cache-$kind configs/tiny.yaml $TRAIN3_ARGS \
            --out "$LOG/cache-$kind" >>"$LOG/train-cpu.log" 2>&1; rc=$?; }
    done
    # shellcheck disable=SC2086
    [ $rc -ne 0 ] || { with_deps timeout "$(cap 90)" "$BUILD/cameo" train configs/tiny.yaml $TRAIN3_ARGS \
        --set run.out_dir="$LOG/run-gpu3" >>"$LOG/train-cpu.log" 2>&1; rc=$?; }
    # shellcheck disable=SC2086
    [ $rc -ne 0 ] || { with_deps timeout "$(cap 90)" "$BUILD/cameo" train configs/tiny.yaml $TRAIN3_ARGS \
        --set run.out_dir="$LOG/run-gpu3c" --set model.text_cache="$LOG/cache-text" --set model.ref_cache="$LOG/cache-refs" \
        --set model.latent_cache="$LOG/cache-latents" >>"$LOG/train-cpu.log" 2>&1; rc=$?; }
    if [ $rc -eq 0 ]; then
        cmp=$(loss_gap "$LOG/run-gpu3c/tiny/metrics.jsonl" "$LOG/run-gpu3/tiny/metrics.jsonl" 0.02 4)
        ok=$?
        gone=$(grep -c 'the towers run on no training reference and are not loaded' "$LOG/train-cpu.log")
        novae=$(grep -c 'the VAE runs on no training target' "$LOG/train-cpu.log")
        if [ $ok -eq 0 ] && [ "$gone" -ge 1 ] && [ "$novae" -ge 1 ]; then
            status_train3="ok ($(elapsed $t0)): $cmp; towers not loaded, VAE run on no target"
        else status_train3="differs ($(elapsed $t0)): $cmp; towers-not-loaded messages $gone, VAE-not-run messages $novae"; fi
    else
        status_train3="exit $rc, not fatal ($(elapsed $t0)); see train-cpu.log"
    fi
elif [ -x "$BUILD/cameo" ]; then
    status_train3="skipped: out of time, or no demo data from the first training run"
fi
publish

# ---------------------------------------------------------------------------------------------
# An evaluation sweep on the GPU run's checkpoint (cameo eval: the sampler, the VAE decoder, the
# towers' scores and a tiny CLIP's on cuda:0) against the same sweep on the CPU (f32), twice: with
# the models in f32 on the GPU (the same adapter through `--config` with model.dtype: f32), where
# every score must agree within 2e-3 (on the CUDA emulator they agree within 8e-6), and in bf16, the
# default, where 8 sampler steps of a random tiny model carry bf16's rounding into the images:
# there the emulator, which runs the same kernels' arithmetic on the CPU, is 0.055 off at worst,
# so the bound is 0.1. Per-image scores go to train.log. Reported, never fatal.
step "tiny evaluation sweep: GPU against CPU"
t0=$(date +%s)
status_eval="not run"
CK="$LOG/run-gpu/tiny/checkpoints"
CKD=$(ls -d "$CK"/step-* 2>/dev/null | sort -V | tail -1)   # its last checkpoint (none: the run saved none)
# eval_cmp GPU_DIR CPU_DIR LIMIT: "N images, scores within W of the CPU's, S s per image"; fails past LIMIT
eval_cmp() {
    { echo "eval $1 then $2, per image:"; cat "$1/results.jsonl" "$2/results.jsonl"; } >>"$LOG/train.log"
    paste -d' ' "$1/results.jsonl" "$2/results.jsonl" | awk -v lim="$3" '
        function field(s, k,   v) { v = s; sub(".*\"" k "\":", "", v); sub(/[,}].*/, "", v); return v + 0 }
        { g = $0; sub(/\} \{.*/, "", g); c = $0; sub(/^.*\} \{/, "", c)
          split("dino_i siglip_i clip_i clip_t", ks, " ")
          for (i = 1; i <= 4; i++) { d = field(g, ks[i]) - field(c, ks[i]); if (d < 0) d = -d; if (d > w) w = d }
          n++; ts += field(g, "seconds") }
        END { printf "%d images, scores within %.2g of the CPU'"'"'s (limit %s), %.2f s per image on the GPU", n, w, lim, n ? ts / n : 0
              exit (n == 8 && w <= lim) ? 0 : 1 }'
}
if skipping eval; then status_eval="skipped (SKIP=$SKIP)"
elif [ -x "$BUILD/cameo" ] && [ -n "$CKD" ] && [ -f docs/examples/eval/pairs.jsonl ] && ! out_of_time 45; then
    # the tiny CLIP fixture brings the CLIP towers (CLIP-I / CLIP-T) onto the GPU too
    EVAL_ARGS="--pairs docs/examples/eval/pairs.jsonl --scales 0,0.9 --seeds 0,1 --steps 8 --clip tests/fixtures/clip_full/model --quiet"
    sed 's/^  dtype: auto$/  dtype: f32/' "$CKD/config.yaml" >"$LOG/eval-f32.yaml"
    # shellcheck disable=SC2086
    with_deps timeout "$(cap 60)" "$BUILD/cameo" eval "$CK" $EVAL_ARGS --out "$LOG/eval-cpu" --device cpu >>"$LOG/train.log" 2>&1
    rc_cpu=$?
    # shellcheck disable=SC2086
    with_deps timeout "$(cap 60)" "$BUILD/cameo" eval --config "$LOG/eval-f32.yaml" "$CKD/adapter.safetensors" $EVAL_ARGS \
        --out "$LOG/eval-gpu32" --device cuda:0 >>"$LOG/train.log" 2>&1
    rc32=$?
    # shellcheck disable=SC2086
    with_deps timeout "$(cap 60)" "$BUILD/cameo" eval "$CK" $EVAL_ARGS --out "$LOG/eval-gpu" --device cuda:0 >>"$LOG/train.log" 2>&1
    rc=$?
    if [ $rc_cpu -ne 0 ]; then status_eval="CPU sweep exit $rc_cpu, not fatal ($(elapsed $t0)); see train.log"
    else
        ok=0
        if [ $rc32 -eq 0 ]; then c32=$(eval_cmp "$LOG/eval-gpu32" "$LOG/eval-cpu" 2e-3) || ok=1; else c32="exit $rc32"; ok=1; fi
        if [ $rc -eq 0 ]; then c16=$(eval_cmp "$LOG/eval-gpu" "$LOG/eval-cpu" 0.1) || ok=1; else c16="exit $rc"; ok=1; fi
        if [ $ok -eq 0 ]; then status_eval="ok ($(elapsed $t0)): f32 $c32; bf16 $c16"
        else status_eval="differs ($(elapsed $t0)): f32 $c32; bf16 $c16"; fi
    fi
elif [ -x "$BUILD/cameo" ] && [ -n "$CKD" ]; then
    status_eval="skipped: out of time (DEADLINE ${DEADLINE}s)"
else
    status_eval="skipped: no checkpoint of the GPU training run"
fi
publish

# ---------------------------------------------------------------------------------------------
# Data parallelism over NCCL, where the machine has two GPUs or more: e2e_mpi's NCCL half (one
# process on cuda:0 against two ranks on cuda:0 / cuda:1 through NCCL, bf16: losses, the sharded
# AdamW state, the master weights after step 1, small buckets against large). Needs MPI in the
# build (e2e_mpi, mpirun) and NCCL; otherwise the row says which is missing. Output to train.log.
step "NCCL: two ranks on two GPUs"
t0=$(date +%s)
ngpu=$(timeout 30 nvidia-smi -L 2>/dev/null | grep -c '^GPU')
MPIRUN=$(sed -n 's/^MPIEXEC_EXECUTABLE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null | head -1)
if skipping nccl; then status_nccl="skipped (SKIP=$SKIP)"
elif [ "${ngpu:-0}" -lt 2 ]; then status_nccl="not run: ${ngpu:-0} GPU visible (nvidia-smi -L), it needs 2"
elif [ ! -x "$BUILD/tests/e2e_mpi" ] || [ -z "$MPIRUN" ] || [ ! -x "$MPIRUN" ]; then
    status_nccl="not run: $ngpu GPUs, but no MPI in this build (e2e_mpi, mpirun)"
elif grep -q '^NCCL_LIBRARY:[A-Z]*=.*NOTFOUND' "$BUILD/CMakeCache.txt" 2>/dev/null; then
    status_nccl="not run: $ngpu GPUs, but NCCL was not found at configure (NCCL_ROOT)"
elif out_of_time 60; then
    status_nccl="not run: out of time (DEADLINE ${DEADLINE}s)"
else
    T=$(cap 150)
    { echo "=== e2e_mpi --cuda-only 10: NCCL on 2 of $ngpu GPUs"; } >>"$LOG/train.log"
    with_deps timeout "$T" "$BUILD/tests/e2e_mpi" "$BUILD/cameo" "$MPIRUN" --cuda-only 10 >>"$LOG/train.log" 2>&1
    rc=$?
    got=$(grep -m1 -o 'cuda, 1 process vs 2 ranks over NCCL: .*' "$LOG/train.log")
    case $rc in
        0) status_nccl="ok ($(elapsed $t0)): ${got:-losses agree}" ;;
        77) status_nccl="SKIPPED: $(grep -m1 -o 'SKIP: .*' "$LOG/train.log" | cut -c1-120)" ;;
        124) status_nccl="TIMEOUT after ${T}s; see train.log" ;;
        *) status_nccl="FAILED: exit $rc ($(elapsed $t0)); ${got:+$got; }see train.log" ;;
    esac
fi
publish

# ---------------------------------------------------------------------------------------------
# PROFILE=1: Nsight Compute on the default (wgmma, split backward) attention kernels at FLUX's
# shape — one forward, one dQ and one dK dV launch of `cameo bench gpu --only attention` (the full
# benchmark under ncu did not finish in 70 s: ncu intercepts every launch), every section; then the
# warp-specialised forward's (CAMEO_ATTN=wgmma3, session 23) if time is left; the details go to bench.log. OMP_WAIT_POLICY set: cameo re-executes
# itself without it (train/main.c), and ncu lost the process at that exec (H200, session 22: 0
# kernels profiled in 180 s). Before the sanitizer, whose runs take whatever time is left.
step "ncu profile of the attention kernels (PROFILE=${PROFILE:-0})"
status_profile="not asked (PROFILE=1)"
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ "${PROFILE:-0}" = 1 ] && [ -x "$BUILD/cameo" ] && [ -n "$NCU" ] && ! out_of_time 60; then
    t0=$(date +%s)
    # each family's launches: 4 forward (1 warm-up + 3 timed), then 4 backward (dQ, dK dV each);
    # skip the first 3 forward ones
    with_deps env OMP_WAIT_POLICY=passive CAMEO_ATTN=wgmma timeout "$(cap 90)" "$NCU" --set full \
        --kernel-name regex:'k_att_(fwd|dq|dkv)_wgmma' --launch-skip 3 --launch-count 3 \
        "$BUILD/cameo" bench gpu --quick --only attention --no-torch >>"$LOG/bench.log" 2>&1
    rc=$?
    if ! out_of_time 60; then
        with_deps env OMP_WAIT_POLICY=passive CAMEO_ATTN=wgmma3 timeout "$(cap 90)" "$NCU" --set full \
            --kernel-name regex:'k_att_fwd_wgws' --launch-skip 3 --launch-count 1 \
            "$BUILD/cameo" bench gpu --quick --only attention --no-torch >>"$LOG/bench.log" 2>&1
    fi
    n=$(grep -cE '^  (void )?k_att_' "$LOG/bench.log")  # (a template kernel's line starts with void)
    status_profile="exit $rc, $n kernels profiled ($(elapsed $t0)); see bench.log"
elif [ "${PROFILE:-0}" = 1 ]; then
    status_profile="not run: no ncu, no cameo, or out of time"
fi
publish

# ---------------------------------------------------------------------------------------------
# compute-sanitizer on cameo's own kernels (not the cuBLAS-heavy gemm / upload groups): memcheck
# (out-of-bounds, misaligned, uninitialised reads feeding results) and racecheck (shared-memory
# races: what the CPU emulator's barrier orders cannot all expose). Never fatal; in the table.
step "compute-sanitizer (memcheck, racecheck)"
t0=$(date +%s)
status_sanitizer="not run"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)

if skipping sanitizer; then status_sanitizer="skipped (SKIP=$SKIP)"
elif [ -z "$SAN" ]; then
    status_sanitizer="not run: no compute-sanitizer"
elif [ -x "$BUILD/tests/test_cuda_ops" ] && ! out_of_time 70; then
    res=""
    for tool in memcheck racecheck; do
        for attn in wmma mma mma-fused mma8 mma2 wgmma wgmma-fused wgmma3 wgmma3-fused wgmma3-k128; do
            fam=${attn%-fused} bwd="" keys=""  # NAME-fused: NAME with CAMEO_ATTN_BWD=fused
            [ "$fam" != "$attn" ] && bwd=fused
            [ "$attn" = wgmma3-k128 ] && fam=wgmma3 keys=128  # CAMEO_WGMMA3_KEYS=128
            sel="--except gemm,gemm_ex,upload"  # every group of cameo's own kernels (new groups join by themselves)
            [ $tool = racecheck ] && sel="--only reduce,sumsq_multi,softmax,layernorm,layernorm_modulate,rmsnorm,rms_rope,groupnorm,attention,modulate,timestep"
            [ $attn != wmma ] && sel="--only attention"
            out_of_time 40 && { res="$res $tool/$attn: out of time;"; continue; }
            T=$(cap 90)
            with_deps env CAMEO_ATTN=$fam CAMEO_ATTN_BWD=$bwd CAMEO_WGMMA3_KEYS=$keys timeout "$T" "$SAN" --tool $tool --error-exitcode 3 "$BUILD/tests/test_cuda_ops" $sel \
                >>"$LOG/ctest.log" 2>&1
            rc=$?
            case $rc in 0) r=clean ;; 3) r="ERRORS (see ctest.log)" ;; 124) r="timeout ${T}s" ;; *) r="exit $rc" ;; esac
            res="$res $tool/$attn: $r;"
        done
    done
    status_sanitizer="${res# } ($(elapsed $t0))"
else
    status_sanitizer="not run: no test_cuda_ops, or out of time"
fi
publish

# ---------------------------------------------------------------------------------------------
step "results"
collect_python 20
sed -n '/^python (import check):/,$p' "$INV"
publish
write_table final
cat "$RESULTS"
echo
echo "results: $RESULTS   logs: $LOG   environment for later commands: . $BUILD/gpu-env.sh"

case "$status_build" in FAILED*) exit 1 ;; esac
case "$status_test" in ok*|SKIPPED*|skipped*) exit 0 ;; *) exit 1 ;; esac
