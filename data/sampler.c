// sampler.c — see sampler.h for the algorithm.
#include "data/sampler.h"
#include <stdlib.h>
#include <string.h>
#include "data/rng.h"

static void shuffle_int(int *a, uint64_t n, uint64_t key) {
    uint64_t st = key;
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = rng_below(&st, i);
        int t = a[i - 1]; a[i - 1] = a[j]; a[j] = t;
    }
}

static void shuffle_u32(uint32_t *a, uint64_t n, uint64_t key) {
    uint64_t st = key;
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = rng_below(&st, i);
        uint32_t t = a[i - 1]; a[i - 1] = a[j]; a[j] = t;
    }
}

int sampler_init(sampler *s, const sampler_config *c) {
    memset(s, 0, sizeof *s);
    s->c = *c;
    if (!s->c.block) s->c.block = SAMPLER_DEFAULT_BLOCK;
    if (c->global_batch <= 0 || c->n_buckets <= 0 || c->n_buckets > 254 || c->n_shards <= 0 || c->n_samples > 0xffffffffull) return -1;
    s->shard_first = malloc(sizeof(uint64_t) * c->n_shards);
    s->group_shards = malloc(sizeof(int) * c->n_shards);
    s->group_begin = malloc(sizeof(int) * (c->n_shards + 1));
    uint64_t tot = 0;
    for (int i = 0; i < c->n_shards; i++) { s->shard_first[i] = tot; tot += c->shard_count[i]; s->group_shards[i] = i; }
    if (tot != c->n_samples) { sampler_free(s); return -1; }
    shuffle_int(s->group_shards, (uint64_t)c->n_shards, rng_key(c->seed, 0, 0, RNG_SHARD_ORDER));
    uint64_t acc = 0;
    s->group_begin[0] = 0;
    for (int i = 0; i < c->n_shards; i++) {
        acc += c->shard_count[s->group_shards[i]];
        if (acc >= s->c.block || i == c->n_shards - 1) {
            if (acc > s->max_group) s->max_group = acc;
            s->group_begin[++s->n_groups] = i + 1;
            acc = 0;
        }
    }
    uint64_t *per = calloc((size_t)c->n_buckets, sizeof *per);
    for (uint64_t i = 0; i < c->n_samples; i++) {
        if (c->bucket[i] == SAMPLER_EXCLUDED) s->excluded++;
        else if (c->bucket[i] < c->n_buckets) per[c->bucket[i]]++;
        else { free(per); sampler_free(s); return -1; }
    }
    for (int b = 0; b < c->n_buckets; b++) {
        s->batches_per_epoch += per[b] / (uint64_t)c->global_batch;
        s->dropped_per_epoch += per[b] % (uint64_t)c->global_batch;
    }
    free(per);
    return 0;
}

void sampler_free(sampler *s) {
    free(s->shard_first);
    free(s->group_shards);
    free(s->group_begin);
    memset(s, 0, sizeof *s);
}

int sampler_order_epoch(const sampler *s, uint64_t epoch, sampler_order *o) {
    const sampler_config *c = &s->c;
    uint64_t G = (uint64_t)c->global_batch, nb = s->batches_per_epoch;
    if (o->cap_batches < nb || !o->ids) {
        free(o->ids); free(o->bucket);
        o->ids = malloc(sizeof(uint32_t) * (nb * G + 1));
        o->bucket = malloc(nb + 1);
        o->cap_batches = nb;
        if (!o->ids || !o->bucket) return -1;
    }
    o->epoch = epoch;
    o->n_batches = 0;
    int *gorder = malloc(sizeof(int) * s->n_groups);
    uint32_t *buf = malloc(sizeof(uint32_t) * (s->max_group + 1));
    uint32_t *pend = malloc(sizeof(uint32_t) * G * c->n_buckets);
    uint64_t *plen = calloc((size_t)c->n_buckets, sizeof *plen);
    if (!gorder || !buf || !pend || !plen) { free(gorder); free(buf); free(pend); free(plen); return -1; }
    for (int g = 0; g < s->n_groups; g++) gorder[g] = g;
    shuffle_int(gorder, (uint64_t)s->n_groups, rng_key(c->seed, epoch, 0, RNG_GROUP_ORDER));
    for (int gi = 0; gi < s->n_groups; gi++) {
        int g = gorder[gi];
        uint64_t n = 0;
        for (int k = s->group_begin[g]; k < s->group_begin[g + 1]; k++) {
            int sh = s->group_shards[k];
            for (uint64_t j = 0; j < c->shard_count[sh]; j++) buf[n++] = (uint32_t)(s->shard_first[sh] + j);
        }
        shuffle_u32(buf, n, rng_key(c->seed, epoch, (uint64_t)g, RNG_GROUP_SHUFFLE));
        for (uint64_t i = 0; i < n; i++) {
            uint32_t id = buf[i];
            uint8_t b = c->bucket[id];
            if (b == SAMPLER_EXCLUDED) continue;
            uint32_t *q = pend + (uint64_t)b * G;
            q[plen[b]++] = id;
            if (plen[b] == G) {
                memcpy(o->ids + o->n_batches * G, q, sizeof(uint32_t) * G);
                o->bucket[o->n_batches++] = b;
                plen[b] = 0;
            }
        }
    }
    free(gorder); free(buf); free(pend); free(plen);
    return o->n_batches == nb ? 0 : -1;
}

void sampler_order_free(sampler_order *o) {
    free(o->ids);
    free(o->bucket);
    memset(o, 0, sizeof *o);
}

size_t sampler_order_bytes(const sampler *s) {
    return (size_t)(s->batches_per_epoch * (uint64_t)s->c.global_batch * sizeof(uint32_t) + s->batches_per_epoch) +
           (size_t)s->max_group * sizeof(uint32_t) + (size_t)s->c.n_buckets * s->c.global_batch * sizeof(uint32_t);
}
