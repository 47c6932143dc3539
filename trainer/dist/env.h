// Where this process sits in a multi-process job, read from the environment.
//  - torchrun style: RANK, WORLD_SIZE (required together), LOCAL_RANK, LOCAL_WORLD_SIZE
//    (both or neither; neither means one node: local = global), MASTER_ADDR, MASTER_PORT;
//  - Slurm (srun): SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_JOB_NODELIST (its first
//    host is the master), SLURM_NTASKS_PER_NODE or SLURM_TASKS_PER_NODE + SLURM_NODEID for the
//    local world size; MASTER_PORT defaults to 20000 + SLURM_JOB_ID % 20000;
//  - MASTER_ADDR / MASTER_PORT, when set, win in both modes; torchrun variables win over Slurm's;
//  - none of them set: a single process (rank 0 of 1).
// Every bad value is an ethos::Error naming the variable, its value and the fix.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace ethos {

struct DistEnv {
  int rank = 0, world_size = 1, local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "single";  // "single" | "torchrun" | "slurm"
};

// getenv_fn returns nullptr for an unset variable (as std::getenv does).
DistEnv dist_env_from(const std::function<const char*(const char*)>& getenv_fn);
DistEnv dist_env();  // from the real environment

// Slurm host lists: "gpu[01-03,07],cpu5" -> gpu01 gpu02 gpu03 gpu07 cpu5. Zero padding is kept
// (the width of a range's low bound); a name may have several bracket groups ("a[1-2]b[3-4]"
// expands to their product). Malformed -> Error naming the list and the 0-based position.
std::vector<std::string> expand_nodelist(const std::string& list);

// Slurm task counts per node: "4(x2),3" -> 4 4 3. Malformed -> Error naming the list.
std::vector<int> expand_tasks_per_node(const std::string& list);

}  // namespace ethos
