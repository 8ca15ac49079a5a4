// bench.h — benchmark entry points behind `cameo bench`.
#pragma once
int bench_ops_main(int argc, char **argv);
