// bench_train.h — `cameo bench train [CONFIG] [--steps N] [--warmup N] [--stage S] [--medium]
// [--no-torch] [--set key=value]...`: the speed and memory of one training step on the CPU,
// split into data, frozen encoders, forward, backward and optimizer, beside the same step in
// PyTorch (scripts/bench_train_torch.py) run in the same process tree. Prints markdown tables.
#pragma once
int bench_train_main(int argc, char **argv);
