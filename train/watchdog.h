// watchdog.h — a training step that never ends ends the process. Under several ranks one stuck
// rank (a dead node, a hung GPU, a lost link) leaves the others waiting in a collective for ever:
// NCCL and MPI do not time out, and a cluster job would sit on its nodes until its time limit.
// A thread watches each step; past run.step_timeout seconds it says which step on which rank, and
// exits the process (status 3), so the launcher (mpirun, srun --kill-on-bad-exit) stops the job
// and `--resume auto` continues from the last checkpoint. Watched: each step, each checkpoint's
// write and each validation (all ranks take part in them), and each image of an evaluation (rank 0
// alone: the whole may rightly take long, the others wait in an unwatched barrier); not model loading.
// defines: watchdog, watchdog_*
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct watchdog {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started, stop, armed;
    double limit_s;           // seconds a step may take
    double deadline;          // CLOCK_MONOTONIC seconds, while armed
    int64_t step;
    const char *what;         // "step", "the checkpoint of step", ... (a static string)
    int rank;
} watchdog;

// limit_s <= 0: no thread, every other call a no-op
void watchdog_start(watchdog *w, double limit_s, int rank);
void watchdog_arm(watchdog *w, int64_t step);  // the step (0-based global index) begins
// another part watched under the same limit: what + " " + (step + 1) names it in the message
void watchdog_arm_for(watchdog *w, int64_t step, const char *what);
void watchdog_disarm(watchdog *w);             // it ended
void watchdog_stop(watchdog *w);
