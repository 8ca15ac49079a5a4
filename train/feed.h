// feed.h — the trainer's batches: a loader plus one batch taken ahead and already on its way to
// the device, so that batch j+1 crosses to the GPU while step j's backward still runs there.
// A checkpoint saves the loader's state from before the batch taken ahead: a resumed run takes
// that batch again, so resume stays exact.
// defines: feed, feed_init, feed_take, feed_ahead, feed_state, feed_damage, feed_close
#pragma once
#include <stdbool.h>
#include "data/loader.h"
#include "train/step.h"

typedef struct feed {
    loader *L;
    ic_models *m;
    bool ahead;             // `next` holds a batch taken ahead
    step_batch next;
    loader_resume before;   // the loader's state before `next` was taken
    uint64_t next_damage[2];// `next`'s records skipped as damaged, references replaced
} feed;

void feed_init(feed *f, loader *L, ic_models *m);
// the next batch (the one taken ahead, or a new one): 0 ok, else loader_next's code (1 end, -1 error)
int feed_take(feed *f, step_batch *out);
// takes the next batch now and starts its upload (call it right after a backward is queued)
int feed_ahead(feed *f);
// the resume state a checkpoint saves: as if no batch had been taken ahead
void feed_state(const feed *f, loader_resume *out);
// records skipped as damaged and references replaced in the batches taken (not the one ahead: a run
// stopped now resumes before it and counts it then)
void feed_damage(const feed *f, uint64_t *skipped, uint64_t *replaced);
// releases a batch taken ahead and closes the loader
void feed_close(feed *f);
