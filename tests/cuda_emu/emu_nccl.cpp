// emu_nccl.cpp — the part of NCCL cameo uses (train/dist.c), for the CUDA emulator's builds: each
// rank is an MPI process whose emulated device memory is its own host memory, so a collective is
// an MPI collective of the device buffers: AllReduce, Reduce (only the root's recvbuff is written)
// and Broadcast (the root's sendbuff into every rank's recvbuff). What it checks of the caller, as real NCCL would fail or
// hang on it: every rank joins with the unique id rank 0 made (so it must have been broadcast),
// nranks and rank match MPI's, buffers are device allocations holding count elements, all ranks
// issue the same collectives (same kind, count, type, op and root, in the same order), groups are
// balanced.
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
enum kind { ALLREDUCE, REDUCE, BROADCAST };
const char *kind_name[] = {"ncclAllReduce", "ncclReduce", "ncclBroadcast"};
struct pending {
    kind k;
    int root;  // Reduce, Broadcast
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
    // every rank must be issuing the same collective now: compare (kind, count, type, op, root)
    long mine[5] = {(long)p.k, (long)p.count, (long)p.type, (long)p.op, (long)p.root}, lo[5], hi[5];
    MPI_Allreduce(mine, lo, 5, MPI_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(mine, hi, 5, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (memcmp(lo, hi, sizeof lo))
        return fail(ncclInvalidUsage, "ranks issue different collectives at once: kinds %ld..%ld, counts %ld..%ld, types %ld..%ld, "
                    "ops %ld..%ld, roots %ld..%ld (real NCCL would hang or corrupt)", lo[0], hi[0], lo[1], hi[1], lo[2], hi[2],
                    lo[3], hi[3], lo[4], hi[4]);
    int me = p.comm->rank;
    std::vector<float> v(p.count);
    if (p.k != BROADCAST || me == p.root) {
        if (p.type == ncclFloat32) memcpy(v.data(), p.send, p.count * 4);
        else
            for (size_t i = 0; i < p.count; i++) v[i] = bf16_to_f32(((const uint16_t *)p.send)[i]);
    }
    for (size_t off = 0; off < p.count; off += 1u << 30) {
        int n = (int)(p.count - off < (1u << 30) ? p.count - off : (1u << 30));
        float *x = v.data() + off;
        if (p.k == ALLREDUCE) MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        else if (p.k == REDUCE) MPI_Reduce(me == p.root ? MPI_IN_PLACE : x, x, n, MPI_FLOAT, MPI_SUM, p.root, MPI_COMM_WORLD);
        else MPI_Bcast(x, n, MPI_FLOAT, p.root, MPI_COMM_WORLD);  // bf16 widened exactly, narrowed back exactly
    }
    if (p.k == REDUCE && me != p.root) return ncclSuccess;  // NCCL leaves a non-root's recvbuff alone
    if (p.op == ncclAvg && p.k != BROADCAST)
        for (float &x : v) x /= (float)p.comm->nranks;
    if (p.type == ncclFloat32) memcpy(p.recv, v.data(), p.count * 4);
    else
        for (size_t i = 0; i < p.count; i++) ((uint16_t *)p.recv)[i] = f32_to_bf16(v[i]);
    return ncclSuccess;
}

// checks one call's arguments and runs it now, or queues it inside a group
ncclResult_t submit(pending p) {
    const char *name = kind_name[p.k];
    if (!p.comm) return fail(ncclInvalidArgument, "%s: no communicator", name);
    if (p.type != ncclFloat32 && p.type != ncclBfloat16)
        return fail(ncclInvalidArgument, "%s: the emulation knows float32 and bfloat16, not type %d", name, (int)p.type);
    if (p.k != BROADCAST && p.op != ncclSum && p.op != ncclAvg)
        return fail(ncclInvalidArgument, "%s: the emulation knows sum and avg, not op %d", name, (int)p.op);
    if (p.k != ALLREDUCE && (p.root < 0 || p.root >= p.comm->nranks))
        return fail(ncclInvalidArgument, "%s: root %d of %d ranks", name, p.root, p.comm->nranks);
    size_t bytes = p.count * (p.type == ncclFloat32 ? 4 : 2);
    bool reads = p.k != BROADCAST || p.comm->rank == p.root, writes = p.k != REDUCE || p.comm->rank == p.root;
    if (p.count && reads) emu_check_device_range(name, "sendbuff", p.send, bytes);
    if (p.count && writes) emu_check_device_range(name, "recvbuff", p.recv, bytes);
    if (g_depth) {
        g_group.push_back(p);
        return ncclSuccess;
    }
    return run(p);
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

// the emulator runs each call as it is made, after its stream's queued copies (CUDA_EMU_DEFER)
extern "C" void emu_stream_flush(cudaStream_t s);  // emu_runtime.cpp
ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    emu_stream_flush(stream);
    return submit({ALLREDUCE, 0, send, recv, count, type, op, comm});
}

ncclResult_t ncclReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op, int root,
                        ncclComm_t comm, cudaStream_t stream) {
    emu_stream_flush(stream);
    return submit({REDUCE, root, send, recv, count, type, op, comm});
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t type, int root, ncclComm_t comm,
                           cudaStream_t stream) {
    emu_stream_flush(stream);
    return submit({BROADCAST, root, send, recv, count, type, ncclSum, comm});
}
}
