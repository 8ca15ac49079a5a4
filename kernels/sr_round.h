// sr_round.h — stochastic rounding of f32 to bf16, one definition for the CPU kernels (C) and the
// CUDA kernels: for bf16 AdamW moments (optimizer.state_dtype: bf16). Round-to-nearest would drop
// every update smaller than half a bf16 step — v's (1 - β2) g² with β2 = 0.999 is 0.1 % of v,
// under bf16's 0.4 % — so v would stall; rounding up with the probability of the cut-off fraction
// keeps each stored value unbiased. The random bits are a counter-based hash of (key, element):
// no state, the same on every device and after a resume.
#pragma once
#include <stdint.h>
#ifdef __CUDACC__
#define CM_SR_FN __host__ __device__ __forceinline__
#else
#define CM_SR_FN static inline
#endif

// 16 random bits for element i of the tensor keyed `key` (splitmix64's finaliser)
CM_SR_FN uint32_t cm_sr_bits(uint64_t key, int64_t i) {
    uint64_t x = key + (uint64_t)i * 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return (uint32_t)(x & 0xFFFFu);
}

// f32 (as bits) to bf16 bits: up in magnitude with probability (low 16 bits) / 2^16, else cut;
// Inf stays Inf, NaN stays NaN
CM_SR_FN uint16_t cm_bf16_sr(uint32_t bits, uint32_t r16) {
    if ((bits & 0x7F800000u) == 0x7F800000u) return (uint16_t)((bits >> 16) | ((bits & 0xFFFFu) ? 0x40u : 0u));
    return (uint16_t)((bits + r16) >> 16);
}

// the tensor key of one AdamW step: parameter index and step mixed, so no two (tensor, step) pairs
// share their random bits
CM_SR_FN uint64_t cm_sr_key(uint64_t param_index, uint64_t step) {
    return (param_index + 1) * 0xD1B54A32D192ED03ull ^ (step + 1) * 0x8CB92BA72F3D8DD7ull;
}
