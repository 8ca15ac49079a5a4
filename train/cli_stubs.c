// placeholders for subcommands not built yet; each says so plainly
#include <stdio.h>
#include "train/cli.h"
int train_cli(int argc, char **argv) { fprintf(stderr, "cameo train: not yet built\n"); return 2; }
int export_cli(int argc, char **argv) { fprintf(stderr, "cameo export: not yet built\n"); return 2; }
