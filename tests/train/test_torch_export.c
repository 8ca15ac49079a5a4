// test_torch_export.c — train/torch_export: tensors of every storage dtype (a scalar, an empty
// one, parts interleaved) written as a torch.save zip, read back by cameo's own reader
// (torch_import) and by an independent one (tests/train/torch_zip_check.py: Python's zipfile and
// pickle; torch.load too where PyTorch is installed); the ZIP64 layout of a > 4 GiB file forced
// on a small one; each record's data 64-byte aligned; bad names and dtypes refused, nothing left.
#define _GNU_SOURCE 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"
#include "models/crc32.h"
#include "train/torch_export.h"
#include "train/torch_import.h"

#define N 6
static const char *NAMES[N] = {"ip_adapter.0.to_k_ip.weight", "image_proj.latents", "ip_adapter.0.to_v_ip.bias",
                               "image_proj.scale", "ip_adapter.1.norm.weight", "image_proj.empty"};
static const cm_dtype DTYPES[N] = {CM_BF16, CM_F32, CM_F16, CM_F64, CM_BF16, CM_F32};
static const int NDIMS[N] = {2, 3, 1, 0, 1, 2};
static const int64_t SHAPES[N][3] = {{5, 7}, {1, 3, 300}, {70000}, {0}, {3}, {0, 4}};
// pickle order: parts in order of first appearance, each part's tensors in order
static const int ORDER[N] = {0, 2, 4, 1, 3, 5};

static int64_t numel_of(int i) {
    int64_t n = 1;
    for (int d = 0; d < NDIMS[i]; d++) n *= SHAPES[i][d];
    return n;
}

// the file written with flags, checked by both readers; returns the failures
static void check_file(const char *path, const te_tensor *t, const char *tmp) {
    char err[512];
    ti_file *f = torch_import_open(path, err, sizeof err);
    TEST_CHECK(f != NULL, "torch_import reads %s: %s", path, f ? "" : err);
    if (!f) return;
    TEST_CHECK(torch_import_count(f) == N, "%d tensors", torch_import_count(f));
    for (int k = 0; k < N && k < torch_import_count(f); k++) {
        int i = ORDER[k];
        const ti_tensor *r = torch_import_at(f, k);
        TEST_CHECK(!strcmp(r->name, NAMES[i]), "tensor %d is %s (wanted %s)", k, r->name, NAMES[i]);
        TEST_CHECK(r->dtype == DTYPES[i] && r->ndim == NDIMS[i] && r->contiguous && r->offset == 0, "%s: dtype, dims, view",
                   NAMES[i]);
        for (int d = 0; d < NDIMS[i] && d < r->ndim; d++) TEST_CHECK(r->shape[d] == SHAPES[i][d], "%s: dim %d", NAMES[i], d);
        size_t nb = (size_t)numel_of(i) * dtype_size(DTYPES[i]);
        TEST_CHECK(ti_numel(r) == numel_of(i) && (nb == 0 || !memcmp(r->data, t[i].data, nb)), "%s: the same bytes", NAMES[i]);
        // the mapping starts on a page: the pointer's alignment is the data's offset in the file
        TEST_CHECK(nb == 0 || (uintptr_t)r->data % 64 == 0, "%s: data 64-byte aligned", NAMES[i]);
    }
    torch_import_close(f);

    // the independent reader: one line per tensor, name|dtype|shape|crc32, in pickle order
    char want[4096] = "", line[256];
    for (int k = 0; k < N; k++) {
        int i = ORDER[k];
        char shape[64] = "";
        for (int d = 0; d < NDIMS[i]; d++) snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? "," : "", (long long)SHAPES[i][d]);
        snprintf(line, sizeof line, "%s|%s|%s|%08x\n", NAMES[i], dtype_name(DTYPES[i]), shape,
                 cm_crc32(0, t[i].data, (size_t)numel_of(i) * dtype_size(DTYPES[i])));
        strcat(want, line);
    }
    if (test_sh("command -v python3 >/dev/null") != 0) {
        printf("note: no python3: the independent reader's check is skipped\n");
        return;
    }
    char out[600];
    snprintf(out, sizeof out, "%s/check.txt", tmp);
    TEST_CHECK(test_sh("python3 tests/train/torch_zip_check.py %s > %s", path, out) == 0, "torch_zip_check.py reads %s", path);
    FILE *g = fopen(out, "r");
    char got[4096] = "";
    if (g) {
        size_t n = fread(got, 1, sizeof got - 1, g);
        got[n] = 0;
        fclose(g);
    }
    TEST_CHECK(!strcmp(got, want), "the independent reader's tensors:\n%s\nwanted:\n%s", got, want);
}

int main(void) {
    char tmp[] = "/tmp/cameo_torch_export_XXXXXX";
    TEST_CHECK(mkdtemp(tmp) != NULL, "temporary folder");
    te_tensor t[N];
    uint8_t *buf[N];
    uint64_t s = 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < N; i++) {
        size_t nb = (size_t)numel_of(i) * dtype_size(DTYPES[i]);
        buf[i] = malloc(nb + 1);
        for (size_t b = 0; b < nb; b++) s ^= s << 13, s ^= s >> 7, s ^= s << 17, buf[i][b] = (uint8_t)s;
        t[i] = (te_tensor){.name = NAMES[i], .dtype = DTYPES[i], .ndim = NDIMS[i], .shape = SHAPES[i], .data = buf[i]};
    }
    char path[600], err[512];
    for (int z64 = 0; z64 < 2; z64++) {
        snprintf(path, sizeof path, "%s/adapter%s.bin", tmp, z64 ? "-zip64" : "");
        TEST_CHECK(torch_export_save(path, t, N, z64 ? TE_ZIP64 : 0, err, sizeof err) == 0, "save %s: %s", path, err);
        check_file(path, t, tmp);
    }
    // ZIP64 records where forced: the end locator before the end record
    TEST_CHECK(test_sh("tail -c 42 %s | head -c 4 | od -An -tx1 | grep -q '50 4b 06 07'", path) == 0, "a ZIP64 locator");

    // refusals name the tensor and leave nothing behind
    snprintf(path, sizeof path, "%s/bad.bin", tmp);
    te_tensor bad = t[0];
    bad.name = "nopart";
    TEST_CHECK(torch_export_save(path, &bad, 1, 0, err, sizeof err) == -1 && strstr(err, "'nopart'") && strstr(err, "<part>.<key>"),
               "a name without a part: %s", err);
    bad.name = "ip_adapter.";
    TEST_CHECK(torch_export_save(path, &bad, 1, 0, err, sizeof err) == -1 && strstr(err, "'ip_adapter.'"), "an empty key: %s", err);
    bad = t[0];
    bad.dtype = CM_I32;
    TEST_CHECK(torch_export_save(path, &bad, 1, 0, err, sizeof err) == -1 && strstr(err, "i32") && strstr(err, "allowed"),
               "an i32 tensor: %s", err);
    TEST_CHECK(access(path, F_OK) != 0, "no file after a refusal");
    snprintf(path, sizeof path, "%s/no/such/folder/a.bin", tmp);
    TEST_CHECK(torch_export_save(path, t, N, 0, err, sizeof err) == -1 && strstr(err, "cannot create"), "no folder: %s", err);

    for (int i = 0; i < N; i++) free(buf[i]);
    test_sh("rm -rf %s", tmp);
    return test_summary("test_torch_export");
}
