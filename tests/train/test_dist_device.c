// test_dist_device.c — the GPU each rank takes for `cuda:N` (dist_cuda_index, used by `cameo train`
// and `cameo eval` alike): cuda:N + local rank where a rank sees all of its node's GPUs, cuda:0
// where the launcher left each rank a single one (srun --gpus-per-task=1: local rank 3 sees one
// device, its own, as cuda:0 — cuda:3 does not exist there).
#include "tests/testutil.h"
#include "train/dist.h"

int main(void) {
    // 8 ranks on a node of 8 visible GPUs: rank r takes cuda:r, from cuda:N on
    for (int r = 0; r < 8; r++) TEST_CHECK(dist_cuda_index(0, r, 8) == r, "local rank %d of 8 GPUs: cuda:%d", r, dist_cuda_index(0, r, 8));
    TEST_CHECK(dist_cuda_index(2, 3, 8) == 5, "cuda:2 at local rank 3: cuda:5, got %d", dist_cuda_index(2, 3, 8));
    // one GPU visible to each rank: that one, whatever the local rank
    for (int r = 0; r < 8; r++)
        TEST_CHECK(dist_cuda_index(0, r, 1) == 0, "local rank %d seeing one GPU: cuda:0, got cuda:%d", r, dist_cuda_index(0, r, 1));
    // too few GPUs otherwise: an index the caller refuses (>= have), not a silent wrap onto another rank's
    TEST_CHECK(dist_cuda_index(0, 3, 2) >= 2, "local rank 3 on 2 GPUs is refused, got cuda:%d", dist_cuda_index(0, 3, 2));
    TEST_CHECK(dist_cuda_index(1, 0, 1) >= 1, "cuda:1 where one GPU is visible is refused, got cuda:%d", dist_cuda_index(1, 0, 1));
    return test_summary("test_dist_device");
}
