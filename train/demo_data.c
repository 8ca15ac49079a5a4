// demo_data.c — see demo_data.h
#include "train/demo_data.h"
#include "data/build.h"
#include "data/demo.h"

int train_demo_data(const train_config *c, char *err, size_t errlen) {
    demo_options d = demo_options_default();
    d.seed = c->run.seed;
    d.characters = c->data.demo_characters;
    d.per_character = c->data.demo_per_character;
    d.size = c->data.demo_size;
    build_options bo = build_options_default();
    bo.quiet = 1;
    bo.bucket_step = c->data.bucket_step;
    bo.bucket_resolution = c->stages[0].resolution;
    build_report rep;
    return demo_build(c->data.path, &d, &bo, &rep, err, errlen);
}
