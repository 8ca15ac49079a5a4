// stage_setup.h — what a config says for one stage's loader and for the training step, in one
// place for the trainer and the benchmark.
// defines: stage_loader_config, stage_step_opts
#pragma once
#include "data/loader.h"
#include "train/config.h"
#include "train/step.h"

// the loader of stage s for rank r of w (reference views of ref_size); each stage has its own order
loader_config stage_loader_config(const train_config *c, int s, int ref_size, int rank, int world);
step_opts stage_step_opts(const train_config *c);
