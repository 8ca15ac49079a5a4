// demo.c — procedurally drawn characters for the demo dataset.
#include "data/demo.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/rng.h"

demo_options demo_options_default(void) { return (demo_options){.seed = 0, .characters = 12, .per_character = 6, .size = 128}; }

typedef struct { const char *name; uint8_t rgb[3]; } colour;
static const colour palette[] = {{"red", {220, 40, 40}},     {"orange", {240, 140, 30}}, {"yellow", {240, 210, 40}}, {"green", {60, 170, 70}},
                                 {"teal", {30, 160, 160}},   {"blue", {50, 90, 220}},    {"purple", {140, 60, 190}}, {"pink", {240, 120, 180}},
                                 {"brown", {130, 80, 40}},   {"grey", {130, 130, 140}}};
#define NCOL ((int)(sizeof palette / sizeof palette[0]))
static const char *shapes[] = {"round", "square", "triangular", "diamond-shaped"};
static const char *eyes[] = {"dot", "big round", "sleepy"};
static const char *mouths[] = {"smiling", "surprised", "calm"};
static const char *accessories[] = {"", "a hat", "an antenna", "a bow"};
static const char *poses[] = {"standing", "jumping", "waving", "sitting", "leaning to the side", "running"};
static const char *backgrounds[] = {"plain", "gradient", "striped", "checkered"};
static const char *syl[] = {"ka", "mo", "zi", "ru", "pe", "lo", "ta", "ni", "bo", "su", "ve", "da"};

typedef struct { int w, h; uint8_t *px; } canvas;

static void put(canvas *c, int x, int y, const uint8_t *col) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    memcpy(c->px + 3 * ((size_t)y * c->w + x), col, 3);
}

// filled shape: kind 0 circle, 1 square, 2 triangle (apex up), 3 diamond; centre (cx, cy), radius r
static void shape(canvas *c, int kind, double cx, double cy, double r, const uint8_t *col) {
    for (int y = (int)(cy - r) - 1; y <= (int)(cy + r) + 1; y++)
        for (int x = (int)(cx - r) - 1; x <= (int)(cx + r) + 1; x++) {
            double dx = (x + 0.5 - cx) / r, dy = (y + 0.5 - cy) / r;
            int in = kind == 0 ? dx * dx + dy * dy <= 1 : kind == 1 ? fabs(dx) <= 0.85 && fabs(dy) <= 0.85
                   : kind == 2 ? dy <= 0.8 && dy >= -1 && fabs(dx) <= (dy + 1) * 0.55 : fabs(dx) + fabs(dy) <= 1;
            if (in) put(c, x, y, col);
        }
}

static void line(canvas *c, double x0, double y0, double x1, double y1, double t, const uint8_t *col) {
    int xa = (int)fmin(x0, x1) - (int)t - 1, xb = (int)fmax(x0, x1) + (int)t + 1, ya = (int)fmin(y0, y1) - (int)t - 1, yb = (int)fmax(y0, y1) + (int)t + 1;
    double vx = x1 - x0, vy = y1 - y0, l2 = vx * vx + vy * vy + 1e-9;
    for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++) {
            double px = x + 0.5 - x0, py = y + 0.5 - y0, u = (px * vx + py * vy) / l2;
            u = u < 0 ? 0 : u > 1 ? 1 : u;
            double dx = px - u * vx, dy = py - u * vy;
            if (dx * dx + dy * dy <= t * t / 4) put(c, x, y, col);
        }
}

typedef struct { int shape, body, accent, eyes, mouth, acc; char name[16]; } character;

static character make_character(uint64_t seed, int idx) {
    uint64_t s = rng_key(seed, 0, (uint64_t)idx, RNG_DEMO);
    character ch;
    ch.shape = (int)rng_below(&s, 4);
    ch.body = (int)rng_below(&s, NCOL);
    ch.accent = (ch.body + 1 + (int)rng_below(&s, NCOL - 1)) % NCOL;
    ch.eyes = (int)rng_below(&s, 3);
    ch.mouth = (int)rng_below(&s, 3);
    ch.acc = (int)rng_below(&s, 4);
    int n = 2 + (int)rng_below(&s, 2);
    ch.name[0] = 0;
    for (int i = 0; i < n; i++) strcat(ch.name, syl[rng_below(&s, 12)]);
    ch.name[0] = (char)(ch.name[0] - 'a' + 'A');
    size_t l = strlen(ch.name);  // make the name unique per index
    snprintf(ch.name + l, sizeof ch.name - l, "%d", idx);
    return ch;
}

int demo_draw(const demo_options *d, int ci, int view, image *out, char *captions[2], char **name) {
    character ch = make_character(d->seed, ci);
    uint64_t s = rng_key(d->seed, 1, (uint64_t)ci * 65536 + (uint64_t)view, RNG_DEMO);
    static const int aspect[3][2] = {{1, 1}, {4, 3}, {3, 4}};
    int a = (int)rng_below(&s, 3);
    int W = d->size, H = d->size;
    if (aspect[a][0] > aspect[a][1]) H = d->size * 3 / 4; else if (aspect[a][0] < aspect[a][1]) W = d->size * 3 / 4;
    canvas c = {W, H, malloc((size_t)W * H * 3)};
    // background
    int bg = (int)rng_below(&s, 4), b1 = (int)rng_below(&s, NCOL), b2 = (int)rng_below(&s, NCOL);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t col[3];
            for (int k = 0; k < 3; k++) {
                double p1 = 255 - (255 - palette[b1].rgb[k]) * 0.35, p2 = 255 - (255 - palette[b2].rgb[k]) * 0.35;  // pastel
                double t = bg == 0 ? 0 : bg == 1 ? (double)y / H : bg == 2 ? ((x / 8) & 1) : (((x / 12) + (y / 12)) & 1);
                col[k] = (uint8_t)(p1 * (1 - t) + p2 * t);
            }
            memcpy(c.px + 3 * ((size_t)y * W + x), col, 3);
        }
    int pose = (view + (int)rng_below(&s, 2) * 3) % 6;
    double m = W < H ? W : H, r = m * (0.16 + 0.10 * rng_unit(&s));
    double cx = W * (0.35 + 0.3 * rng_unit(&s)), cy = H * (0.45 + 0.1 * rng_unit(&s));
    if (pose == 1) cy -= r * 0.5;
    if (pose == 3) cy += r * 0.4;
    if (pose == 4) cx += r * 0.3;
    const uint8_t *body = palette[ch.body].rgb, *acc = palette[ch.accent].rgb, black[3] = {20, 20, 25}, white[3] = {250, 250, 250};
    double t = r * 0.22;
    // legs
    double ly = cy + r * 0.8, lx = r * 0.4;
    if (pose == 3) { line(&c, cx - lx, ly, cx - lx - r * 0.8, ly + r * 0.1, t, acc); line(&c, cx + lx, ly, cx + lx + r * 0.8, ly + r * 0.1, t, acc); }
    else if (pose == 1 || pose == 5) { line(&c, cx - lx, ly, cx - lx - r * 0.5, ly + r * 0.7, t, acc); line(&c, cx + lx, ly, cx + lx + r * 0.5, ly + r * 0.5, t, acc); }
    else { line(&c, cx - lx, ly, cx - lx, ly + r * 0.8, t, acc); line(&c, cx + lx, ly, cx + lx, ly + r * 0.8, t, acc); }
    // arms
    double ay = cy, ax = r * 0.9;
    double la = pose == 2 ? -1.1 : pose == 1 ? -0.6 : 0.7, ra = pose == 2 ? -0.3 : pose == 1 ? -0.6 : pose == 4 ? 0.2 : 0.7;
    line(&c, cx - ax, ay, cx - ax - r * 0.8 * cos(la), ay + r * 0.8 * sin(la), t, acc);
    line(&c, cx + ax, ay, cx + ax + r * 0.8 * cos(ra), ay + r * 0.8 * sin(ra), t, acc);
    shape(&c, ch.shape, cx, cy, r, body);
    // accessory
    if (ch.acc == 1) { shape(&c, 1, cx, cy - r * 1.05, r * 0.45, acc); line(&c, cx - r * 0.7, cy - r * 0.75, cx + r * 0.7, cy - r * 0.75, t * 0.8, acc); }
    else if (ch.acc == 2) { line(&c, cx, cy - r * 0.8, cx + r * 0.3, cy - r * 1.5, t * 0.5, black); shape(&c, 0, cx + r * 0.3, cy - r * 1.5, r * 0.15, acc); }
    else if (ch.acc == 3) { shape(&c, 2, cx - r * 0.25, cy - r * 0.95, r * 0.25, acc); shape(&c, 2, cx + r * 0.25, cy - r * 0.95, r * 0.25, acc); }
    // face
    double ex = r * 0.35, ey = cy - r * 0.15, er = ch.eyes == 1 ? r * 0.2 : r * 0.1;
    for (int k = -1; k <= 1; k += 2) {
        if (ch.eyes == 1) { shape(&c, 0, cx + k * ex, ey, er, white); shape(&c, 0, cx + k * ex + er * 0.3, ey, er * 0.5, black); }
        else if (ch.eyes == 2) line(&c, cx + k * ex - er, ey, cx + k * ex + er, ey, t * 0.5, black);
        else shape(&c, 0, cx + k * ex, ey, er, black);
    }
    double my = cy + r * 0.35;
    if (ch.mouth == 0) { line(&c, cx - r * 0.25, my - r * 0.05, cx, my + r * 0.08, t * 0.4, black); line(&c, cx, my + r * 0.08, cx + r * 0.25, my - r * 0.05, t * 0.4, black); }
    else if (ch.mouth == 1) shape(&c, 0, cx, my, r * 0.12, black);
    else line(&c, cx - r * 0.2, my, cx + r * 0.2, my, t * 0.4, black);
    *out = (image){W, H, 3, c.px};
    char buf[512];
    snprintf(buf, sizeof buf, "%s, a %s %s character with %s eyes%s%s%s, %s, on a %s %s background", ch.name, palette[ch.body].name, shapes[ch.shape],
             eyes[ch.eyes], ch.acc ? " and " : "", ch.acc ? palette[ch.accent].name : "", ch.acc ? (ch.acc == 1 ? " hat" : ch.acc == 2 ? " antenna" : " bow") : "",
             poses[pose], backgrounds[bg], palette[b1].name);
    captions[0] = strdup(buf);
    snprintf(buf, sizeof buf, "%s the %s %s mascot %s", ch.name, mouths[ch.mouth], palette[ch.body].name, poses[pose]);
    captions[1] = strdup(buf);
    if (name) *name = strdup(ch.name);
    (void)accessories;
    return 0;
}

static int demo_load(void *ctx, const build_item *it, image *out, char *err, size_t errlen) {
    char *caps[2];
    demo_draw(ctx, (int)(it->user >> 16), (int)(it->user & 0xffff), out, caps, NULL);
    free(caps[0]);
    free(caps[1]);
    return 0;
}

int demo_build(const char *out, const demo_options *d, const build_options *o, build_report *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    size_t n = (size_t)d->characters * d->per_character;
    build_item *items = calloc(n + 1, sizeof *items);
    for (int c = 0, k = 0; c < d->characters; c++)
        for (int v = 0; v < d->per_character; v++, k++) {
            build_item *it = &items[k];
            image im;
            char *caps[2], *name;
            demo_draw(d, c, v, &im, caps, &name);  // captions are cheap; the image is redrawn in parallel by demo_load
            image_free(&im);
            it->line = k + 1;
            it->character = name;
            it->n_captions = 2;
            it->captions = malloc(2 * sizeof(char *));
            it->captions[0] = caps[0];
            it->captions[1] = caps[1];
            char src[64];
            snprintf(src, sizeof src, "demo:%d/%d", c, v);
            it->source = strdup(src);
            it->user = (uint64_t)c << 16 | (uint64_t)v;
        }
    build_options oo = *o;
    oo.input_name = "demo";
    int rc = build_dataset(out, items, n, demo_load, (void *)d, &oo, r, err, errlen);
    for (size_t i = 0; i < n; i++) build_item_free(&items[i]);
    free(items);
    return rc;
}
