// recompute_auto.c — train.recompute: auto (recompute_auto.h).
#include "train/recompute_auto.h"
#include <stdlib.h>
#include "autograd/alloc.h"
#include "autograd/autograd.h"
#include "kernels/backend.h"

double recompute_budget(cm_device dev) {
    const char *lim = getenv("CAMEO_RECOMPUTE_BUDGET_MB");  // tests: the budget itself, in MiB
    if (lim && *lim) return atof(lim) * 1024.0 * 1024.0;
    size_t fr = backend_get(dev.type)->mem_free(backend_ctx(dev));
    if (!fr) return 0;
    cm_alloc_stats st = alloc_stats(dev);
    double total = (double)st.current + (double)st.cached + (double)fr;
    return total - (1024.0 * 1024.0 * 1024.0 + 0.03 * total);
}

int recompute_to_fit(int nd, int ns, double peak_all, const double keep_cost[2], double budget) {
    int kept = 0;
    double pk = peak_all;
    for (int i = nd + ns - 1; i >= 0; i--) {
        double cost = keep_cost[i >= nd];
        if (pk + cost > budget) break;
        pk += cost;
        kept++;
    }
    return nd + ns - kept;
}

int recompute_agree(const double *votes, int world, int nb) {
    int n = -1;
    for (int r = 0; r < world; r++)
        if (votes[r] >= 0 && (int)votes[r] > n) n = (int)votes[r];
    return n < 0 ? nb : n;
}

int recompute_vote(int nd, int ns, cm_device dev, double *peak, double *kept, double *budget) {
    *kept = (double)autograd_recompute_max_kept(true);
    *peak = (double)alloc_stats(dev).peak;
    *budget = recompute_budget(dev);
    if (*kept <= 0) return -1;
    return *budget > 0 ? recompute_to_fit(nd, ns, *peak, (const double[2]){*kept, *kept}, *budget) : nd + ns;
}
