// cache_cli.h — what `cameo cache-text`, `cache-refs` and `cache-latents` share: their flags, the config they
// read, the refusal to run as one of several ranks, the datasets they read, their messages.
// defines: cache_cli, cache_cli_setup, cache_cli_build, cache_slot, cache_open_datasets, cache_say_room,
// cache_show_progress, cache_walk, cache_walk_dataset and the cache_slot_* functions.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "train/config.h"

typedef struct cache_cli {
    const char *cmd;          // "cache-text"
    const char *unit;         // what --batch counts: "captions"
    int batch, max_batch;     // --batch: its default on entry, then as given
    bool quiet, repair;
    const char *config, *out; // CONFIG.yaml (NULL: the embedded tiny default) and --out (or the config's setting)
    train_config *c;          // the config, --set applied (static storage)
} cache_cli;

// parses argv (usage on stdout for --help), loads the config, refuses several ranks, applies
// run.threads, and takes out from the config's setting (the char[] at out_field, named setting)
// when --out is not given. -1: go on; else the exit code.
int cache_cli_setup(cache_cli *a, int argc, char **argv, void (*usage)(FILE *), size_t out_field, const char *setting);

#include "train/feature_store.h"
// a builder of a cache: what `cameo CMD` runs once set up
typedef int (*cache_build_fn)(const train_config *c, const char *out, int batch, bool repair, bool quiet, fstore_report *r, char *err,
                              size_t errlen);
// runs build with a's settings and says what it did on stdout ("WHAT OUT: N UNIT added ...") and
// the command that trains with the cache (setting=OUT, then also: more --set it needs, or ""), or
// the error on stderr. The exit code.
int cache_cli_build(const cache_cli *a, cache_build_fn build, const char *what, const char *setting, const char *also);

// ---- what the builders share ----
#include "data/dataset.h"
#include "data/preprocess.h"

// a record read by a builder, to be decoded beside its batch's others (one thread each)
typedef struct cache_slot {
    uint64_t id;
    uint8_t *img;            // its WebP bytes: a copy (the reader's view of them lasts until its next read)
    size_t len, cap;
    uint32_t w, h;
    int alpha;
    preprocess_scratch ps;   // ps.src: the decoded image, as the loader's preprocess_load makes it
} cache_slot;
void cache_slot_take(cache_slot *s, uint64_t id, const record_view *rec, const char *cmd);  // the record's image, copied
// decodes it into s->ps (as the loader does): false when it does not decode to w x h (damaged)
bool cache_slot_decode(cache_slot *s, const char *cmd);
void cache_slot_free(cache_slot *s);
// a skipped record counted in r; the first one said on stderr (after a progress line on a TTY)
void cache_note_skip(const char *cmd, fstore_report *r, bool quiet, bool tty, const char *what);

// a walk over every record of a dataset, in id order, for a builder
typedef struct cache_walk {
    const char *cmd;          // "cache-refs", in messages
    const char *added_what;   // what the progress line counts as added: "references"
    fstore_report *r;         // records counted, skips counted
    bool quiet, tty;
    bool meta;                // the record's metadata read too (its captions)
    uint64_t total;           // the records this build reads, for the progress line
    double t0;                // when the build started
    void *ctx;
    bool (*need)(void *ctx, uint64_t id);  // NULL: every record; else false passes the record over unread
    // a record read and sound (its view and meta last until the next read): 0, or -1 with err
    int (*take)(void *ctx, uint64_t id, const record_view *rec, const record_meta *meta, char *err, size_t errlen);
} cache_walk;
// every record of d through w: counted, the progress line drawn, a damaged or missing one skipped
// and counted (cache_note_skip). 0, or -1 with err (a read that failed, or take's error)
int cache_walk_dataset(const cache_walk *w, dataset *d, char *err, size_t errlen);
// the datasets config c trains and validates on (the demo dataset generated first, as the trainer
// would), opened into ds[] (dataset_open's flags) with their paths; how many, or -1 with err (none left open)
int cache_open_datasets(const train_config *c, const char *cmd, bool quiet, int flags, const char **paths, dataset *ds, char *err,
                        size_t errlen);
// "CMD: X MiB a UNIT; Y GiB free there: room for about N UNITS": an entry's bytes against the room on
// out's disk (a full disk fails a batch's commit: nothing already written is lost)
void cache_say_room(const char *cmd, const char *out, double entry_bytes, const char *unit, const char *units);
// the progress line: records read of total, entries added (as `added_what`), rate and ETA; on a TTY
// redrawn in place, else a line each call; last: the final line, with the time taken
void cache_show_progress(const char *cmd, uint64_t records, uint64_t total, uint64_t added, const char *added_what, double t0, bool tty,
                         bool last);
