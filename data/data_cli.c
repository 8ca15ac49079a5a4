#include <stdio.h>
#include "data/data_cli.h"
int data_cli(int argc, char **argv) {
    fprintf(stderr, "cameo data: not yet built\n");
    return 2;
}
