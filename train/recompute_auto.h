// recompute_auto.h — train.recompute: auto. How many FLUX blocks, from the first, must run under
// recompute scopes for a step to fit the device when the others keep their activations; the budget
// a device gives the allocator. Shared by the trainer (its measured first step of each stage) and
// `cameo bench blocks --full-step`.
// defines: recompute_budget, recompute_to_fit, recompute_agree, recompute_vote
#pragma once
#include "autograd/tensor.h"

// bytes the allocator may reach on dev: what it holds (live + cached) and the device's free bytes,
// less 1 GiB and 3 % of the total (fragmentation, libraries' workspaces, a batch a little larger); 0 when
// the device's free memory is unknown. CAMEO_RECOMPUTE_BUDGET_MB=X (tests): X MiB instead.
double recompute_budget(cm_device dev);
// the first N of nd + ns blocks (double first) recompute, the last ones keep their activations as
// long as the all-recompute peak plus keep_cost[0] per kept double / [1] per kept single block stays
// within budget (the last blocks kept first: backward reaches the first ones last, so one replay and
// the kept activations are never at their peaks together). nd + ns when none fits.
int recompute_to_fit(int nd, int ns, double peak_all, const double keep_cost[2], double budget);
// the ranks' common choice from their votes (votes[r]: rank r's count of recomputing blocks, or < 0
// for a rank that measured nothing — no readable sample in its first step): the most cautious vote
// among those that measured; nb (all) when none did. A rank without figures voting nb forced every
// block to recompute for the whole stage on all ranks.
int recompute_agree(const double *votes, int world, int nb);
// this process's count of recomputing blocks after a measured step with every one of nd + ns blocks
// recomputed (autograd_recompute_max_kept and dev's allocator peak since their reset): -1 without
// figures (no replay ran), nd + ns when the budget is unknown, else recompute_to_fit. The figures
// used go to *peak, *kept, *budget (for the message). Shared by the trainer and `cameo bench train`.
int recompute_vote(int nd, int ns, cm_device dev, double *peak, double *kept, double *budget);
