// test_emulated_device.c — the trainer on a device, without a GPU: the same tiny three-stage run
// on the CPU and on the emulated cuda:0 (tests/emulated_device.h: the CPU kernels behind the
// backend interface, device memory closed to host code). Any host read or write of device
// memory, and any host pointer passed as device memory, stops the device run; since the kernels
// are the same, every logged loss and every trained weight must agree bit for bit, and a resume
// on the device from a mid-run checkpoint must end in the same weights.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "emulated_device.h"
#include "kernels/backend.h"
#include "models/safetensors.h"
#include "testutil.h"
#include "data/image.h"
#include "train/cli.h"

#define STEPS "--set", "stages.0.steps=6", "--set", "stages.1.steps=4", "--set", "stages.2.steps=4", "--set", "run.log_every=1"

// runs `cameo train|sample ARGS...` (cli) in a child, so each run gets fresh process state;
// emulated: on the emulated cuda:0
static int run_child(int (*cli)(int, char **), int emulated, char **args) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int n = 0;
        while (args[n]) n++;
        if (emulated) emu_install();
        int rc = cli(n, args);
        if (emulated) printf("emulated device: %lld backend calls, %.1f MiB of device memory handed out\n", (long long)emu_calls(), emu_bytes() / 1048576.0);
        fflush(NULL);
        _exit(rc);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// the emulator catches what it is for: a host read of device memory, a host buffer given to a
// kernel as device memory (each in a child, which must die of it)
static int misuse_child(int which) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        emu_install();
        int64_t n = 16;
        cm_tensor *t = tensor_zeros(CM_F32, 1, &n, (cm_device){CM_CUDA, 0});
        if (which == 0) {
            volatile float *p = tensor_data(t);
            printf("read %g\n", p[3]);  // must fault
        } else {
            float host[16];
            backend_get(CM_CUDA)->fill(backend_ctx((cm_device){CM_CUDA, 0}), CM_F32, host, 16, 1.0);  // must stop
        }
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

// the text after "loss": of every metrics line, joined
static void read_losses(const char *path, char *out, size_t n) {
    FILE *f = fopen(path, "r");
    out[0] = 0;
    if (!f) return;
    char line[4096];
    size_t used = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"loss\":");
        if (!p) continue;
        size_t len = strcspn(p, ",}");
        if (used + len + 2 < n) memcpy(out + used, p, len), used += len, out[used++] = ' ';
    }
    out[used] = 0;
    fclose(f);
}

// the number of tensors of a that differ from b in any byte (-1: unreadable)
static int differing(const char *a, const char *b) {
    char err[512];
    st_file *fa = st_open(a, err, sizeof err), *fb = fa ? st_open(b, err, sizeof err) : NULL;
    if (!fa || !fb) {
        fprintf(stderr, "%s\n", err);
        if (fa) st_close(fa);
        return -1;
    }
    int bad = 0;
    for (int i = 0; i < st_count(fa); i++) {
        const st_entry *ea = st_at(fa, i), *eb = st_find(fb, ea->name);
        if (!eb || ea->nbytes != eb->nbytes || memcmp(ea->data, eb->data, ea->nbytes)) bad++;
    }
    if (st_count(fa) != st_count(fb) || st_count(fa) == 0) bad++;
    st_close(fa);
    st_close(fb);
    return bad;
}

int main(void) {
    TEST_CHECK(misuse_child(0) == SIGSEGV, "a host read of device memory faults");
    TEST_CHECK(misuse_child(1) == SIGABRT, "a host buffer passed as device memory stops the kernel call");

    char dir[] = "/tmp/cameo-emu-XXXXXX";
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char data[256], out_cpu[256], out_dev[256], out_res[256], ck[512];
    snprintf(data, sizeof data, "data.path=%s/data", dir);
    snprintf(out_cpu, sizeof out_cpu, "run.out_dir=%s/cpu", dir);
    snprintf(out_dev, sizeof out_dev, "run.out_dir=%s/dev", dir);
    snprintf(out_res, sizeof out_res, "run.out_dir=%s/res", dir);

    char *cpu[] = {STEPS, "--set", "run.ckpt_every=3", "--set", data, "--set", out_cpu, "--quiet", NULL};
    TEST_CHECK(run_child(train_cli, 0, cpu) == 0, "the CPU run");
    char *dev[] = {STEPS, "--set", "run.ckpt_every=3", "--set", data, "--set", out_dev, "--set", "run.device=cuda:0",
                   "--set", "model.dtype=f32", "--quiet", NULL};
    TEST_CHECK(run_child(train_cli, 1, dev) == 0, "the run on the emulated device");

    char a[256], b[256], la[8192], lb[8192];
    snprintf(a, sizeof a, "%s/cpu/tiny/metrics.jsonl", dir);
    snprintf(b, sizeof b, "%s/dev/tiny/metrics.jsonl", dir);
    read_losses(a, la, sizeof la);
    read_losses(b, lb, sizeof lb);
    TEST_CHECK(strlen(la) > 100 && !strcmp(la, lb), "per-step losses differ:\n  cpu    %.300s\n  device %.300s", la, lb);
    snprintf(a, sizeof a, "%s/cpu/tiny/adapter.safetensors", dir);
    snprintf(b, sizeof b, "%s/dev/tiny/adapter.safetensors", dir);
    TEST_CHECK(differing(a, b) == 0, "trained adapter weights differ between the CPU and the device (%s, %s)", a, b);

    // resume on the device from step 12 (mid stage 2): the same final weights
    snprintf(ck, sizeof ck, "%s/dev/tiny/checkpoints/step-12", dir);
    char *res[] = {"--resume", ck, "--set", out_res, "--quiet", NULL};
    TEST_CHECK(run_child(train_cli, 1, res) == 0, "resume on the emulated device from %s", ck);
    snprintf(a, sizeof a, "%s/res/tiny/adapter.safetensors", dir);
    TEST_CHECK(differing(a, b) == 0, "resumed weights differ from the uninterrupted run (%s, %s)", a, b);

    // sampling on the device from the device run's checkpoint: the same image as on the CPU
    char ref[256], png_cpu[256], png_dev[256], ck_cpu[256];
    snprintf(ref, sizeof ref, "%s/ref.png", dir);
    snprintf(png_cpu, sizeof png_cpu, "%s/cpu.png", dir);
    snprintf(png_dev, sizeof png_dev, "%s/dev.png", dir);
    snprintf(ck_cpu, sizeof ck_cpu, "%s/cpu/tiny/checkpoints", dir);
    snprintf(ck, sizeof ck, "%s/dev/tiny/checkpoints", dir);
    uint8_t px[24 * 20 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 37 % 251);
    image im = {24, 20, 3, px};
    char err[256];
    TEST_CHECK(image_write_png(ref, &im, err, sizeof err) == 0, "%s", err);
    char *sc[] = {ck_cpu, "--ref", ref, "--prompt", "a character", "--out", png_cpu, "--steps", "3", NULL};
    char *sd[] = {ck, "--ref", ref, "--prompt", "a character", "--out", png_dev, "--steps", "3", "--device", "cuda:0", NULL};
    TEST_CHECK(run_child(sample_cli, 0, sc) == 0, "sampling on the CPU");
    TEST_CHECK(run_child(sample_cli, 1, sd) == 0, "sampling on the emulated device");
    TEST_CHECK(test_sh("cmp -s %s %s", png_cpu, png_dev) == 0, "the device's sample differs from the CPU's (%s, %s)", png_cpu, png_dev);

    test_sh("rm -rf %s", dir);
    return test_summary("test_emulated_device");
}
