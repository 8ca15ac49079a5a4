// feed.c — see feed.h
#include "train/feed.h"

void feed_init(feed *f, loader *L, ic_models *m) { *f = (feed){.L = L, .m = m}; }

static int take_new(feed *f, step_batch *out, uint64_t damage[2]) {
    loader_batch b;
    int rc = loader_next(f->L, &b);
    if (rc == 0) step_batch_upload(f->m, &b, out);
    if (rc == 0 && damage) damage[0] = b.skipped, damage[1] = b.ref_replaced;
    return rc;
}

int feed_take(feed *f, step_batch *out) {
    if (!f->ahead) return take_new(f, out, NULL);
    *out = f->next;
    f->next = (step_batch){0};
    f->ahead = false;
    return 0;
}

int feed_ahead(feed *f) {
    if (f->ahead) return 0;
    loader_state(f->L, &f->before);
    int rc = take_new(f, &f->next, f->next_damage);
    f->ahead = rc == 0;
    return rc;
}

void feed_state(const feed *f, loader_resume *out) {
    if (f->ahead) *out = f->before;
    else loader_state(f->L, out);
}

void feed_damage(const feed *f, uint64_t *skipped, uint64_t *replaced) {
    loader_counts c;
    loader_stats(f->L, &c);
    *skipped = c.corrupt_record + c.bad_image + c.bad_metadata + c.missing_record;
    *replaced = c.ref_fallback;
    if (f->ahead) *skipped -= f->next_damage[0], *replaced -= f->next_damage[1];
}

void feed_close(feed *f) {
    step_batch_release(&f->next);
    f->ahead = false;
    loader_close(f->L);
    f->L = NULL;
}
