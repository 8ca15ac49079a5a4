// cli.h — entry points of the cameo subcommands that live in train/, models/ and the benches.
// Each takes the arguments after its own name and returns the process exit code.
#pragma once
#include <stdbool.h>
int train_cli(int argc, char **argv);
int export_cli(int argc, char **argv);
int inspect_cli(int argc, char **argv);
int bench_cli(int argc, char **argv);
int sample_cli(int argc, char **argv);  // eval/sample_cli.c
int eval_cli(int argc, char **argv);    // eval/eval_cli.c
int cache_text_cli(int argc, char **argv);  // train/text_cache_build.c
int cache_refs_cli(int argc, char **argv);  // train/ref_cache_build.c
int cache_latents_cli(int argc, char **argv);  // train/latent_cache_build.c
struct train_config;
// run.threads on OpenMP and OpenBLAS, as a training run sets them (0: every core, at most 4 tiny)
void train_threads_apply(const struct train_config *c);
// `cameo inspect CHECKPOINT` (train/ckpt_info.c): whether PATH is a checkpoint folder, a run's
// checkpoints folder (or its run folder), or a `latest` file; then its summary
bool ckpt_info_applies(const char *path);
int ckpt_info_cli(const char *path);
