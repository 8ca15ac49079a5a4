#!/usr/bin/env bash
# check_ptxas.sh NVCC FILE.cu ARCH [MAX_REGS] — compiles one kernels/cuda file for ARCH with
# ptxas's report (-Xptxas -v) and fails where a kernel spills registers or ptxas serializes its
# wgmma pipeline (messages C7510..C7519: "wgmma.mma_async instructions are serialized", or
# "warpgroup.arrive / wait is injected"). Both are silent slowdowns a build without -v never shows;
# the attention kernels are written to have neither (docs/cuda.md, "Attention"). Prints each
# kernel's registers.
set -u
NVCC=$1 FILE=$2 ARCH=$3 MAX=${4:-255}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOG=$(mktemp) OBJ=$(mktemp --suffix=.o)
trap 'rm -f "$LOG" "$OBJ"' EXIT
if ! "$NVCC" -O3 --use_fast_math -std=c++17 -gencode "arch=compute_$ARCH,code=sm_$ARCH" -Xptxas -v \
        -I"$ROOT" -I"$ROOT/kernels/cuda" -c "$FILE" -o "$OBJ" >"$LOG" 2>&1; then
    cat "$LOG"
    echo "check_ptxas: $FILE does not compile for sm_$ARCH"
    exit 1
fi
# kernel name, registers, spill bytes per entry function (plain sed / awk: mawk has no match groups)
sed -n -e "s/.*Compiling entry function '\([^']*\)'.*/K \1/p" -e 's/.* \([0-9]*\) bytes spill stores.*/S \1/p' \
    -e 's/.*Used \([0-9]*\) registers.*/R \1/p' "$LOG" |
    awk '$1 == "K" { name = $2 } $1 == "S" { spill = $2 } $1 == "R" { printf "%-80s %4d registers, %d bytes spilled\n", name, $2, spill }'
bad=0
if grep -q "C75[01][0-9]" "$LOG"; then
    grep "C75[01][0-9]" "$LOG"
    echo "check_ptxas: ptxas serialized a wgmma pipeline or injected warpgroup syncs in $FILE"
    bad=1
fi
if grep -E "[1-9][0-9]* bytes spill (stores|loads)" "$LOG" >/dev/null; then
    echo "check_ptxas: a kernel of $FILE spills registers (above)"
    bad=1
fi
over=$(grep -oE "Used [0-9]+ registers" "$LOG" | awk -v m="$MAX" '$2 > m' | head -1)
[ -n "$over" ] && { echo "check_ptxas: $over (limit $MAX)"; bad=1; }
[ $bad -eq 0 ] && echo "check_ptxas: $FILE for sm_$ARCH: no spills, no serialized wgmma"
exit $bad
