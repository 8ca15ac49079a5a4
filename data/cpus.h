// cpus.h — how many CPUs this process may run on.
#pragma once

// The CPUs of this process's affinity mask (a Slurm job step's, a container's cpuset, taskset),
// else the online CPUs; at least 1. What "threads: 0" means: the online count alone gave a rank
// bound to 8 cores of a 128-core node 128 decode threads.
int cpus_usable(void);
