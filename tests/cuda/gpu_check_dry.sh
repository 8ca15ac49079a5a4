#!/usr/bin/env bash
# gpu_check_dry.sh — scripts/gpu-check.sh end to end without a GPU, in seconds: stand-ins for
# nvidia-smi, cmake, ctest, compute-sanitizer, ncu, python3 and the two binaries it builds (cameo,
# test_cuda_ops) go first on PATH. The check runs where a GPU is lent, rarely and once, so its
# control flow is proven here: every step runs or says why not, the table is written (also when
# the time runs out), $OUT holds at most the 8 files a device run brings back, the exit status
# follows the build and ctest, and nothing trips `set -u`.
# Usage: gpu_check_dry.sh (from anywhere; the repository is this file's ../..)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_dry.XXXXXX")
[ -n "${KEEP:-}" ] && echo "kept: $T" || trap 'rm -rf "$T"' EXIT
F=$T/bin
mkdir -p "$F"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# --- the stand-ins ---
# nvidia-smi: FAKE_CC (compute capability, default 9.0), FAKE_GPUS (how many -L lists, default 1)
cat >"$F/nvidia-smi" <<'EOF'
#!/bin/sh
if [ "${1:-}" = -L ]; then
    i=0; while [ $i -lt "${FAKE_GPUS:-1}" ]; do echo "GPU $i: FAKE H100 (UUID: GPU-$i)"; i=$((i + 1)); done; exit 0
fi
echo "FAKE H100, 580.00, 81559 MiB, 1980 MHz, ${FAKE_CC:-9.0}"
EOF
# cmake: configure writes a cache, --build "builds" cameo and test_cuda_ops (copies of the stand-ins)
cat >"$F/cmake" <<'EOF'
#!/bin/bash
if [ "$1" = --build ]; then
    mkdir -p "$2/tests" && cp "$FAKE_BIN/cameo.fake" "$2/cameo" && cp "$FAKE_BIN/ok.fake" "$2/tests/test_cuda_ops" &&
        cp "$FAKE_BIN/e2e_mpi.fake" "$2/tests/e2e_mpi"
    exit
fi
echo "cmake $*" >>"$FAKE_CALLS"
while [ $# -gt 0 ]; do [ "$1" = -B ] && b=$2; shift; done
mkdir -p "$b" && : >"$b/build.ninja"
printf 'CMAKE_GENERATOR:INTERNAL=Ninja\nMPI_C_LIB_NAMES:STRING=mpi\nMPI_RESULT_C_test_mpi_normal:INTERNAL=TRUE\n' >"$b/CMakeCache.txt"
printf 'MPIEXEC_EXECUTABLE:FILEPATH=%s/ok.fake\nNCCL_LIBRARY:FILEPATH=/usr/lib/libnccl.so.2\n' "$FAKE_BIN" >>"$b/CMakeCache.txt"
EOF
# ctest: FAKE_CTEST=pass (every test passes), crash (one crashes, one skips: exit 8)
cat >"$F/ctest" <<'EOF'
#!/bin/bash
if [ "${FAKE_CTEST:-pass}" = pass ]; then
    echo " 1/2 Test #1: test_cuda_ops ......................   Passed    1.00 sec"
    echo " 2/2 Test #2: test_cuda_ops_attn_wgmma ...........   Passed    1.00 sec"
    echo "100% tests passed, 0 tests failed out of 2"
    exit 0
fi
echo " 1/2 Test #1: test_cuda_ops ......................***Exception: SegFault  1.00 sec"
echo "SKIP: the CUDA backend did not initialise"
echo " 2/2 Test #2: e2e_gpu_train ......................***Skipped   1.00 sec"
echo "50% tests passed, 1 tests failed out of 2"
echo "The following tests did not run:"
echo "	  2 - e2e_gpu_train (Skipped)"
echo "The following tests FAILED:"
echo "	  1 - test_cuda_ops (SEGFAULT)"
exit 8
EOF
cat >"$F/ok.fake" <<'EOF'
#!/bin/sh
exit 0
EOF
# compute-sanitizer, ncu: say they ran (in FAKE_CALLS, in order)
printf '#!/bin/sh\necho "compute-sanitizer $*" >>"$FAKE_CALLS"\n' >"$F/compute-sanitizer"
# e2e_mpi CAMEO MPIRUN --cuda-only STEPS: the NCCL half's summary line
cat >"$F/e2e_mpi.fake" <<'EOF'
#!/bin/sh
echo "e2e_mpi $*" >>"$FAKE_CALLS"
echo "cuda, 1 process vs 2 ranks over NCCL: first step 0.00012, later steps at most 0.0021"
EOF
printf '#!/bin/sh\necho "ncu $*" >>"$FAKE_CALLS"\n' >"$F/ncu"
cat >"$F/python3" <<'EOF'
#!/bin/sh
cat >/dev/null
echo "python 3.12.0 (stand-in)"
EOF
# cameo: train (a run folder with metrics, validation, a checkpoint), eval (8 scores), bench gpu / blocks
cat >"$F/cameo.fake" <<'EOF'
#!/bin/bash
out="" dev="" data="" md=""
for a in "$@"; do
    case "$a" in run.out_dir=*) out=${a#*=} ;; run.device=*) dev=${a#*=} ;; data.path=*) data=${a#*=} ;; esac
done
args=("$@")
for ((i = 0; i < $#; i++)); do
    case "${args[i]}" in --out) out=${args[i + 1]} ;; --device) dev=${args[i + 1]} ;; --md) md=${args[i + 1]} ;; esac
done
echo "$1 $2 ${dev:-}" >>"$FAKE_CALLS"
case "$1 $2" in
    "bench gpu")
        [ "$3" = --help ] && exit 0
        if [ -n "${FAKE_HANG_PID:-}" ]; then echo $$ >"$FAKE_HANG_PID"; exec sleep 60; fi   # hangs: the check is stopped
        [ -n "$md" ] && echo "| bf16 peak | 800 |" >>"$md"; echo "bench gpu ran" ;;
    "bench blocks")
        echo "  $*" >>"$FAKE_CALLS"
        [ -n "$md" ] && printf '## cameo bench blocks\n#### One step, fewer blocks recomputed\nBy kind: gemm 60%%, attention 30%%.\n' >>"$md"
        echo "bench blocks ran" ;;
    "bench text-cache"|"bench ref-cache")
        printf '| part | ms a batch | ms a sample | GB/s | of memcpy |\n|---|---:|---:|---:|---:|\n'
        printf '| lookup + to cuda:0 in bf16 (the cached path) | 3.2 | 0.400 | 10.0 | 50%% |\n' ;;
    train*)
        if [ -n "${FAKE_GPU_TRAIN_FAILS:-}" ] && [ "$dev" = cuda:0 ]; then  # fails before its first checkpoint
            mkdir -p "$data" "$out/tiny/checkpoints"; echo "cameo train: a stand-in's failure"; exit 1
        fi
        mkdir -p "$data" "$out/tiny/checkpoints/step-130"
        for s in 10 20 30; do
            echo "{\"step\":$s,\"loss\":1.3,\"loss_smoothed\":1.2,\"step_s\":0.01,\"data_s\":0.001,\"time\":1}"
        done >"$out/tiny/metrics.jsonl"
        echo '{"step":30,"loss":1.15,"loss_by_sigma":{"0.5":1.1},"samples":8}' >"$out/tiny/validation.jsonl"
        printf 'model:\n  sizes: tiny\n  dtype: auto\n' >"$out/tiny/checkpoints/step-130/config.yaml"
        : >"$out/tiny/checkpoints/step-130/adapter.safetensors"
        case "$*" in *adapter.freeze=*) echo "adapter.freeze: 76 of 100 tensors held fixed (96.5%)" ;; esac
        case "$*" in *model.ref_cache=*) echo "model.ref_cache: ... the towers run on no training reference and are not loaded" ;; esac
        case "$*" in *model.latent_cache=*) echo "model.latent_cache: ... the VAE runs on no training target and the loader cuts none" ;; esac
        case "$*:$dev" in *recompute=auto*:cuda*) echo "stage 1/3 (unpaired): recompute: auto: the first 0 of 4 FLUX blocks recompute" ;; esac
        echo "done: 30 steps in 1s" ;;
    cache-text*|cache-refs*|cache-latents*)
        mkdir -p "$out"; echo "$1: 13 added" ;;
    eval*)
        mkdir -p "$out"
        for i in 1 2 3 4 5 6 7 8; do
            echo '{"ref":"a","dino_i":0.5,"siglip_i":0.4,"clip_i":0.3,"clip_t":0.2,"seconds":0.1}'
        done >"$out/results.jsonl" ;;
    *) echo "cameo stand-in: unexpected '$*'" >&2; exit 2 ;;
esac
EOF
chmod +x "$F"/*

# run_check NAME EXPECTED_RC [VAR=VALUE...]: the check with the stand-ins; its table in $T/NAME/out
run_check() {
    local name=$1 want=$2 d=$T/$1
    shift 2
    mkdir -p "$d/out" "$d/nodeps"
    env PATH="$F:$PATH" FAKE_BIN="$F" FAKE_CALLS="$d/calls" OUT="$d/out" BUILD="$d/build" GPU_DEPS=off \
        GPU_DEPS_DIR="$d/nodeps" JOBS=2 PROFILE=1 "$@" bash "$ROOT/scripts/gpu-check.sh" >"$d/stdout" 2>&1
    local rc=$?
    [ "$rc" = "$want" ] || fail "$name: exit $rc, expected $want (output: $d/stdout)"
    grep -n 'unbound variable\|syntax error\|command not found' "$d/stdout" && fail "$name: shell errors (above)"
    [ -s "$d/out/gpu-check.md" ] || fail "$name: no table in \$OUT/gpu-check.md"
    local n
    n=$(find "$d/out" -type f | wc -l)
    [ "$n" -le 8 ] || fail "$name: $n files in \$OUT (a device run brings back 8)"
    # every row of the table has a result
    grep -E '^\| [^|]+ \| *\|$' "$d/out/gpu-check.md" && fail "$name: a row without a result (above)"
}
row() { grep -F "| $2 |" "$T/$1/out/gpu-check.md" 2>/dev/null | head -1; }
expect_row() {  # expect_row NAME ROW ERE: the row's result matches ERE
    row "$1" "$2" | grep -qE "$3" || { fail "$1: row '$2' does not match /$3/: $(row "$1" "$2")"; }
}

# 1. everything passes: every step ran and says ok, 8 files come back
run_check pass 0 FAKE_CTEST=pass DEADLINE=400
expect_row pass "ctest -L cuda" '^\| ctest -L cuda \| ok: 100% tests passed'
expect_row pass "tiny GPU training" '\| ok \('
expect_row pass "tiny GPU training, bf16 moments + adapter.freeze + recompute auto" '\| ok \(.*projector held on both'
expect_row pass "tiny GPU evaluation sweep" '\| ok \('
expect_row pass "tiny GPU training with the three caches (model.text_cache + ref_cache + latent_cache) against without" '\| ok \(.*towers not loaded, VAE run on no target'
grep -q '^cache-refs ' "$T/pass/calls" && grep -q '^cache-text ' "$T/pass/calls" && grep -q '^cache-latents ' "$T/pass/calls" ||
    fail "pass: the caches were not built"
expect_row pass "benchmark" '\| ok \('
expect_row pass "model benchmark (blocks, full step)" '\| ok \(.*device time of a step: gemm 60%'
expect_row pass "the same at 1024² (4096 image tokens; stage 3)" '\| ok \('
expect_row pass "the 512² step with CAMEO_ATTN=wgmma3 (warp-specialised attention)" '\| ok \(.*\); CAMEO_ATTN=wgmma3'
expect_row pass "the 512² step at batch 8 (the paper config's 64 over 8 GPUs)" '\| ok \(.*device time of a step: gemm 60%'
grep -q '^  bench blocks --device cuda:0 --batch 8 --full-step' "$T/pass/calls" || fail "pass: no batch-8 full step in the calls"
expect_row pass "text cache: full-size rows read and sent to the card (bench text-cache)" '\| ok \(.*\): 0.400 ms a sample to the card'
grep -q '^bench text-cache cuda:0' "$T/pass/calls" || fail "pass: bench text-cache did not run on cuda:0"
expect_row pass "reference cache: full-size features read and sent to the card (bench ref-cache)" '\| ok \(.*\): 0.400 ms a sample to the card'
grep -q '^bench ref-cache cuda:0' "$T/pass/calls" || fail "pass: bench ref-cache did not run on cuda:0"
grep -q 'lookup + to cuda:0' "$T/pass/out/gpu-check.md" || fail "pass: the text cache's table is not in the results"
grep -q '^## CAMEO_ATTN=wgmma3 at 512²' "$T/pass/out/bench.md" 2>/dev/null || grep -rq 'CAMEO_ATTN=wgmma3 at 512' "$T/pass/out" ||
    fail "pass: the wgmma3 model run left no heading in the benchmark's markdown"
# (a real compute-sanitizer in the CUDA toolkit's folder, which the check puts first, goes before the stand-in)
[ -x /usr/local/cuda/bin/compute-sanitizer ] || expect_row pass "compute-sanitizer" '(clean;.*){16}'
# PROFILE=1's ncu runs before the sanitizer, which takes whatever time is left (ncu after it got none)
if [ ! -x /usr/local/cuda/bin/compute-sanitizer ] && [ ! -x /usr/local/cuda/bin/ncu ]; then
    first=$(grep -m1 -oE '^(ncu|compute-sanitizer)' "$T/pass/calls")
    [ "$first" = ncu ] || fail "pass: PROFILE=1's ncu did not run before compute-sanitizer (first: ${first:-neither})"
    expect_row pass "ncu profile (attention)" '\| exit 0'
fi
grep -q 'MPI       found (mpi)' "$T/pass/out/inventory.log" || fail "pass: inventory.log does not say MPI was found"
[ "$(find "$T/pass/out" -type f | wc -l)" = 8 ] || fail "pass: $(ls "$T/pass/out" | paste -sd' ') in \$OUT, expected 8 files"

grep -qE 'cmake .*-DCMAKE_CUDA_ARCHITECTURES=90a( |$)' "$T/pass/calls" || fail "pass: an sm_90 GPU, not built for 90a"

expect_row pass "NCCL: 2 ranks on 2 GPUs against 1 process" '\| not run: 1 GPU visible'
grep -q '^e2e_mpi' "$T/pass/calls" && fail "pass: e2e_mpi ran on one GPU"

# 1a. two GPUs: the NCCL half of e2e_mpi runs, its figures in the table
run_check twogpu 0 FAKE_CTEST=pass FAKE_GPUS=2 DEADLINE=400 SKIP=train,train2,eval,bench,blocks,sanitizer
expect_row twogpu "NCCL: 2 ranks on 2 GPUs against 1 process" '\| ok \(.*over NCCL: first step 0.00012'
grep -q '^e2e_mpi .*/cameo .*--cuda-only' "$T/twogpu/calls" || fail "twogpu: e2e_mpi --cuda-only did not run"

# 1b. an A100 (compute capability 8.0): built for sm_80, which it runs (90a code would not), unless ARCH says
run_check a100 0 FAKE_CTEST=pass FAKE_CC=8.0 DEADLINE=400 SKIP=train,train2,eval,bench,blocks,sanitizer
grep -qE 'cmake .*-DCMAKE_CUDA_ARCHITECTURES=80( |$)' "$T/a100/calls" || fail "a100: not built for sm_80: $(grep '^cmake -S' "$T/a100/calls")"
expect_row a100 "build (sm_80)" '\| ok'
run_check a100arch 0 FAKE_CTEST=pass FAKE_CC=8.0 ARCH=86 DEADLINE=400 SKIP=train,train2,eval,bench,blocks,sanitizer
grep -qE 'cmake .*-DCMAKE_CUDA_ARCHITECTURES=86( |$)' "$T/a100arch/calls" || fail "a100arch: ARCH=86 not taken"

# 2. a test crashes beside a skipped one: FAILED and exit 1, never SKIPPED
run_check crash 1 FAKE_CTEST=crash DEADLINE=400
expect_row crash "ctest -L cuda" '^\| ctest -L cuda \| FAILED'

# 3. the GPU training fails before its first checkpoint: no evaluation sweep (on nothing)
run_check notrain 0 FAKE_CTEST=pass FAKE_GPU_TRAIN_FAILS=1 DEADLINE=400
expect_row notrain "tiny GPU training" '\| exit 1, not fatal'
expect_row notrain "tiny GPU evaluation sweep" '\| skipped: no checkpoint of the GPU training run'
grep -q '^eval' "$T/notrain/calls" && fail "notrain: cameo eval ran without a checkpoint"

# 4. no time left after the build: every later step says so, the table is still written
run_check late 1 FAKE_CTEST=pass DEADLINE=40
expect_row late "ctest -L cuda" 'out of time'
expect_row late "benchmark" 'out of time'

# 5. stopped from outside in the benchmark (a device call's timeout_s shorter than DEADLINE): the
# table of the steps before it is in $OUT already
d=$T/killed
mkdir -p "$d/out" "$d/nodeps"
env PATH="$F:$PATH" FAKE_BIN="$F" FAKE_CALLS="$d/calls" FAKE_HANG_PID="$d/hang.pid" OUT="$d/out" BUILD="$d/build" \
    GPU_DEPS=off GPU_DEPS_DIR="$d/nodeps" JOBS=2 DEADLINE=400 bash "$ROOT/scripts/gpu-check.sh" >"$d/stdout" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -s "$d/hang.pid" ] && break; sleep 0.1; done
kill -9 "$pid"
[ -s "$d/hang.pid" ] && kill "$(cat "$d/hang.pid")"
{ wait "$pid"; } 2>/dev/null
expect_row killed "ctest -L cuda" '\| ok: 100% tests passed'
expect_row killed "benchmark" '\| not run \|'
expect_row killed "tiny GPU evaluation sweep" '\| not run \|'
grep -q '^\*\*Unfinished' "$d/out/gpu-check.md" 2>/dev/null || fail "killed: the table does not say it is unfinished"
grep -q '^\*\*Unfinished' "$T/pass/out/gpu-check.md" && fail "pass: the finished table says it is unfinished"

[ $fails -eq 0 ] && echo "gpu_check_dry: all checks passed" && exit 0
echo "gpu_check_dry: $fails failures"; exit 1
