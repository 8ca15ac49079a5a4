// emu_nccl.cpp — the part of NCCL cameo uses (train/dist.c), for the CUDA emulator's builds: each
// rank is an MPI process whose emulated device memory is its own host memory, so a collective is
// an MPI_Allreduce of the device buffers. What it checks of the caller, as real NCCL would fail or
// hang on it: every rank joins with the unique id rank 0 made (so it must have been broadcast),
// nranks and rank match MPI's, buffers are device allocations holding count elements, all ranks
// issue the same reductions (same count, type and op, in the same order), groups are balanced.
// Arithmetic: f32 sums of the ranks' values (bf16 widened), Avg divides by nranks, one rounding
// back to the buffer's type — real NCCL may round bf16 partial sums, a difference of rounding only.
#define OMPI_SKIP_MPICXX 1  // the C API only (no C++ bindings to link)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <nccl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <vector>

extern "C" void emu_check_device_range(const char *call, const char *what, const void *p, size_t n);

struct ncclComm {
    int nranks, rank;
};

namespace {
struct pending {
    const void *send;
    void *recv;
    size_t count;
    ncclDataType_t type;
    ncclRedOp_t op;
    ncclComm_t comm;
};
std::vector<pending> g_group;  // the collectives queued since the outermost ncclGroupStart
int g_depth;
char g_last[512];

ncclResult_t fail(ncclResult_t r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last, sizeof g_last, fmt, ap);
    va_end(ap);
    return r;
}

float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
uint16_t f32_to_bf16(float f) {  // round to nearest even; NaN stays NaN
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

ncclResult_t run(const pending &p) {
    // every rank must be issuing the same reduction now: compare (count, type, op) across ranks
    long mine[3] = {(long)p.count, (long)p.type, (long)p.op}, lo[3], hi[3];
    MPI_Allreduce(mine, lo, 3, MPI_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(mine, hi, 3, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (memcmp(lo, hi, sizeof lo))
        return fail(ncclInvalidUsage, "ranks issue different reductions at once: counts %ld..%ld, types %ld..%ld, ops %ld..%ld "
                    "(real NCCL would hang or corrupt)", lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]);
    std::vector<float> v(p.count);
    if (p.type == ncclFloat32) memcpy(v.data(), p.send, p.count * 4);
    else
        for (size_t i = 0; i < p.count; i++) v[i] = bf16_to_f32(((const uint16_t *)p.send)[i]);
    for (size_t off = 0; off < p.count; off += 1u << 30) {
        int n = (int)(p.count - off < (1u << 30) ? p.count - off : (1u << 30));
        MPI_Allreduce(MPI_IN_PLACE, v.data() + off, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    if (p.op == ncclAvg)
        for (float &x : v) x /= (float)p.comm->nranks;
    if (p.type == ncclFloat32) memcpy(p.recv, v.data(), p.count * 4);
    else
        for (size_t i = 0; i < p.count; i++) ((uint16_t *)p.recv)[i] = f32_to_bf16(v[i]);
    return ncclSuccess;
}
}  // namespace

extern "C" {
const char *ncclGetErrorString(ncclResult_t r) {
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    case ncclSystemError: return "system error";
    default: return "unhandled error";
    }
}
const char *ncclGetLastError(ncclComm_t comm) {
    (void)comm;
    return g_last;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "emu-nccl %d %ld", (int)getpid(), (long)time(NULL));
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    int inited = 0, size = 0, me = 0;
    MPI_Initialized(&inited);
    if (!inited) return fail(ncclSystemError, "emulated NCCL runs over MPI, and MPI is not initialised");
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    if (nranks != size || rank != me)
        return fail(ncclInvalidArgument, "ncclCommInitRank(nranks %d, rank %d) in MPI rank %d of %d", nranks, rank, me, size);
    ncclUniqueId root = id;  // every rank must hold rank 0's id
    MPI_Bcast(&root, (int)sizeof root, MPI_BYTE, 0, MPI_COMM_WORLD);
    int same = !memcmp(&root, &id, sizeof id), all = 0;
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all) return fail(ncclInvalidArgument, "the ranks joined with different unique ids (was rank 0's broadcast?)");
    *comm = (ncclComm_t)calloc(1, sizeof(ncclComm));
    if (!*comm) return fail(ncclSystemError, "out of host memory");
    (*comm)->nranks = nranks;
    (*comm)->rank = rank;
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    free(comm);
    return ncclSuccess;
}

ncclResult_t ncclGroupStart(void) {
    g_depth++;
    return ncclSuccess;
}

ncclResult_t ncclGroupEnd(void) {
    if (g_depth == 0) return fail(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
    if (--g_depth) return ncclSuccess;
    ncclResult_t r = ncclSuccess;
    for (const pending &p : g_group)
        if (r == ncclSuccess) r = run(p);
    g_group.clear();
    return r;
}

// the emulator's streams run each call as it is made, so the buffers are ready now
ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    (void)stream;
    if (!comm) return fail(ncclInvalidArgument, "ncclAllReduce: no communicator");
    if (type != ncclFloat32 && type != ncclBfloat16)
        return fail(ncclInvalidArgument, "ncclAllReduce: the emulation knows float32 and bfloat16, not type %d", (int)type);
    if (op != ncclSum && op != ncclAvg)
        return fail(ncclInvalidArgument, "ncclAllReduce: the emulation knows sum and avg, not op %d", (int)op);
    size_t bytes = count * (type == ncclFloat32 ? 4 : 2);
    if (count) {
        emu_check_device_range("ncclAllReduce", "sendbuff", send, bytes);
        emu_check_device_range("ncclAllReduce", "recvbuff", recv, bytes);
    }
    pending p = {send, recv, count, type, op, comm};
    if (g_depth) {
        g_group.push_back(p);
        return ncclSuccess;
    }
    return run(p);
}
}
