// demo_data.h — the generated demo dataset a config asks for (data.demo_*), at data.path.
#pragma once
#include <stddef.h>
#include "train/config.h"
// builds it with the run's seed and the first stage's bucket area; 0, or -1 with err set
int train_demo_data(const train_config *c, char *err, size_t errlen);
