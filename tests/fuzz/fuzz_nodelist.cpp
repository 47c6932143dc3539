// Slurm's compressed lists: SLURM_JOB_NODELIST ("gpu[01-04,07],cpu-a") and
// SLURM_TASKS_PER_NODE ("4(x2),1"), as every rank parses them at start.
#include "tests/fuzz/common.h"
#include "trainer/dist/env.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ethos::fuzz::expect_clean([&] { ethos::expand_nodelist(text); });
  ethos::fuzz::expect_clean([&] { ethos::expand_tasks_per_node(text); });
  return 0;
}
