// crc32.c — slicing-by-8 CRC-32, pieces on the OpenMP threads combined (crc32.h).
#include "crc32.h"

#include <omp.h>
#include <pthread.h>

#define CRC_PAR_MIN ((size_t)32 << 20)  // below this one thread does it
#define CRC_PIECE ((size_t)8 << 20)     // at least this much a piece

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

static uint32_t crc_serial(uint32_t crc, const uint8_t *p, size_t n) {
    uint32_t c = ~crc;
    while (n >= 8) {
        uint32_t a = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        c = crc_tab[7][a & 0xff] ^ crc_tab[6][(a >> 8) & 0xff] ^ crc_tab[5][(a >> 16) & 0xff] ^ crc_tab[4][a >> 24] ^
            crc_tab[3][p[4]] ^ crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^ crc_tab[0][p[7]];
        p += 8, n -= 8;
    }
    while (n--) c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

// appending len zero bytes to a message is a linear map on its crc register over GF(2): a 32 x 32
// bit matrix (column k = the image of bit k). Squaring it doubles the zeros; len's binary digits
// pick which squares apply.
static uint32_t gf2_apply(const uint32_t *m, uint32_t v) {
    uint32_t s = 0;
    for (int k = 0; v; k++, v >>= 1)
        if (v & 1) s ^= m[k];
    return s;
}
static void gf2_square(uint32_t *sq, const uint32_t *m) {
    for (int k = 0; k < 32; k++) sq[k] = gf2_apply(m, m[k]);
}

uint32_t cm_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
    if (len_b == 0) return crc_a;
    uint32_t a[32], b[32];
    a[0] = 0xEDB88320u;  // one zero bit: shift right, the polynomial where the low bit falls out
    for (int k = 1; k < 32; k++) a[k] = 1u << (k - 1);
    gf2_square(b, a);  // two zero bits
    gf2_square(a, b);  // four: one zero byte is the next square
    for (;;) {
        gf2_square(b, a);  // 1, 4, 16, ... bytes
        if (len_b & 1) crc_a = gf2_apply(b, crc_a);
        if (!(len_b >>= 1)) break;
        gf2_square(a, b);  // 2, 8, 32, ... bytes
        if (len_b & 1) crc_a = gf2_apply(a, crc_a);
        if (!(len_b >>= 1)) break;
    }
    return crc_a ^ crc_b;
}

uint32_t cm_crc32(uint32_t crc, const void *buf, size_t n) {
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = buf;
    int nt = omp_get_max_threads();
    if (n < CRC_PAR_MIN || nt < 2 || omp_in_parallel()) return crc_serial(crc, p, n);
    int np = (int)(n / CRC_PIECE) < 4 * nt ? (int)(n / CRC_PIECE) : 4 * nt;  // a few pieces a thread evens the load
    uint32_t part[256];
    if (np > 256) np = 256;
    size_t step = n / (size_t)np;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < np; i++) {
        size_t a = (size_t)i * step, b = i + 1 == np ? n : a + step;
        part[i] = crc_serial(0, p + a, b - a);
    }
    for (int i = 0; i < np; i++) crc = cm_crc32_combine(crc, part[i], (i + 1 == np ? n : (size_t)(i + 1) * step) - (size_t)i * step);
    return crc;
}
