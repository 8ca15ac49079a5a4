// e2e_mpi_agree.c — ranks that see different things must still act alike: a start-up failure on
// one rank only (a file its node lacks) stops every rank instead of leaving the others waiting in
// a collective for ever. Real `mpirun -np 2` processes; the "one node differs" cases are MPMD
// launches (`mpirun -np 1 A : -np 1 B`) with different arguments per rank.
// Skips when mpirun cannot start two ranks. Usage: e2e_mpi_agree PATH/TO/cameo PATH/TO/mpirun
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define MPIRUN "%s --allow-run-as-root --oversubscribe"
#define ARGS "--set stages.0.steps=2 --set stages.1.steps=1 --set stages.2.steps=1 --set run.log_every=1 --quiet"

int main(int argc, char **argv) {
    if (argc < 3) test_skip("usage: e2e_mpi_agree PATH/TO/cameo PATH/TO/mpirun");
    const char *cameo = argv[1], *mpirun = argv[2];
    if (test_sh(MPIRUN " -np 2 true >/dev/null 2>&1", mpirun) != 0) test_skip("mpirun cannot start 2 ranks on this machine");
    char dir[] = "/tmp/cameo-mpi-agree-XXXXXX";
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    // the demo dataset, made once
    TEST_CHECK(test_sh("%s train " ARGS " --set run.out_dir=%s/first --set data.path=%s/data 2>%s/first.log", cameo, dir, dir, dir) == 0,
               "one process (see %s/first.log)", dir);

    // refusals every rank finds alike in the run's set-up (a fresh start over a run folder with
    // checkpoints, a batch no bucket of the dataset holds): told once, and every rank leaves on its
    // own — not once per rank and an MPI_Abort
    int rc = test_sh("timeout 60 " MPIRUN " -np 2 %s train " ARGS " --set run.out_dir=%s/first --set data.path=%s/data >%s/again.log 2>&1",
                 mpirun, cameo, dir, dir, dir);
    TEST_CHECK(rc != 0 && rc != 124 && test_sh("test $(grep -c 'already holds .* of an earlier run' %s/again.log) = 1 && "
                                               "! grep -q MPI_ABORT %s/again.log", dir, dir) == 0,
               "a fresh start over a run with checkpoints: refused once, without an abort (exit %d; see %s/again.log)", rc, dir);
    rc = test_sh("timeout 60 " MPIRUN " -np 2 %s train " ARGS " --set stages.0.batch_size=96 --set run.out_dir=%s/big --set data.path=%s/data "
                 ">%s/big.log 2>&1", mpirun, cameo, dir, dir, dir);
    TEST_CHECK(rc != 0 && rc != 124 && test_sh("test $(grep -c 'takes global batches of 96 images' %s/big.log) = 1 && "
                                               "! grep -q MPI_ABORT %s/big.log", dir, dir) == 0,
               "a batch larger than any bucket: refused once, without an abort (exit %d; see %s/big.log)", rc, dir);
    // ... and a held-out set no validation batch fits, found once the models are loaded
    TEST_CHECK(test_sh("%s data demo --out %s/three --characters 1 --per-character 3 --size 64 >/dev/null 2>&1", cameo, dir) == 0,
               "a held-out set of 3 images");
    rc = test_sh("timeout 60 " MPIRUN " -np 2 %s train " ARGS " --set validation.every=1 --set validation.path=%s/three "
                 "--set run.out_dir=%s/val --set data.path=%s/data >%s/val.log 2>&1", mpirun, cameo, dir, dir, dir, dir);
    TEST_CHECK(rc != 0 && rc != 124 && test_sh("test $(grep -c 'validation.path: validation in stage 1/3' %s/val.log) = 1 && "
                                               "! grep -q MPI_ABORT %s/val.log", dir, dir) == 0,
               "a held-out set no validation batch fits: refused once, without an abort (exit %d; see %s/val.log)", rc, dir);

    // rank 1 alone cannot read its config (as a node without the shared file system): both ranks
    // stop at once, rank 0 naming rank 1 — not rank 0 waiting in a collective rank 1 never joins
    rc = test_sh("timeout 30 " MPIRUN " -np 1 %s train " ARGS " --set run.out_dir=%s/cfg --set data.path=%s/data : "
                     "-np 1 %s train %s/no-such-config.yaml " ARGS " >%s/cfg.log 2>&1", mpirun, cameo, dir, dir, cameo, dir, dir);
    TEST_CHECK(rc != 0 && rc != 124, "a config one rank cannot read: the job ends with an error (exit %d; 124: it hung; see %s/cfg.log)",
               rc, dir);
    TEST_CHECK(test_sh("grep -q 'no-such-config.yaml' %s/cfg.log && grep -q 'rank 1 could not start' %s/cfg.log", dir, dir) == 0,
               "rank 1 says why, rank 0 names rank 1 (see %s/cfg.log)", dir);

    // --resume auto where rank 1's node does not see the run's checkpoints yet (a stale view of the
    // shared folder; here: rank 1 given another run.out_dir): rank 0's finding holds for both, so
    // both resume the first run's step-4 and train its one more step — not rank 1 starting afresh
    // while rank 0 waits in the resume's collectives. The state replicated: rank 0 writes it all
    rc = test_sh("timeout 60 " MPIRUN " -np 1 %s train " ARGS " --set stages.2.steps=2 --set optimizer.shard_state=false "
                 "--set run.out_dir=%s/first --set data.path=%s/data --resume auto : -np 1 %s train " ARGS " --set stages.2.steps=2 "
                 "--set optimizer.shard_state=false --set run.out_dir=%s/stale --set data.path=%s/data --resume auto >%s/auto.log 2>&1",
                 mpirun, cameo, dir, dir, cameo, dir, dir, dir);
    TEST_CHECK(rc == 0, "--resume auto, rank 1 seeing no checkpoint: the run resumes (exit %d; 124: it hung; see %s/auto.log)", rc, dir);
    TEST_CHECK(test_sh("grep -q 'resuming from .*step-4' %s/auto.log && test -d %s/first/tiny/checkpoints/step-5", dir, dir) == 0,
               "step-4 resumed, step-5 written (see %s/auto.log)", dir);

    // non-finite from step 3 on (CAMEO_FAULT_NAN_FROM), run.max_bad_steps 2: every rank stops after
    // step 4 and says so, each naming step-2 as the last good checkpoint (rank 0 made its name)
    rc = test_sh("CAMEO_FAULT_NAN_FROM=2 timeout 60 " MPIRUN " -np 2 -x CAMEO_FAULT_NAN_FROM %s train " ARGS " --set stages.0.steps=6 "
                 "--set run.ckpt_every=2 --set run.max_bad_steps=2 --set run.out_dir=%s/nan --set data.path=%s/data >%s/nan.log 2>&1",
                 mpirun, cameo, dir, dir, dir);
    TEST_CHECK(rc != 0 && rc != 124, "non-finite steps: the run stops with an error (exit %d; see %s/nan.log)", rc, dir);
    TEST_CHECK(test_sh("test $(grep -c 'max_bad_steps: 2 non-finite steps in a row; stopping. The last good checkpoint is "
                       "%s/nan/tiny/checkpoints/step-2$' %s/nan.log) = 2 && ! grep -q 'none yet' %s/nan.log", dir, dir, dir) == 0,
               "both ranks name step-2 as the last good checkpoint (see %s/nan.log)", dir);

    // srun's tasks whose MPI does not join them (no PMI plugin: each a world of 1 of its own) would
    // each train the same batches into one run folder: refused. SLURM_STEP_NUM_TASKS, no mpirun
    rc = test_sh("env -u OMPI_COMM_WORLD_SIZE -u PMI_SIZE SLURM_STEP_NUM_TASKS=2 timeout 60 %s train " ARGS " --set run.out_dir=%s/srun "
                 "--set data.path=%s/data >%s/srun.log 2>&1", cameo, dir, dir, dir);
    TEST_CHECK(rc == 1 && test_sh("grep -q 'one of 2 tasks (SLURM_STEP_NUM_TASKS), but MPI sees a world of 1' %s/srun.log && "
                                  "! test -e %s/srun", dir, dir) == 0,
               "a task of 2 in a world of 1 is refused before any work (exit %d; see %s/srun.log)", rc, dir);

    // damaged records (every third): each rank's loader skips those of its slice; the count told at
    // each stage's end is all ranks' (the one process's), not rank 0's share
    char dmg[300];
    snprintf(dmg, sizeof dmg, "%s/dmg", dir);
    TEST_CHECK(test_sh("cp -r %s/data %s", dir, dmg) == 0 && test_damage_records(dmg, 3) > 0, "a damaged copy of the dataset");
#define DARGS ARGS " --set stages.0.batch_size=2 --set stages.1.batch_size=2 --set stages.2.batch_size=2 --set stages.0.steps=4"
    TEST_CHECK(test_sh("%s train " DARGS " --set run.out_dir=%s/dmg1 --set data.path=%s 2>%s/dmg1.log", cameo, dir, dmg, dir) == 0,
               "one process on damaged data (see %s/dmg1.log)", dir);
    TEST_CHECK(test_sh(MPIRUN " -np 2 %s train " DARGS " --set run.out_dir=%s/dmg2 --set data.path=%s >%s/dmg2.log 2>&1", mpirun, cameo,
                       dir, dmg, dir) == 0, "two ranks on damaged data (see %s/dmg2.log)", dir);
    TEST_CHECK(test_sh("grep -q 'skipped as damaged' %s/dmg1.log && test \"$(grep -o '[0-9]* records skipped as damaged' %s/dmg1.log)\" = "
                       "\"$(grep -o '[0-9]* records skipped as damaged' %s/dmg2.log)\"", dir, dir, dir) == 0,
               "2 ranks count the damaged records of 1 process (see %s/dmg1.log and dmg2.log)", dir);

    if (test_failures == 0) test_sh("rm -rf %s", dir);
    return test_summary("e2e_mpi_agree");
}
