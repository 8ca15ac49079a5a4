// test_data_fulldisk.c — a disk that fills up during a build (simulated with RLIMIT_FSIZE, so
// writes past the limit fail with EFBIG): the build fails with a message naming the shard, the
// partial shard is removed, no manifest is written, and a published dataset beside it is intact.
#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "data/verify.h"
#include "helpers.h"

// OpenMP's thread pool does not survive fork: every build here runs in its own child
static const char *published_in_child(void) {
    static char path[512];
    snprintf(path, sizeof path, "%s/published", tmp_dir());
    pid_t pid = fork();
    if (pid == 0) { make_demo("published", 3, 3, 64, 100); _exit(0); }
    int status;
    waitpid(pid, &status, 0);
    return path;
}

int main(void) {
    const char *published = published_in_child();
    char out[512], p[640];
    snprintf(out, sizeof out, "%s/filling", tmp_dir());
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {96 * 1024, 96 * 1024};
        setrlimit(RLIMIT_FSIZE, &rl);
        demo_options d = demo_options_default();
        d.characters = 30; d.per_character = 4; d.size = 96;
        build_options o = build_options_default();
        o.quality = 100;  // lossy, larger records
        o.quiet = 1;
        o.shard_samples = 40;
        o.threads = 2;
        build_report r;
        char err[2048];
        int rc = demo_build(out, &d, &o, &r, err, sizeof err);
        if (rc) fprintf(stderr, "expected failure: %s\n", err);
        // LMDB says EIO of a short write: the message must point at the space, not at a broken disk
        _exit(rc == 0 ? 0 : !strstr(err, "shard-") ? 4 : strstr(err, "Input/output error") && !strstr(err, "ulimit -f") ? 5 : 3);
    }
    int status;
    waitpid(pid, &status, 0);
    TEST_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3, "build failed with a message naming the shard (status %d)", status);
    snprintf(p, sizeof p, "%s/manifest.json", out);
    struct stat st;
    TEST_CHECK(stat(p, &st) != 0, "no manifest written");
    DIR *dir = opendir(out);
    int tmp = 0, shards = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir))) { if (strstr(e->d_name, ".tmp")) tmp++; if (!strncmp(e->d_name, "shard-", 6)) shards++; }
    if (dir) closedir(dir);
    TEST_CHECK(tmp == 0, "partial shard and temporary files removed (%d left)", tmp);
    printf("finished shards left in the unpublished folder: %d\n", shards - tmp);
    TEST_CHECK(verify_dataset(published, 1, stderr) == 0, "published dataset beside it untouched");

    // the retry, space freed, into a folder a stopped build left its finished shards in: refused
    // naming what they are and how to build there again (it said "shard-00000 already exists, build
    // into a new folder", leaving those shards on the disk that had filled)
    snprintf(out, sizeof out, "%s/stopped", tmp_dir());
    snprintf(p, sizeof p, "%s/shard-00000", out);
    TEST_CHECK(fs_mkdirs(p) == 0, "mkdir %s", p);
    pid = fork();
    if (pid == 0) {
        demo_options d = demo_options_default();
        d.characters = 2; d.per_character = 2; d.size = 32;
        build_options o = build_options_default();
        o.quiet = 1;
        o.threads = 1;
        build_report r;
        char err[2048] = "";
        int rc = demo_build(out, &d, &o, &r, err, sizeof err);
        fprintf(stderr, "expected refusal: %s\n", err);
        _exit(rc == 0 ? 0 : strstr(err, "unfinished build") && strstr(err, "rm -r") ? 3 : 4);
    }
    waitpid(pid, &status, 0);
    TEST_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3, "a retry into the stopped build's folder is told to remove it (status %d)",
               status);
    return test_summary("test_data_fulldisk");
}
