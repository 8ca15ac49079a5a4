#include "testutil.h"

int test_failures = 0, test_checks = 0;

int test_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, test_checks - test_failures, test_failures);
    return test_failures ? 1 : 0;
}

void test_skip(const char *why) {
    printf("SKIP: %s\n", why);
    exit(77);
}
