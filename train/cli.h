// cli.h — entry points of the cameo subcommands that live in train/, models/ and the benches.
// Each takes the arguments after its own name and returns the process exit code.
#pragma once
int train_cli(int argc, char **argv);
int export_cli(int argc, char **argv);
int inspect_cli(int argc, char **argv);
int bench_cli(int argc, char **argv);
int sample_cli(int argc, char **argv);  // eval/sample_cli.c
int eval_cli(int argc, char **argv);    // eval/eval_cli.c
