#!/usr/bin/env bash
# readme_quickstart.sh — the README's "Using it" commands and docs/eval.md's runnable sweep and
# evaluation during training, as a new user types them, in a scratch folder: every `./build/cameo`
# line of those blocks runs and exits 0, except the ones that need the published weights (named by
# the README as such), which must stop at once with a message saying where to get them. The stages
# of configs/tiny.yaml are shortened (and a weight average turned on, for the README's `export
# --ema` line) so the whole walk takes seconds; the commands themselves are the documents' own.
# Usage: readme_quickstart.sh PATH/TO/cameo SOURCE_DIR
set -euo pipefail
cameo=$1
src=$2
dir=$(mktemp -d /tmp/cameo-readme-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() {
    echo "FAIL: $*"
    tail -n 30 "$dir/cmd.log" 2>/dev/null || true
    exit 1
}

# the scratch folder as the repository root looks to the user: ./build/cameo, configs/, docs/examples/
mkdir -p "$dir/build" "$dir/configs" "$dir/docs/examples"
ln -s "$cameo" "$dir/build/cameo"
cp -r "$src/docs/examples/eval" "$dir/docs/examples/"
cp "$src/configs/finetune-character.yaml" "$dir/configs/"
sed -e 's/^    steps: 250$/    steps: 12/' -e 's/^    steps: 150$/    steps: 8/' \
    -e 's/^  state_dtype: f32 .*$/&\n  ema: 0.99/' "$src/configs/tiny.yaml" >"$dir/configs/tiny.yaml"
grep -q '^  ema: 0.99$' "$dir/configs/tiny.yaml" && grep -q '^    steps: 12$' "$dir/configs/tiny.yaml" ||
    fail "configs/tiny.yaml changed shape: the sed above no longer shortens it"
cp "$src/docs/examples/eval/ref-a.png" "$dir/me.png"  # the README's `--ref me.png`

# the lines of the first ```sh block after the heading $2 in file $1 that start with ./build/cameo
# (a trailing `# comment` dropped; "\" continuations joined)
block() {
    awk -v h="$2" '
        index($0, h) == 1 { in_sec = 1; next }
        in_sec && /^```sh/ { in_blk = 1; next }
        in_blk && /^```/ { exit }
        in_blk {
            line = $0
            if (cont != "") { line = cont " " line; cont = "" }
            if (line ~ /\\$/) { sub(/\\$/, "", line); cont = line; next }
            if (line ~ /^\.\/build\/cameo /) { sub(/ +#[^"]*$/, "", line); print line }
        }' "$1"
}

run_block() {  # file heading: each command in $dir, exit 0 wanted
    local n=0
    while IFS= read -r cmd; do
        case "$cmd" in
        *instantcharacter_ip-adapter.bin*) continue ;;  # the released weights: not here
        "./build/cameo bench ops") continue ;;           # minutes at full width (cli_usage checks its --help)
        esac
        n=$((n + 1))
        (cd "$dir" && eval "$cmd") >"$dir/cmd.log" 2>&1 || fail "$1: '$cmd' exited $?"
        # a documented resume is the same run: no key of it differs from the checkpoint's
        ! grep -q "^resume: .* changed from" "$dir/cmd.log" || fail "$1: '$cmd' resumes with another config"
        echo "ok: $cmd"
    done < <(block "$1" "$2")
    [ "$n" -ge "$3" ] || fail "$1 '$2': $n commands found, want at least $3 (the block moved?)"
}

# every flag the README and docs/ write after `cameo SUBCOMMAND` is one its --help lists (a renamed
# or removed option shows here, in the page that still teaches it; performance.md is a dated record)
doc_flags() {
    awk '
    # "SUBCOMMAND<TAB>--flag" for each flag written after `cameo SUBCOMMAND` on a line (to a backtick
    # or a " #" comment); a line ending in "\" goes on, as does an indented "[--..." usage line after one
    function flags(cmd, rest,    n, i, w) {
        if (match(rest, /`| #/)) rest = substr(rest, 1, RSTART - 1)
        n = split(rest, w, /[ \[\]=(),|]+/)
        for (i = 1; i <= n; i++) if (w[i] ~ /^--[a-z][a-z0-9-]*$/ && w[i] != "--help") print cmd "\t" w[i]
    }
    {
        line = $0
        if (cont != "") { line = cont " " line; cont = "" }
        if (line ~ /\\$/) { sub(/\\$/, "", line); cont = line; next }
        if (last != "" && line ~ /^ +\[--/) { flags(last, line); next }
        last = ""
        while (match(line, /cameo (train|export|sample|eval|inspect|import-bin|cache-text|cache-refs|cache-latents|data [a-z]+|bench [a-z]+)( |$)/)) {
            last = substr(line, RSTART + 6, RLENGTH - 6); sub(/ $/, "", last)
            line = substr(line, RSTART + RLENGTH)
            flags(last, line)
        }
    }
    ' "$1"
}
declare -A usage
for f in "$src/README.md" "$src"/docs/*.md; do
    case $f in */performance.md) continue ;; esac
    while IFS=$'\t' read -r sub flag; do
        # once per subcommand; OMP_WAIT_POLICY set: cameo starts without its re-exec
        # shellcheck disable=SC2086
        [ -n "${usage[$sub]:-}" ] || usage[$sub]=$(OMP_WAIT_POLICY=passive "$cameo" $sub --help 2>&1 || true)
        grep -q -- "$flag\b" <<<"${usage[$sub]}" ||
            fail "${f#"$src"/}: 'cameo $sub $flag', but 'cameo $sub --help' has no $flag"
    done < <(doc_flags "$f" | sort -u)
done
echo "ok: every documented flag is in its command's --help"

run_block "$src/README.md" "## Using it" 12
[ -s "$dir/adapter-ema.bin" ] && [ -s "$dir/s.png" ] && [ -s "$dir/runs/first/eval/summary.md" ] &&
    [ -s "$dir/runs/first/adapter.safetensors" ] ||
    fail "the README's outputs: adapter-ema.bin, s.png, runs/first/eval/summary.md, runs/first/adapter.safetensors"
for k in step stage stage_name loss loss_smoothed lr grad_norm samples_per_s step_s data_s time; do
    grep -q "\"$k\":" "$dir/runs/first/metrics.jsonl" || fail "RUN/metrics.jsonl has no '$k' (README lists it)"
done

# fine-tuning: the dataset builds; the train command, without the published weights, stops before
# any work and says what to download
mkdir "$dir/my-images"
for i in 1 2; do cp "$src/docs/examples/eval/ref-a.png" "$dir/my-images/a$i.png"; echo "mychar waving" >"$dir/my-images/a$i.txt"; done
mapfile -t ft < <(awk '/^## Fine-tuning on your own character/ { s = 1 } s && /^\.\/build\/cameo / { print } s && /^```$/ { exit }' "$src/README.md")
[ "${#ft[@]}" -eq 2 ] || fail "README's fine-tuning block: ${#ft[@]} commands, want 2"
(cd "$dir" && eval "${ft[0]}") >"$dir/cmd.log" 2>&1 || fail "'${ft[0]}' exited $?"
if (cd "$dir" && eval "${ft[1]}") >"$dir/cmd.log" 2>&1; then fail "'${ft[1]}' ran without the published weights"; fi
grep -q "huggingface.co/black-forest-labs/FLUX.1-dev" "$dir/cmd.log" && grep -q "model.adapter_init" "$dir/cmd.log" ||
    fail "'${ft[1]}' without the weights does not say where to get them"
[ ! -e "$dir/runs/finetune-character" ] || fail "'${ft[1]}' made its run folder before finding the weights missing"

run_block "$src/docs/eval.md" "## A sweep, from a tiny run" 3
# evaluation during training, on that run's dataset: the 8 images the page counts (its stages
# shortened as the sweep's run is; the tiny default's 800 steps made 800 in 200 evaluations)
run_block "$src/docs/eval.md" "## During training" 1
n=$(wc -l <"$dir/runs/ev-train/tiny/eval/results.jsonl")
[ "$n" -eq 8 ] || fail "docs/eval.md 'During training': $n lines in runs/ev-train/tiny/eval/results.jsonl, the page says 8"
echo "readme_quickstart: all passed"
