#!/usr/bin/env bash
# e2e_sbatch.sh — scripts/slurm/train.sbatch without Slurm: srun and scontrol replaced by stand-ins
# (srun runs the command as one task and treats signals as Slurm's srun does; scontrol records its
# arguments; scancel signals the tasks). The job gets USR1 as
# Slurm's --signal=B:USR1@300 would send it: cameo must stop at a step boundary with a
# checkpoint, the script must requeue the job; the requeued job (the same script again) resumes
# with --resume auto and ends with the weights and optimizer state of an uninterrupted run.
# Usage: e2e_sbatch.sh PATH/TO/cameo SOURCE_DIR
set -euo pipefail
cameo=$1
src=$2
dir=$(mktemp -d /tmp/cameo-sbatch-XXXXXX)
fail() {
    echo "FAIL: $*"
    for f in "$dir"/*.log; do echo "--- $f"; tail -n 20 "$f"; done
    exit 1
}

mkdir "$dir/bin"
# srun as Slurm's (src/srun/srun_job.c, _srun_signal_mgr): the task is its child; a SIGTERM, SIGHUP
# or SIGQUIT to srun itself kills the task ("srun: forcing job termination", SIGKILL: no
# checkpoint), USR1 and USR2 are passed on. Each task's pid goes to tasks, for scancel
cat >"$dir/bin/srun" <<EOF
#!/usr/bin/env bash
echo "\$@" >>"$dir/srun.calls"
while [[ \$1 == --* ]]; do shift; done  # srun's own options
# a step of one task, in the environment Slurm gives it (no --mpi plugin: MpiDefault=none). Open
# MPI's MPI_Init refuses to start there ("direct launched using srun, but OMPI was not built with
# SLURM's PMI support"): a single task must not need MPI
export SLURM_JOBID=\$SLURM_JOB_ID SLURM_STEP_ID=0 SLURM_STEPID=0 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 \\
    SLURM_NTASKS=1 SLURM_NPROCS=1 SLURM_STEP_NUM_TASKS=1 SLURM_STEP_NUM_NODES=1 SLURM_NODELIST=node1 \\
    SLURM_JOB_NODELIST=node1 SLURM_STEP_NODELIST=node1 SLURM_TASKS_PER_NODE=1 SLURM_STEP_TASKS_PER_NODE=1
"\$@" &
task=\$!
echo "\$task" >>"$dir/tasks"
trap 'echo "srun: forcing job termination" >&2; kill -KILL \$task' TERM HUP QUIT
trap 'kill -USR1 \$task' USR1
trap 'kill -USR2 \$task' USR2
while :; do
    wait \$task && rc=0 || rc=\$?
    kill -0 \$task 2>/dev/null || break
done
exit \$rc
EOF
cat >"$dir/bin/scontrol" <<EOF
#!/usr/bin/env bash
echo "\$@" >>"$dir/scontrol.calls"
EOF
# scancel --signal=SIG JOBID: SIG to the tasks of the job's steps (as Slurm's: not to the batch shell)
cat >"$dir/bin/scancel" <<EOF
#!/usr/bin/env bash
echo "\$@" >>"$dir/scancel.calls"
sig=KILL
for a in "\$@"; do [[ \$a == --signal=* ]] && sig=\${a#--signal=}; done
while read -r p; do kill -"\$sig" "\$p" 2>/dev/null || true; done <"$dir/tasks"
sleep 0.5  # the round trip to slurmctld: tasks quick to stop end before scancel returns
EOF
chmod +x "$dir/bin/srun" "$dir/bin/scontrol" "$dir/bin/scancel"
export PATH="$dir/bin:$PATH" SLURM_JOB_ID=4242 CAMEO="$cameo"
unset SLURM_CPUS_PER_TASK  # jobs 1 and 2: a job without --cpus-per-task
args=(--set stages.0.steps=6 --set stages.1.steps=4 --set stages.2.steps=4 --set run.ckpt_every=2 --set run.keep_last=0
      --set run.device=cpu --set data.path="$dir/data" --quiet)

# the uninterrupted run, for the comparison (also makes the dataset)
"$cameo" train "${args[@]}" --set run.out_dir="$dir/straight" 2>"$dir/straight.log" || fail "the uninterrupted run"

# job 1: USR1 once step 2 is checkpointed
bash "$src/scripts/slurm/train.sbatch" "${args[@]}" --set run.out_dir="$dir/job" >"$dir/job1.log" 2>&1 &
job=$!
for _ in $(seq 1200); do
    [ -d "$dir/job/tiny/checkpoints/step-2" ] && break
    sleep 0.1
done
[ -d "$dir/job/tiny/checkpoints/step-2" ] || fail "job 1 never reached step 2"
kill -USR1 "$job"
rc=0
wait "$job" || rc=$?
[ "$rc" = 0 ] || fail "job 1 exited with $rc after USR1"
grep -q "time limit near" "$dir/job1.log" || fail "job 1 did not see USR1"
grep -q "^requeue 4242$" "$dir/scontrol.calls" || fail "job 1 did not requeue itself"
# 12 steps were left when the signal came: a job that ran to the end never passed it on to cameo
[ ! -d "$dir/job/tiny/checkpoints/step-14" ] || fail "job 1 ran to the end: the signal did not stop cameo"
echo "job 1 stopped at $(cat "$dir/job/tiny/checkpoints/latest") and requeued itself"

# job 2: the requeued job runs the same script; it resumes and finishes without requeueing
rm -f "$dir/scontrol.calls"
bash "$src/scripts/slurm/train.sbatch" "${args[@]}" --set run.out_dir="$dir/job" >"$dir/job2.log" 2>&1 || fail "job 2"
grep -q "resuming from $dir/job/tiny/checkpoints" "$dir/job2.log" || fail "job 2 did not resume"
[ ! -e "$dir/scontrol.calls" ] || fail "job 2 requeued itself without a signal"
for f in adapter.safetensors optimizer.safetensors; do
    cmp -s "$dir/straight/tiny/checkpoints/step-14/$f" "$dir/job/tiny/checkpoints/step-14/$f" ||
        fail "$f differs from the uninterrupted run's"
done
echo "e2e_sbatch: stopped, requeued and resumed to the uninterrupted run's bytes"

# job 3: a task that stops at once on SIGTERM (a signal near the run's end) ends while the trap's
# scancel is still out: the job must take srun's status (0), not the interrupted wait's 138
cat >"$dir/quick" <<EOF
#!/usr/bin/env bash
trap 'exit 0' TERM
echo ready >"$dir/quick.ready"
while :; do sleep 0.1; done
EOF
chmod +x "$dir/quick"
rm -f "$dir/scontrol.calls" "$dir/tasks"
CAMEO="$dir/quick" SLURM_CPUS_PER_TASK=3 bash "$src/scripts/slurm/train.sbatch" "${args[@]}" >"$dir/job3.log" 2>&1 &
job=$!
for _ in $(seq 100); do [ -e "$dir/quick.ready" ] && break; sleep 0.1; done
kill -USR1 "$job"
rc=0
wait "$job" || rc=$?
[ "$rc" = 0 ] || fail "job 3 exited with $rc: its task stopped with 0 before scancel returned"
grep -q "^requeue 4242$" "$dir/scontrol.calls" || fail "job 3 (its task stopped at once) did not requeue itself"
echo "e2e_sbatch: a task that stops before scancel returns still requeues the job"
# srun (Slurm >= 22.05) does not take the job's --cpus-per-task: the script must pass it on, or
# every rank is bound to one CPU; and without one in the job, srun gets none (set -u, empty array)
grep -q -- "--cpus-per-task=3 $dir/quick train" "$dir/srun.calls" || fail "srun was not given the job's --cpus-per-task=3"
grep -q -- "^--kill-on-bad-exit=1 $cameo train" "$dir/srun.calls" || fail "srun of job 1 got options beyond --kill-on-bad-exit"
rm -rf "$dir"
