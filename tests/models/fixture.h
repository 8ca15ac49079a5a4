// fixture.h — what the model tests share to compare against the PyTorch fixtures (tests/fixtures/,
// written by scripts/fixtures_*.py): a named tensor of a fixture file, the max relative error,
// and the scalar sum(a * w) whose gradient the fixtures record.
// defines: fixture_tensor, fixture_rel_err, fixture_dot.
#pragma once
#include "autograd/autograd.h"
#include "models/safetensors.h"

// the tensor name of f on the CPU; stops the test with a message naming the file when it is missing
cm_tensor *fixture_tensor(const st_file *f, const char *name);
// max |got - want| / max |want| (the denominator at least 1e-30); INFINITY when got is NULL or
// has another element count, NaN when got holds a NaN
double fixture_rel_err(const cm_tensor *got, const cm_tensor *want);
// sum(a * w) as a scalar on the tape
cm_tensor *fixture_dot(cm_tensor *a, cm_tensor *w);
