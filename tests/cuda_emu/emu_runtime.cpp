// emu_runtime.cpp — the CUDA emulator's engine: the block scheduler (each thread on its own stack,
// switched at barriers, warp shuffles and WMMA collectives) and the CUDA runtime calls cameo
// makes, over host memory. Device allocations are registered, so copies check their direction
// and bounds, and fresh device memory is filled with NaN bytes (0xff) as unwritten memory would
// show garbage. One device: "emulated sm_90", 132 SMs, 227 KiB of opt-in shared memory per block
// (CUDA_EMU_CC's other capabilities: their own shared memory, as emu_smem_optin says).
// Environment: CUDA_EMU_REVERSE=1 runs the threads between barriers in reverse order (a missing
// barrier shows up in one order or the other); CUDA_EMU_SHUFFLE=SEED runs the warps of each
// round, and the warps a named barrier releases, in an order drawn from SEED (the same schedule for
// the same seed: interleavings neither fixed order makes, where a warpgroup runs tiles ahead of
// another; a cp.async lands at its issue or at its wait, drawn per copy);
// CUDA_EMU_DEFER=1 holds copies back in their
// streams (a missing event wait or sync shows up as data not yet there); CUDA_EMU_DEVICES=N
// devices, CUDA_EMU_CC their reported compute capabilities, CUDA_EMU_MEM the device's size.
#include "emu_device.h"
#include <assert.h>
#include <deque>
#include <map>
#include <mutex>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <vector>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1  // tell AddressSanitizer about each stack switch (a CAMEO_SANITIZE emulator build)
#endif

// ---------------------------------------------------------------------------------------------
// stacks and switching (x86-64 System V: the callee-saved registers; nothing here changes the
// floating-point control words, so they are not switched)
// ---------------------------------------------------------------------------------------------
extern "C" void emu_ctx_switch(void **save_sp, void *load_sp);
asm(R"(
.text
.globl emu_ctx_switch
.type emu_ctx_switch,@function
emu_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size emu_ctx_switch, .-emu_ctx_switch
.section .note.GNU-stack,"",@progbits
.text
)");

#define EMU_STACK (256 << 10)
#define EMU_MAX_THREADS 1024

enum { T_NEW, T_READY, T_WAIT_BLOCK, T_WAIT_WARP, T_WAIT_NAMED, T_DONE };

struct emu_fiber {
    char *stack;
    void *sp;
    int thread;  // the block thread it runs, -1 when free
    void *fake;  // AddressSanitizer's fake stack while switched out
};

uint3 emu_threadIdx, emu_blockIdx;
dim3 emu_blockDim, emu_gridDim;

static std::mutex g_launch_lock;
static const std::function<void()> *g_kernel;
static const char *g_kernel_name;
static void *g_sched_sp;
static emu_fiber g_fibers[EMU_MAX_THREADS];
static int g_state[EMU_MAX_THREADS], g_fiber_of[EMU_MAX_THREADS];
static int g_nthreads, g_cur = -1;
static bool g_reverse;
static uint64_t g_shuffle;  // CUDA_EMU_SHUFFLE's state (0: off); xorshift64
static unsigned shuffle_draw(unsigned n) {  // uniform-enough in 0..n-1
    g_shuffle ^= g_shuffle << 13, g_shuffle ^= g_shuffle >> 7, g_shuffle ^= g_shuffle << 17;
    return (unsigned)(g_shuffle % n);
}
static std::vector<unsigned char> g_dyn_smem;
static unsigned char g_slots[EMU_MAX_THREADS / 32][32][16];
// each warp's two banks of 1 KiB (emu_warp_scratch: exchanges, mma fragments, WMMA products),
// used in turn by each thread (g_xpar): a lane writes a bank again only after the barrier of the
// exchange in between, which every lane reaches after its reads of this one — so one barrier an
// exchange, not two
alignas(16) static unsigned char g_bank[2][EMU_MAX_THREADS / 32][1024];
static unsigned g_xpar[EMU_MAX_THREADS];
static uint3 g_idx[EMU_MAX_THREADS];  // each thread's threadIdx, computed once per launch

static void emu_fail(const char *fmt, const char *a, long b = 0, long c = 0) {
    fprintf(stderr, "cuda emulator: ");
    fprintf(stderr, fmt, a, b, c);
    fprintf(stderr, "\n");
    abort();
}

static void set_indices(int t) { emu_threadIdx = g_idx[t]; }

#ifdef EMU_ASAN
static const void *g_sched_bottom;
static size_t g_sched_size;
static void *g_sched_fake;
#endif

// scheduler -> fiber f, returning when a thread of f waits or finishes
static void to_fiber(emu_fiber *f) {
#ifdef EMU_ASAN
    __sanitizer_start_switch_fiber(&g_sched_fake, f->stack, EMU_STACK);
#endif
    emu_ctx_switch(&g_sched_sp, f->sp);
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(g_sched_fake, NULL, NULL);
#endif
}

// fiber f -> scheduler; done: f's stack is started afresh for its next thread
static void to_sched(emu_fiber *f, bool done) {
#ifdef EMU_ASAN
    __sanitizer_start_switch_fiber(done ? NULL : &f->fake, g_sched_bottom, g_sched_size);
#else
    (void)done;
#endif
    emu_ctx_switch(&f->sp, g_sched_sp);
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(f->fake, NULL, NULL);
#endif
}

// a fiber runs one block thread to its end (fiber_init restarts it for the next)
static void fiber_main() {
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(NULL, &g_sched_bottom, &g_sched_size);
#endif
    emu_fiber *f = &g_fibers[g_fiber_of[g_cur]];
    (*g_kernel)();
    g_state[g_cur] = T_DONE;
    f->thread = -1;
    to_sched(f, true);  // never resumed
    abort();
}

static void fiber_init(emu_fiber *f) {
    if (!f->stack) {
        f->stack = (char *)mmap(NULL, EMU_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (f->stack == MAP_FAILED) emu_fail("%s", "mmap of a thread stack failed");
        mprotect(f->stack, 4096, PROT_NONE);  // overflow guard
    }
    // the tops staggered by 2112 bytes a fiber (mod 128 KiB): stacks 256 KiB apart would put every
    // fiber's hot frames in the same cache sets, and each switch would miss in L1 and L2
    size_t fi = (size_t)(f - g_fibers), skew = fi * 2112 % (128 << 10);
    uint64_t *top = (uint64_t *)(f->stack + EMU_STACK - skew);
    *--top = 0;                          // fiber_main's return address (it never returns)
    *--top = (uint64_t)(void *)fiber_main;  // where the first switch "returns" to
    for (int i = 0; i < 6; i++) *--top = 0;  // rbp rbx r12..r15
    f->sp = top;
}

static int warp_of(int t) { return t / 32; }

// switch from the running thread to the scheduler; returns when the thread may go on
static void wait_as(int state) {
    int t = g_cur;
    if (t < 0) emu_fail("%s: a barrier outside a kernel", g_kernel_name ? g_kernel_name : "?");
    g_state[t] = state;
    emu_fiber *f = &g_fibers[g_fiber_of[t]];
    to_sched(f, false);
    set_indices(t);  // the scheduler ran other threads meanwhile
}

// named barriers (bar.sync / bar.arrive id, n): arrivals so far in the current phase and the
// phase's thread count (0: no arrival yet); a phase completes at its n-th arrival, releasing the
// threads that wait at it. Counted per thread (the hardware counts warps: the kernels arrive with
// whole warps, which the divergence checks below keep them to).
#define EMU_NAMED 16
static int g_nb_count[EMU_NAMED], g_nb_want[EMU_NAMED], g_nb_of[EMU_MAX_THREADS];
static std::vector<int> g_released;  // warps a completed phase released, for the scheduler to run
// one arrival at id; true where it completed the phase (its waiters released)
static bool named_arrive(int id, int n) {
    if (id < 1 || id >= EMU_NAMED || n <= 0 || n > g_nthreads || n % 32)
        emu_fail("%s: bar id %ld, %ld threads (ids 1..15, a multiple of 32 up to the block's)", g_kernel_name, id, n);
    if (g_nb_want[id] && g_nb_want[id] != n)
        emu_fail("%s: bar id %ld: arrivals for %ld threads in a phase that counts another number", g_kernel_name, id, n);
    g_nb_want[id] = n;
    if (++g_nb_count[id] < n) return false;
    const int me = warp_of(g_cur);
    for (int t = 0; t < g_nthreads; t++)
        if (g_state[t] == T_WAIT_NAMED && g_nb_of[t] == id) {
            g_state[t] = T_READY;
            const int w = warp_of(t);
            if (w != me && (g_released.empty() || g_released.back() != w)) g_released.push_back(w);
        }
    g_nb_count[id] = g_nb_want[id] = 0;
    return true;
}
// the thread that completed a phase steps aside while the warps it released run (run_warp)
static void step_aside(void) {
    if (!g_released.empty()) wait_as(T_READY);
}
void emu_named_arrive(int id, int n) {
    if (named_arrive(id, n)) step_aside();
}
void emu_named_sync(int id, int n) {
    if (named_arrive(id, n)) {
        step_aside();
        return;
    }
    g_nb_of[g_cur] = id;
    wait_as(T_WAIT_NAMED);
}

void emu_block_barrier(void) { wait_as(T_WAIT_BLOCK); }
void emu_warp_barrier(void) { wait_as(T_WAIT_WARP); }
unsigned emu_lane(void) { return (unsigned)(g_cur % 32); }
void *emu_warp_slots(void) { return g_slots[warp_of(g_cur)]; }
void *emu_warp_scratch(void) { return g_bank[g_xpar[g_cur]++ & 1][warp_of(g_cur)]; }
const void *emu_warp_exchange(const void *v, size_t n) {
    unsigned char(*slot)[16] = (unsigned char(*)[16])emu_warp_scratch();  // 16 bytes a lane
    memcpy(slot[g_cur % 32], v, n);
    emu_warp_barrier();
    return slot;
}
void *emu_dynamic_smem(void) { return g_dyn_smem.data(); }
int emu_first_live_lane(void) {
    int w0 = warp_of(g_cur) * 32;
    for (int l = 0; l < 32 && w0 + l < g_nthreads; l++)
        if (g_state[w0 + l] != T_DONE) return l;
    return 0;
}
unsigned __ballot_sync(unsigned mask, int pred) {
    (void)mask;
    int *slot = (int *)emu_warp_slots();  // 32 x 16 bytes: 4 ints per lane, the first used
    slot[emu_lane() * 4] = pred != 0;
    emu_warp_barrier();
    unsigned r = 0;
    int w0 = warp_of(g_cur) * 32;
    for (int l = 0; l < 32 && w0 + l < g_nthreads; l++)
        if (g_state[w0 + l] != T_DONE && slot[l * 4]) r |= 1u << l;
    emu_warp_barrier();
    return r;
}

// mma.m16n8k16 (bf16): every lane posts its A and B fragments (one exchange, in the warp scratch) and computes its own
// four elements of C + A B, summed in f32 over k in order, reading A (16x16) and B (16x8) from the
// lanes that hold them by the PTX ISA's layouts (g = lane / 4, t = lane % 4; A reg j: row g +
// 8 (j & 1), cols 2t + 8 (j >> 1) + {0,1}; B reg j: rows 2t + 8 j + {0,1}, col g; C i: row g +
// 8 (i >> 1), col 2t + (i & 1); the lower half of a register is the lower column / row)
struct emu_mma_frag { uint32_t a[4], b[2]; };
static_assert(32 * sizeof(emu_mma_frag) <= sizeof g_bank[0][0], "the warp's mma fragments exceed its scratch");
static float bf_lo(uint32_t r) { return __uint_as_float(r << 16); }
static float bf_hi(uint32_t r) { return __uint_as_float(r & 0xffff0000u); }
// cp.async: each thread's copies in flight, tagged with the number of groups it had committed
// when it issued them. In the forward order a copy lands when a wait covers its group (a read of
// the destination before that sees the old bytes); in the reverse order it lands when issued (a
// refill that does not wait for the other warps to finish reading a buffer clobbers it). Between
// the two, a missing wait and a missing barrier both change results.
struct emu_cp { void *dst; const void *src; int bytes, src_bytes; unsigned group; };
static std::vector<emu_cp> g_cp[EMU_MAX_THREADS];
static unsigned g_cp_groups[EMU_MAX_THREADS];

static void cp_land(const emu_cp &c) {
    if (c.src_bytes) memcpy(c.dst, c.src, (size_t)c.src_bytes);
    memset((char *)c.dst + c.src_bytes, 0, (size_t)(c.bytes - c.src_bytes));
}

void emu_cp_async(void *dst, const void *src, int bytes, int src_bytes) {
    if ((bytes != 4 && bytes != 8 && bytes != 16) || src_bytes < 0 || src_bytes > bytes ||
        ((uintptr_t)dst % (uintptr_t)bytes) || (src_bytes && ((uintptr_t)src % (uintptr_t)bytes))) {
        fprintf(stderr, "cuda emulator: %s: cp.async of %d bytes (%d from the source) from %p to %p: size or alignment "
                        "not allowed (thread %d)\n", g_kernel_name, bytes, src_bytes, src, dst, g_cur);
        abort();
    }
    emu_cp c = {dst, src, bytes, src_bytes, g_cp_groups[g_cur]};
    if (g_reverse || (g_shuffle && shuffle_draw(2))) cp_land(c);
    else g_cp[g_cur].push_back(c);
}
void emu_cp_async_commit(void) { g_cp_groups[g_cur]++; }
void emu_cp_async_wait(int n) {  // every group but the n most recently committed has landed
    std::vector<emu_cp> &v = g_cp[g_cur];
    unsigned lim = g_cp_groups[g_cur] >= (unsigned)n ? g_cp_groups[g_cur] - (unsigned)n : 0;
    size_t keep = 0;
    for (size_t i = 0; i < v.size(); i++)
        if (v[i].group < lim) cp_land(v[i]);
        else v[keep++] = v[i];
    v.resize(keep);
}

// wgmma: each thread's products in flight, tagged with its commit-group count at issue
struct emu_wg { float *d; int n; uint32_t a[4]; uint64_t desc; int scale_d, tnsp; unsigned group; bool a_smem; uint64_t desc_a; int tnsp_a; };
static std::vector<emu_wg> g_wg[EMU_MAX_THREADS];
static unsigned g_wg_groups[EMU_MAX_THREADS];
static uint32_t g_wg_a[EMU_MAX_THREADS / 32][32][4];

uint32_t emu_smem_addr(const void *p) {
    const unsigned char *b = g_dyn_smem.data(), *q = (const unsigned char *)p;
    if (q < b || q >= b + g_dyn_smem.size()) {
        fprintf(stderr, "cuda emulator: %s: %p is not in the dynamic shared memory (thread %d)\n", g_kernel_name, p, g_cur);
        abort();
    }
    return (uint32_t)(q - b);
}
void emu_wgmma_bf16(float *d, int n, const uint32_t *a, uint64_t desc, int scale_d, int tnsp_b) {
    if (n < 8 || n > 256 || n % 8) {
        fprintf(stderr, "cuda emulator: %s: wgmma with N = %d (8..256, a multiple of 8)\n", g_kernel_name, n);
        abort();
    }
    emu_wg w = {d, n, {a[0], a[1], a[2], a[3]}, desc, scale_d, tnsp_b, g_wg_groups[g_cur], false, 0, 0};
    g_wg[g_cur].push_back(w);
}
void emu_wgmma_bf16_ss(float *d, int n, uint64_t desc_a, uint64_t desc_b, int scale_d, int tnsp_a, int tnsp_b) {
    const uint32_t none[4] = {0, 0, 0, 0};
    emu_wgmma_bf16(d, n, none, desc_b, scale_d, tnsp_b);
    g_wg[g_cur].back().a_smem = true;
    g_wg[g_cur].back().desc_a = desc_a;
    g_wg[g_cur].back().tnsp_a = tnsp_a;
}
void emu_wgmma_commit(void) { g_wg_groups[g_cur]++; }
// element (k, col) of B through the descriptor: K-major B[k][n] at row n (128-byte rows, 8-row
// groups SBO apart), bytes 2k; MN-major at column chunk n / 64 (LBO apart), row k (128-byte rows,
// 8-row groups SBO apart); the 128-byte swizzle XORs address bits 4-6 with bits 7-9
struct wg_dec { uint32_t start, lbo, sbo; };  // a descriptor's fields, in bytes
static wg_dec wg_decode(uint64_t desc) {
    uint32_t base = (uint32_t)((desc >> 49) & 7), swz = (uint32_t)(desc >> 62);
    if (swz != 1 || base != 0) {
        fprintf(stderr, "cuda emulator: %s: wgmma descriptor with swizzle mode %u, base offset %u: only the 128-byte "
                        "swizzle from a 1024-byte-aligned pattern is emulated\n", g_kernel_name, swz, base);
        abort();
    }
    return {(uint32_t)(desc & 0x3fff) << 4, (uint32_t)((desc >> 16) & 0x3fff) << 4, (uint32_t)((desc >> 32) & 0x3fff) << 4};
}
static float wg_b(const wg_dec &d, int tnsp, int k, int col) {
    const uint32_t start = d.start, lbo = d.lbo, sbo = d.sbo;
    uint32_t off = tnsp ? start + 2u * (uint32_t)(col % 64) + (uint32_t)(col / 64) * lbo + 128u * (uint32_t)(k % 8) + (uint32_t)(k / 8) * sbo
                        : start + 128u * (uint32_t)(col % 8) + (uint32_t)(col / 8) * sbo + 2u * (uint32_t)k;
    off ^= ((off >> 7) & 7u) << 4;
    if ((size_t)off + 2 > g_dyn_smem.size()) {
        fprintf(stderr, "cuda emulator: %s: wgmma reads shared byte %u of %zu (thread %d)\n", g_kernel_name, off,
                g_dyn_smem.size(), g_cur);
        abort();
    }
    uint16_t v;
    memcpy(&v, g_dyn_smem.data() + off, 2);
    return __uint_as_float((uint32_t)v << 16);
}
// every product but those of the n most recent commit groups runs now, in issue order: the warp's
// lanes post their A registers op by op, each lane computes its own part of D
void emu_wgmma_wait(int n) {
    std::vector<emu_wg> &v = g_wg[g_cur];
    unsigned lim = g_wg_groups[g_cur] >= (unsigned)n ? g_wg_groups[g_cur] - (unsigned)n : 0;
    size_t run = 0;
    while (run < v.size() && v[run].group < lim) run++;
    int *cnt = (int *)emu_warp_slots();
    const int lane = g_cur % 32, w = warp_of(g_cur);
    cnt[lane * 4] = (int)run;
    emu_warp_barrier();
    for (int l = 0; l < 32 && w * 32 + l < g_nthreads; l++)
        if (cnt[l * 4] != (int)run) {
            fprintf(stderr, "cuda emulator: %s: wgmma.wait_group with %d products due in lane %d, %zu in lane %d "
                            "(the warpgroup must issue the same wgmma)\n", g_kernel_name, cnt[l * 4], l, run, lane);
            abort();
        }
    emu_warp_barrier();
    const int g = lane >> 2, t = lane & 3;
    for (size_t o = 0; o < run; o++) {
        memcpy(g_wg_a[w][lane], v[o].a, sizeof v[o].a);
        emu_warp_barrier();
        float A[2][16];  // this lane's rows g and g + 8 of the warp's 16
        const emu_wg &op = v[o];
        const wg_dec db = wg_decode(op.desc), da = op.a_smem ? wg_decode(op.desc_a) : wg_dec{};
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 16; k++) {
                if (op.a_smem) {  // A through its descriptor: this warp's rows 16 (w % 4).. of the group's 64, read
                                  // as B's columns (K-major, or MN-major when transposed: M in B's N place)
                    A[h][k] = wg_b(da, op.tnsp_a, k, 16 * (w % 4) + g + 8 * h);
                } else {  // row g + 8h, col k: lane 4g + (k % 8) / 2, register h + 2 (k / 8), high half for odd k
                    const uint32_t x = g_wg_a[w][4 * g + ((k & 7) >> 1)][h + 2 * (k >> 3)];
                    A[h][k] = (k & 1) ? bf_hi(x) : bf_lo(x);
                }
            }
        emu_warp_barrier();  // every lane has read the others' registers
        for (int j = 0; j < op.n / 8; j++)
            for (int cc = 0; cc < 2; cc++) {  // d[4j + i]: row g + 8 (i >> 1), col 8j + 2t + (i & 1)
                const int col = 8 * j + 2 * t + cc;
                float b[16];
                for (int k = 0; k < 16; k++) b[k] = wg_b(db, op.tnsp, k, col);
                for (int h = 0; h < 2; h++) {
                    float s = op.scale_d ? op.d[4 * j + 2 * h + cc] : 0.f;
                    for (int k = 0; k < 16; k++) s += A[h][k] * b[k];
                    op.d[4 * j + 2 * h + cc] = s;
                }
            }
    }
    v.erase(v.begin(), v.begin() + (long)run);
}

void emu_ldmatrix_misaligned(const void *p) {
    fprintf(stderr, "cuda emulator: ldmatrix: row address %p is not 16-byte aligned (thread %d)\n", p, g_cur);
    abort();
}

void emu_mma_m16n8k16_bf16(float *c, const uint32_t *a, const uint32_t *b) {
    const int lane = g_cur % 32;
    emu_mma_frag *x = (emu_mma_frag *)emu_warp_scratch();
    memcpy(x[lane].a, a, sizeof x[lane].a);
    memcpy(x[lane].b, b, sizeof x[lane].b);
    emu_warp_barrier();
    const int g = lane >> 2, t = lane & 3;
    float A[2][16], B[2][16];  // rows g, g + 8 of A; columns 2t, 2t + 1 of B
    for (int k = 0; k < 16; k++) {
        const int q = (k & 7) >> 1;  // A's column k / B's row k: in lane 4 (row / column) + q
        for (int h = 0; h < 2; h++) {
            const uint32_t av = x[4 * g + q].a[h + 2 * (k >> 3)], bv = x[4 * (2 * t + h) + q].b[k >> 3];
            A[h][k] = (k & 1) ? bf_hi(av) : bf_lo(av);
            B[h][k] = (k & 1) ? bf_hi(bv) : bf_lo(bv);
        }
    }
    for (int i = 0; i < 4; i++) {
        float s = c[i];
        for (int k = 0; k < 16; k++) s += A[i >> 1][k] * B[i & 1][k];
        c[i] = s;
    }
}

// a warp's lanes until each waits at a barrier or has finished (through its own warp
// collectives); lanes that a named barrier releases meanwhile run too. A named barrier's phase
// that completes releases other warps' threads: the thread that completed it steps aside
// (emu_named_*), and the released warps run first (nested here, a warp not already running), so
// that a stage handed over too early is overwritten while its reader's product is still pending.
static int g_done, g_nfree, g_free_list[EMU_MAX_THREADS];
static bool g_running[EMU_MAX_THREADS / 32];
static void run_warp(int w) {
    const int n = g_nthreads, lo = w * 32, hi = lo + 32 < n ? lo + 32 : n;
    g_running[w] = true;
    for (;;) {
        for (int t = lo; t < hi; t++) {
            if (g_state[t] != T_NEW && g_state[t] != T_READY) continue;
            if (g_state[t] == T_NEW) {
                int fi = g_free_list[--g_nfree];
                fiber_init(&g_fibers[fi]);
                g_fibers[fi].thread = t;
                g_fiber_of[t] = fi;
            }
            g_state[t] = T_READY;
            g_cur = t;
            set_indices(t);
            to_fiber(&g_fibers[g_fiber_of[t]]);
            g_cur = -1;
            if (g_state[t] == T_DONE) g_free_list[g_nfree++] = g_fiber_of[t], g_done++;
            while (!g_released.empty()) {  // the last released first (CUDA_EMU_SHUFFLE: any)
                const size_t i = g_shuffle ? shuffle_draw((unsigned)g_released.size()) : g_released.size() - 1;
                int w2 = g_released[i];
                g_released.erase(g_released.begin() + (long)i);
                if (!g_running[w2]) run_warp(w2);
            }
        }
        int live = 0, at_warp = 0, ready = 0;
        for (int t = lo; t < hi; t++)
            live += g_state[t] != T_DONE, at_warp += g_state[t] == T_WAIT_WARP, ready += g_state[t] == T_READY;
        if (ready) continue;  // lanes a named barrier released (or that stepped aside) meanwhile
        if (!at_warp) break;  // the warp waits at a barrier (or has finished)
        if (at_warp != live) {
            fprintf(stderr, "cuda emulator: %s, block (%u,%u,%u), warp %d: %d lanes wait at a warp collective, %d at "
                            "__syncthreads (divergent barrier)\n",
                    g_kernel_name, emu_blockIdx.x, emu_blockIdx.y, emu_blockIdx.z, w, at_warp, live - at_warp);
            abort();
        }
        for (int t = lo; t < hi; t++)
            if (g_state[t] == T_WAIT_WARP) g_state[t] = T_READY;
    }
    g_running[w] = false;
}

// runs one block, a warp at a time: each warp goes as far as it can before the next starts, so
// warps drift as far apart as a barrier allows and a missing __syncthreads shows up as a read of
// another warp's unwritten data
static void run_block() {
    int n = g_nthreads, nwarps = (n + 31) / 32;
    for (int t = 0; t < n; t++) g_cp[t].clear(), g_cp_groups[t] = 0, g_wg[t].clear(), g_wg_groups[t] = 0, g_xpar[t] = 0;
    for (int t = 0; t < n; t++) g_state[t] = T_NEW, g_fiber_of[t] = -1;
    g_nfree = 0;
    for (int i = n - 1; i >= 0; i--) g_fibers[i].thread = -1, g_free_list[g_nfree++] = i;
    for (int i = 0; i < EMU_NAMED; i++) g_nb_count[i] = g_nb_want[i] = 0;
    g_released.clear();
    g_done = 0;
    const int &done = g_done;
    while (done < n) {
        int order[EMU_MAX_THREADS / 32];
        for (int k = 0; k < nwarps; k++) order[k] = g_reverse ? nwarps - 1 - k : k;
        for (int k = nwarps - 1; g_shuffle && k > 0; k--) {  // Fisher-Yates
            const int j = (int)shuffle_draw((unsigned)k + 1), x = order[k];
            order[k] = order[j], order[j] = x;
        }
        for (int k = 0; k < nwarps; k++) run_warp(order[k]);
        if (done == n) break;
        int ready = 0, named = 0;
        for (int t = 0; t < n; t++) ready += g_state[t] == T_READY, named += g_state[t] == T_WAIT_NAMED;
        if (ready) continue;  // released by a named barrier after their warp's turn
        if (named) {  // nothing can arrive: a named barrier short of threads (a hang on a GPU)
            for (int t = 0; t < n; t++)
                if (g_state[t] == T_WAIT_NAMED) {
                    fprintf(stderr, "cuda emulator: %s, block (%u,%u,%u): deadlock: thread %d waits at bar %d (%d of %d "
                                    "arrived), %d threads at __syncthreads\n",
                            g_kernel_name, emu_blockIdx.x, emu_blockIdx.y, emu_blockIdx.z, t, g_nb_of[t],
                            g_nb_count[g_nb_of[t]], g_nb_want[g_nb_of[t]], n - done - named);
                    abort();
                }
        }
        for (int t = 0; t < n; t++)  // every live thread waits at __syncthreads: release them
            if (g_state[t] == T_WAIT_BLOCK) g_state[t] = T_READY;
    }
    for (int i = 1; i < EMU_NAMED; i++)
        if (g_nb_count[i]) {
            fprintf(stderr, "cuda emulator: %s, block (%u,%u,%u): ended with %d of %d arrivals at bar %d\n", g_kernel_name,
                    emu_blockIdx.x, emu_blockIdx.y, emu_blockIdx.z, g_nb_count[i], g_nb_want[i], i);
            abort();
        }
    for (int t = 0; t < n; t++)
        if (!g_wg[t].empty()) {
            fprintf(stderr, "cuda emulator: %s, block (%u,%u,%u), thread %d: ended with %zu wgmma never waited for\n",
                    g_kernel_name, emu_blockIdx.x, emu_blockIdx.y, emu_blockIdx.z, t, g_wg[t].size());
            abort();
        }
    for (int t = 0; t < n; t++)
        if (!g_cp[t].empty()) {
            fprintf(stderr, "cuda emulator: %s, block (%u,%u,%u), thread %d: ended with %zu cp.async copies never waited for\n",
                    g_kernel_name, emu_blockIdx.x, emu_blockIdx.y, emu_blockIdx.z, t, g_cp[t].size());
            abort();
        }
}

// ---------------------------------------------------------------------------------------------
// launches
// ---------------------------------------------------------------------------------------------
static cudaError_t g_last_error = cudaSuccess;
static std::map<const void *, int> g_max_dyn_smem;  // cudaFuncAttributeMaxDynamicSharedMemorySize
// the calling thread's current device (cudaSetDevice): per host thread, 0 in a new one, as in CUDA
static thread_local int g_cur_dev;
static const size_t EMU_SMEM_DEFAULT = 49152;
extern "C" {
static size_t emu_smem_optin(int d);  // the reported device's opt-in maximum (below)
}

// a launch's configuration against the device: false (and the launch error set) where CUDA refuses it
static bool launch_ok(const void *kernel, const char *name, dim3 grid, dim3 block, size_t smem) {
    unsigned long nt = (unsigned long)block.x * block.y * block.z;
    size_t limit = EMU_SMEM_DEFAULT;
    auto it = g_max_dyn_smem.find(kernel);
    if (it != g_max_dyn_smem.end()) limit = (size_t)it->second;
    const size_t optin = emu_smem_optin(g_cur_dev);
    if (limit > optin) limit = optin;  // an attribute set for a larger device (CUDA_EMU_CC per device)
    if (nt == 0 || nt > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535) {
        fprintf(stderr, "cuda emulator: %s: invalid launch (grid %u,%u,%u, block %u,%u,%u)\n", name, grid.x, grid.y,
                grid.z, block.x, block.y, block.z);
        g_last_error = cudaErrorInvalidConfiguration;
        return false;
    }
    if (smem > limit) {
        fprintf(stderr, "cuda emulator: %s: %zu bytes of dynamic shared memory, the kernel's limit is %zu "
                        "(cudaFuncSetAttribute MaxDynamicSharedMemorySize; the device's opt-in maximum %zu)\n",
                name, smem, limit, optin);
        g_last_error = cudaErrorInvalidValue;
        return false;
    }
    return true;
}

void emu_launch_impl(const void *kernel, const char *name, dim3 grid, dim3 block, size_t smem,
                     const std::function<void()> &run) {
    std::lock_guard<std::mutex> lock(g_launch_lock);
    if (!launch_ok(kernel, name, grid, block, smem)) return;
    unsigned long nt = (unsigned long)block.x * block.y * block.z;
    g_reverse = getenv("CUDA_EMU_REVERSE") && atoi(getenv("CUDA_EMU_REVERSE"));
    if (const char *sh = getenv("CUDA_EMU_SHUFFLE"))  // each launch from the seed: its schedule is the seed's
        g_shuffle = *sh ? 0x9e3779b97f4a7c15ull * (strtoull(sh, NULL, 10) + 1) : 0;
    g_kernel = &run;
    g_kernel_name = name;
    g_nthreads = (int)nt;
    emu_blockDim = block;
    emu_gridDim = grid;
    for (unsigned long t = 0; t < nt; t++)
        g_idx[t] = make_uint3((unsigned)(t % block.x), (unsigned)(t / block.x % block.y), (unsigned)(t / (block.x * block.y)));
    g_dyn_smem.assign(smem ? smem : 16, 0xff);
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                emu_blockIdx.x = x, emu_blockIdx.y = y, emu_blockIdx.z = z;
                if (smem) memset(g_dyn_smem.data(), 0xff, smem);  // unwritten shared memory reads as NaN
                run_block();
            }
    g_kernel = NULL;
}

// ---------------------------------------------------------------------------------------------
// memory: every device and pinned allocation registered (start -> size)
// ---------------------------------------------------------------------------------------------
static std::mutex g_mem_lock;
static std::map<uintptr_t, size_t> g_dev, g_pinned;
static std::map<uintptr_t, int> g_dev_owner;  // device allocation -> the device current at cudaMalloc
static size_t g_dev_bytes;
// the device's size: 80 GiB, or CUDA_EMU_MEM bytes (suffix K, M or G) to test out-of-memory paths
static size_t emu_total(void) {
    static size_t total;
    if (total) return total;
    const char *v = getenv("CUDA_EMU_MEM");
    char *end = NULL;
    double x = v && *v ? strtod(v, &end) : 0;
    if (x > 0) {
        int sh = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20 : *end == 'G' || *end == 'g' ? 30 : 0;
        total = (size_t)(x * (double)(1ull << sh));
    }
    if (!total) total = 80ull << 30;
    return total;
}
#define EMU_TOTAL emu_total()

static bool find_in(const std::map<uintptr_t, size_t> &m, const void *p, size_t n, uintptr_t *base, size_t *size) {
    uintptr_t a = (uintptr_t)p;
    auto it = m.upper_bound(a);
    if (it == m.begin()) return false;
    --it;
    if (a < it->first || a >= it->first + it->second) return false;
    if (base) *base = it->first;
    if (size) *size = it->second;
    (void)n;
    return true;
}

static void check_range(const char *call, const char *what, const void *p, size_t n, bool device) {
    std::lock_guard<std::mutex> lock(g_mem_lock);
    uintptr_t base;
    size_t size;
    bool in_dev = find_in(g_dev, p, n, &base, &size);
    if (device && !in_dev) {
        fprintf(stderr, "cuda emulator: %s: %s %p is not device memory\n", call, what, p);
        abort();
    }
    if (device && (uintptr_t)p + n > base + size) {
        fprintf(stderr, "cuda emulator: %s: %s %p + %zu bytes runs past its allocation (%zu bytes at %p)\n", call, what, p, n,
                size, (void *)base);
        abort();
    }
    if (!device && in_dev) {
        fprintf(stderr, "cuda emulator: %s: %s %p is device memory, host memory was expected\n", call, what, p);
        abort();
    }
}

// ---------------------------------------------------------------------------------------------
// streams. Kernels (and cuBLAS, NCCL, memsets) run when launched, after their stream's queue.
// Under CUDA_EMU_DEFER=1 copies do not: each waits in its stream's queue, with the event waits
// (cudaStreamWaitEvent) queued beside them, until something needs it done — a launch on that
// stream, a synchronisation, or a wait on an event recorded after it — then the queue runs in
// order, a wait first running the other stream up to its event. One legal schedule of a GPU: a
// copy read before its wait, or a pinned buffer refilled before its DMA's event, gives wrong data.
// (Pageable sources are staged when queued, pageable destinations copied at once, as CUDA does.)
// ---------------------------------------------------------------------------------------------
struct emu_stream;
struct emu_op {
    void *dst;  // a copy; NULL: a wait for `other` up to its op `seq`, or the launch `run`
    const void *src;
    size_t n;
    std::vector<unsigned char> staged;  // a pageable source's bytes at the call
    emu_stream *other;
    uint64_t seq;
    std::function<void()> run;  // a deferred launch (its arguments copied at the call)
};
struct emu_stream {
    std::deque<emu_op> q;
    uint64_t queued = 0, done = 0;  // ops ever queued / run
};
static emu_stream g_null_stream;            // stream 0
static std::vector<emu_stream *> g_streams;  // every created one
static std::recursive_mutex g_q_lock;
// CUDA_EMU_DEFER: 0 / unset off; 1 (any other value) on; 2 on, but kernels on every created stream
// after the first (the compute stream: the side streams) run at their launch, after their own
// queue — so a side stream that does not wait for its parent reads what the parent has queued but
// not yet run (a fork without its event wait), where mode 1 shows a missing join instead
static int emu_defer_level(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("CUDA_EMU_DEFER");
        v = !(e && *e && strcmp(e, "0")) ? 0 : !strcmp(e, "2") ? 2 : 1;
    }
    return v;
}
static bool emu_defer(void) { return emu_defer_level() > 0; }
static emu_stream *stream_of(cudaStream_t s) { return s ? (emu_stream *)s : &g_null_stream; }
// runs st's queue up to (not past) its op `upto`
static void run_to(emu_stream *st, uint64_t upto) {
    std::lock_guard<std::recursive_mutex> lock(g_q_lock);
    while (st->done < upto && !st->q.empty()) {
        emu_op op = std::move(st->q.front());
        st->q.pop_front();
        st->done++;
        if (op.run) op.run();
        else if (op.dst) memmove(op.dst, op.staged.empty() ? op.src : op.staged.data(), op.n);
        else run_to(op.other, op.seq);
    }
}
static void run_all(void) {
    std::lock_guard<std::recursive_mutex> lock(g_q_lock);
    run_to(&g_null_stream, g_null_stream.queued);
    for (emu_stream *st : g_streams) run_to(st, st->queued);
}
static void enqueue(emu_stream *st, emu_op &&op) {
    std::lock_guard<std::recursive_mutex> lock(g_q_lock);
    st->q.push_back(std::move(op));
    st->queued++;
}
static bool is_pinned(const void *p) {
    std::lock_guard<std::mutex> lock(g_mem_lock);
    return find_in(g_pinned, p, 1, NULL, NULL);
}
// CUDA_EMU_DEFER=1: a kernel launched on a created stream waits in that stream's queue like the
// copies (its configuration checked at the call, as CUDA does), so work on another stream runs
// before it unless an event wait orders them: a side stream's kernel that its consumer does not
// wait for is still unrun when the consumer reads (tests/cuda: the attention's side streams)
bool emu_launch_deferred(const void *kernel, const char *name, dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                         const std::function<void()> &run) {
    if (!s || !emu_defer()) return false;
    if (emu_defer_level() == 2) {
        std::lock_guard<std::recursive_mutex> lock(g_q_lock);
        if (g_streams.empty() || g_streams[0] != (emu_stream *)s) return false;  // a side stream: at once
    }
    {
        std::lock_guard<std::mutex> lock(g_launch_lock);
        if (!launch_ok(kernel, name, grid, block, smem)) return true;
    }
    emu_op op{NULL, NULL, 0, {}, NULL, 0, {}};
    op.run = [=]() { emu_launch_impl(kernel, name, grid, block, smem, run); };
    enqueue(stream_of(s), std::move(op));
    return true;
}

// before a launch on s (emu_device.h, emu_blas.cpp, emu_nccl.cpp): s's queued work first
extern "C" void emu_stream_flush(cudaStream_t s) {
    emu_stream *st = stream_of(s);
    run_to(st, st->queued);
}

// for tests/cuda_emu/emu_nccl.cpp: stops unless [p, p + n) lies in one device allocation
extern "C" void emu_check_device_range(const char *call, const char *what, const void *p, size_t n) {
    check_range(call, what, p, n, true);
}

extern "C" {
cudaError_t cudaMalloc(void **p, size_t n) {
    *p = NULL;
    {
        std::lock_guard<std::mutex> lock(g_mem_lock);
        if (g_dev_bytes + n > EMU_TOTAL) return g_last_error = cudaErrorMemoryAllocation;
        g_dev_bytes += n;  // reserved now, so two threads cannot both take the last bytes
    }
    void *q = NULL;  // exactly n bytes: under AddressSanitizer a kernel's first byte past the end is caught
    if (posix_memalign(&q, 256, n ? n : 1)) {
        std::lock_guard<std::mutex> lock(g_mem_lock);
        g_dev_bytes -= n;
        return g_last_error = cudaErrorMemoryAllocation;
    }
    memset(q, 0xff, n);
    std::lock_guard<std::mutex> lock(g_mem_lock);
    g_dev[(uintptr_t)q] = n;
    g_dev_owner[(uintptr_t)q] = g_cur_dev;
    *p = q;
    return cudaSuccess;
}
// the allocation at p given back (the caller has ordered it after its users)
static void dev_release(const char *call, void *p) {
    std::lock_guard<std::mutex> lock(g_mem_lock);
    auto it = g_dev.find((uintptr_t)p);
    if (it == g_dev.end()) {
        fprintf(stderr, "cuda emulator: %s(%p): not a device allocation\n", call, p);
        abort();
    }
    g_dev_bytes -= it->second;
    g_dev.erase(it);
    g_dev_owner.erase((uintptr_t)p);
    free(p);
}
cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    run_all();  // cudaFree waits for the device
    dev_release("cudaFree", p);
    return cudaSuccess;
}
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t s) { (void)s; return cudaMalloc(p, n); }
// stream-ordered: under CUDA_EMU_DEFER the free waits in s's queue like a kernel, so work on another
// stream that s did not wait for (an unjoined side stream) runs after it, on freed memory — which
// the ASan tree reports, and the normal tree reads as whatever is there
cudaError_t cudaFreeAsync(void *p, cudaStream_t s) {
    if (!p) return cudaSuccess;
    if (emu_defer()) {
        {
            std::lock_guard<std::mutex> lock(g_mem_lock);
            if (!g_dev.count((uintptr_t)p)) {
                fprintf(stderr, "cuda emulator: cudaFreeAsync(%p): not a device allocation\n", p);
                abort();
            }
        }
        emu_op op{NULL, NULL, 0, {}, NULL, 0, {}};
        op.run = [p]() { dev_release("cudaFreeAsync", p); };
        enqueue(stream_of(s), std::move(op));
        return cudaSuccess;
    }
    emu_stream_flush(s);
    return cudaFree(p);
}
// the stream-ordered pool: the emulator's async allocations go straight to cudaMalloc, so there is
// nothing to trim (a handle that is never dereferenced)
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *mp, int dev) {
    (void)dev;
    *mp = (cudaMemPool_t)&g_dev;
    return cudaSuccess;
}
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t mp, size_t keep) {
    (void)mp, (void)keep;
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t n) {
    *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    std::lock_guard<std::mutex> lock(g_mem_lock);
    g_pinned[(uintptr_t)*p] = n;
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaHostAlloc(void **p, size_t n, unsigned flags) { (void)flags; return cudaMallocHost(p, n); }
cudaError_t cudaFreeHost(void *p) {
    run_all();
    std::lock_guard<std::mutex> lock(g_mem_lock);
    g_pinned.erase((uintptr_t)p);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *fr, size_t *tot) {
    std::lock_guard<std::mutex> lock(g_mem_lock);
    *tot = EMU_TOTAL;
    *fr = EMU_TOTAL - g_dev_bytes;
    return cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p) {
    memset(a, 0, sizeof *a);
    std::lock_guard<std::mutex> lock(g_mem_lock);
    uintptr_t base;
    if (find_in(g_dev, p, 1, &base, NULL))
        a->type = cudaMemoryTypeDevice, a->devicePointer = (void *)p, a->device = g_dev_owner[base];
    else if (find_in(g_pinned, p, 1, NULL, NULL)) a->type = cudaMemoryTypeHost, a->hostPointer = (void *)p;
    else a->type = cudaMemoryTypeUnregistered;
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
    (void)s;
    if (!n) return cudaSuccess;
    bool dd = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool sd = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind != cudaMemcpyDefault && kind != cudaMemcpyHostToHost) {
        check_range("cudaMemcpy", "dst", dst, n, dd);
        check_range("cudaMemcpy", "src", src, n, sd);
    }
    emu_stream *st = stream_of(s);
    if (emu_defer() && (kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice ||
                        (kind == cudaMemcpyDeviceToHost && is_pinned(dst)))) {
        emu_op op{dst, src, n, {}, NULL, 0, {}};
        if (kind == cudaMemcpyHostToDevice && !is_pinned(src))
            op.staged.assign((const unsigned char *)src, (const unsigned char *)src + n);
        enqueue(st, std::move(op));
        return cudaSuccess;
    }
    run_to(st, st->queued);  // to pageable memory: done on return, after the stream's work
    memmove(dst, src, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    run_all();  // the legacy stream: after the device's work, done on return
    cudaError_t e = cudaMemcpyAsync(dst, src, n, kind, 0);
    run_all();
    return e;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) {
    emu_stream_flush(s);
    check_range("cudaMemset", "dst", p, n, true);
    memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemset(void *p, int v, size_t n) {
    run_all();
    return cudaMemsetAsync(p, v, n, 0);
}

// ---------------------------------------------------------------------------------------------
// device, streams, events, errors
// ---------------------------------------------------------------------------------------------
// CUDA_EMU_DEVICES=N (1..8, default 1) devices, all the same emulated one: a process uses one
// (a rank of a multi-rank run takes cuda:local_rank), so they need no state of their own
static int emu_devices(void) {
    const char *v = getenv("CUDA_EMU_DEVICES");
    int n = v && *v ? atoi(v) : 1;
    return n < 1 ? 1 : n > 8 ? 8 : n;
}
cudaError_t cudaGetDeviceCount(int *n) { *n = emu_devices(); return cudaSuccess; }
cudaError_t cudaSetDevice(int d) {
    if (d < 0 || d >= emu_devices()) return g_last_error = cudaErrorInvalidDevice;
    g_cur_dev = d;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *d) { *d = g_cur_dev; return cudaSuccess; }
cudaError_t cudaDriverGetVersion(int *v) { *v = CUDART_VERSION; return cudaSuccess; }
cudaError_t cudaRuntimeGetVersion(int *v) { *v = CUDART_VERSION; return cudaSuccess; }
// device d's compute capability: 9.0, or CUDA_EMU_CC's d-th entry (a list like "9.0,7.5"; the
// last one for the devices past it; "80" reads as 8.0) — to test how an older GPU is turned down
// and what fits its shared memory (emu_smem_optin). The kernels themselves run as sm_90's.
static void emu_cc(int d, int *major, int *minor) {
    *major = 9, *minor = 0;
    const char *v = getenv("CUDA_EMU_CC");
    for (int i = 0; v && *v; i++) {
        int ma = 0, mi = 0, n = sscanf(v, "%d.%d", &ma, &mi);
        if (n == 1 && ma >= 20) mi = ma % 10, ma /= 10;  // "80": CMake's / nvcc's spelling of 8.0
        if (n >= 1) *major = ma, *minor = mi;
        if (i == d) break;
        v = strchr(v, ',');
        if (v) v++;
    }
}
// the shared memory of device d's reported compute capability (CUDA C Programming Guide, "Technical
// Specifications per Compute Capability"): a block's opt-in maximum — 227 KiB on sm_90 and sm_100,
// 163 KiB on sm_80 / sm_87 (A100, Orin), 99 KiB on sm_86 / sm_89 / sm_120 (which run this build's
// sm_80 code), 64 KiB on sm_75 — and an SM's resident threads. A kernel whose shared memory fits
// an H100 but not an A100 then fails (or takes its fallback) here as it would there.
static size_t emu_smem_optin(int d) {
    int ma, mi;
    emu_cc(d, &ma, &mi);
    if (ma == 8 && (mi == 0 || mi == 7)) return 166912;
    if ((ma == 8 && mi >= 6) || ma >= 12) return 101376;
    if (ma == 7) return mi >= 5 ? 65536 : 98304;
    if (ma < 7) return 49152;
    return 232448;
}
static int emu_threads_per_sm(int d) {
    int ma, mi;
    emu_cc(d, &ma, &mi);
    if ((ma == 8 && (mi == 6 || mi == 9)) || ma >= 12) return 1536;
    return ma == 7 && mi >= 5 ? 1024 : 2048;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    if (d < 0 || d >= emu_devices()) return g_last_error = cudaErrorInvalidDevice;
    memset(p, 0, sizeof *p);
    emu_cc(d, &p->major, &p->minor);
    snprintf(p->name, sizeof p->name, "emulated sm_%d%d (CPU)", p->major, p->minor);
    p->multiProcessorCount = 132;
    p->totalGlobalMem = EMU_TOTAL;
    p->sharedMemPerBlock = EMU_SMEM_DEFAULT;
    p->sharedMemPerBlockOptin = emu_smem_optin(d);
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 0x7fffffff, p->maxGridSize[1] = p->maxGridSize[2] = 65535;
    p->l2CacheSize = 50 << 20;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d) {
    int ma, mi;
    emu_cc(d, &ma, &mi);
    switch (a) {
    case cudaDevAttrMultiProcessorCount: *v = 132; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = (int)emu_smem_optin(d); break;
    case cudaDevAttrComputeCapabilityMajor: *v = ma; break;
    case cudaDevAttrComputeCapabilityMinor: *v = mi; break;
    default: *v = 0;
    }
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
    run_all();
    return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void *f, cudaFuncAttribute a, int v) {
    if (a == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (v < 0 || (size_t)v > emu_smem_optin(g_cur_dev)) return g_last_error = cudaErrorInvalidValue;
        std::lock_guard<std::mutex> lock(g_launch_lock);
        g_max_dyn_smem[f] = v;
    }
    return cudaSuccess;
}
// the emulator knows no registers: an H100's thread, block and shared-memory limits alone
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, const void *f, int block, size_t smem) {
    (void)f;
    if (block <= 0 || block > 1024) return g_last_error = cudaErrorInvalidValue;
    // an SM holds the opt-in maximum plus 1 KiB, and 1 KiB is reserved a block
    int by_smem = smem ? (int)((emu_smem_optin(g_cur_dev) + 1024) / (smem + 1024)) : 32;
    *n = min(32, min(emu_threads_per_sm(g_cur_dev) / block, by_smem));
    return cudaSuccess;
}
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *n, const void *f, int block, size_t smem, unsigned flags) {
    (void)flags;  // the flags change nothing here: no caching of globals in L1 is modelled
    return cudaOccupancyMaxActiveBlocksPerMultiprocessor(n, f, block, smem);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    (void)flags;
    emu_stream *st = new emu_stream;
    std::lock_guard<std::recursive_mutex> lock(g_q_lock);
    g_streams.push_back(st);
    *s = (cudaStream_t)st;
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned flags, int prio) { (void)prio; return cudaStreamCreateWithFlags(s, flags); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    emu_stream_flush(s);
    std::lock_guard<std::recursive_mutex> lock(g_q_lock);
    for (size_t i = 0; i < g_streams.size(); i++)
        if (g_streams[i] == (emu_stream *)s) g_streams.erase(g_streams.begin() + (long)i);
    delete (emu_stream *)s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    emu_stream_flush(s);
    return cudaSuccess;
}
cudaError_t cudaStreamQuery(cudaStream_t s) {
    emu_stream_flush(s);
    return cudaSuccess;
}

// an event: the time of its record, and the point of its stream's queue it marks
struct emu_event {
    double t;
    emu_stream *st;
    uint64_t seq;
};
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
    (void)flags;
    const emu_event *ev = (const emu_event *)e;
    emu_stream *st = stream_of(s);
    if (ev->st && ev->st != st && emu_defer()) enqueue(st, emu_op{NULL, NULL, 0, {}, ev->st, ev->seq, {}});
    return cudaSuccess;
}
static double now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = (cudaEvent_t) new emu_event{0, NULL, 0}; return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) { (void)flags; return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) { delete (emu_event *)e; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    emu_event *ev = (emu_event *)e;
    std::lock_guard<std::recursive_mutex> lock(g_q_lock);
    ev->t = now_ms();
    ev->st = stream_of(s);
    ev->seq = ev->st->queued;
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    const emu_event *ev = (const emu_event *)e;
    if (ev->st) run_to(ev->st, ev->seq);
    return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) { return cudaEventSynchronize(e); }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    *ms = (float)(((emu_event *)b)->t - ((emu_event *)a)->t);
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = g_last_error;
    g_last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return g_last_error; }
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    default: return "emulated CUDA error";
    }
}
const char *cudaGetErrorName(cudaError_t e) { return cudaGetErrorString(e); }
}  // extern "C"
