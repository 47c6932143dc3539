// Rank layout from the environment: Slurm node and task lists, torchrun variables, Slurm
// variables, which source wins, and an Error (naming variable, value and fix) for every bad input.
#include <torch/torch.h>

#include "catch.h"

#include <map>
#include <string>
#include <vector>

#include "datasets/base/util.h"
#include "trainer/dist/env.h"

using ethos_catch::Contains;
using namespace ethos;

namespace {

using Vars = std::map<std::string, std::string>;

DistEnv from(const Vars& vars) {
  return dist_env_from([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

// The message of the Error that from(vars) throws ("" when it does not throw).
std::string error_of(const Vars& vars) {
  try {
    from(vars);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string nodelist_error(const std::string& list) {
  try {
    expand_nodelist(list);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A complete srun environment: rank 5 of 8, 4 tasks per node on two nodes.
Vars slurm_vars() {
  return {{"SLURM_PROCID", "5"},       {"SLURM_NTASKS", "8"},         {"SLURM_LOCALID", "1"},
          {"SLURM_NODEID", "1"},       {"SLURM_TASKS_PER_NODE", "4(x2)"}, {"SLURM_JOB_NODELIST", "gpu[07-08]"},
          {"SLURM_JOB_ID", "123456"}, {"SLURM_STEP_ID", "0"}};
}

Vars torchrun_vars() {
  return {{"RANK", "3"},         {"WORLD_SIZE", "4"},          {"LOCAL_RANK", "1"},
          {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "node-a"}, {"MASTER_PORT", "29600"}};
}

Vars with(Vars base, const Vars& changes) {
  for (const auto& [k, v] : changes) base[k] = v;
  return base;
}

Vars without(Vars base, const std::vector<std::string>& names) {
  for (const auto& n : names) base.erase(n);
  return base;
}

}  // namespace

CATCH_TEST_CASE("expand_nodelist expands Slurm host lists", "[dist_env]") {
  struct Case {
    std::string list;
    std::vector<std::string> hosts;
  };
  const std::vector<Case> cases = {
      {"cpu5", {"cpu5"}},
      {"node-1.cluster", {"node-1.cluster"}},
      {"gpu[01-03,07],cpu5", {"gpu01", "gpu02", "gpu03", "gpu07", "cpu5"}},
      {"n[008-011]", {"n008", "n009", "n010", "n011"}},
      {"n[8-11]", {"n8", "n9", "n10", "n11"}},
      {"n[098-101]", {"n098", "n099", "n100", "n101"}},
      {"a,b,c", {"a", "b", "c"}},
      {"n[3]", {"n3"}},
      {"rack[1-2]-gpu", {"rack1-gpu", "rack2-gpu"}},
      {"a[1-2]b[3-4]", {"a1b3", "a1b4", "a2b3", "a2b4"}},
      {"x[1,3],y[05-06],z", {"x1", "x3", "y05", "y06", "z"}},
      {"[1-2]", {"1", "2"}},
  };
  for (const auto& c : cases) {
    CATCH_INFO("list: " << c.list);
    CATCH_CHECK(expand_nodelist(c.list) == c.hosts);
  }
}

CATCH_TEST_CASE("expand_nodelist names the list and the position of a mistake", "[dist_env]") {
  struct Case {
    std::string list, message;
  };
  const std::vector<Case> cases = {
      {"", "the list is empty at position 0"},
      {"gpu[01-03", "'[' is never closed at position 3"},
      {"gpu[01-", "'[' is never closed at position 3"},
      {"gpu[]", "expected a number inside brackets at position 4"},
      {"gpu[a]", "expected a number inside brackets at position 4"},
      {"gpu[1;2]", "unexpected ';' inside brackets at position 5"},
      {"gpu[5-3]", "range 5-3 runs backwards at position 6"},
      {"gpu1]", "']' without a matching '[' at position 4"},
      {"a,,b", "an empty host name at position 2"},
      {"a,", "an empty host name at position 2"},
      {"a b", "whitespace at position 1"},
      {"n[1234567890]", "a number longer than 9 digits at position 2"},
      {"n[0-999999999]", "more than 1000000 hosts"},
  };
  for (const auto& c : cases) {
    CATCH_INFO("list: " << c.list);
    std::string message = nodelist_error(c.list);
    CATCH_CHECK_THAT(message, Contains("\"" + c.list + "\"") && Contains(c.message) && Contains("gpu[01-03,07]"));
  }
}

CATCH_TEST_CASE("expand_tasks_per_node expands counts with repeats", "[dist_env]") {
  CATCH_CHECK(expand_tasks_per_node("4(x2),3") == std::vector<int>{4, 4, 3});
  CATCH_CHECK(expand_tasks_per_node("2") == std::vector<int>{2});
  CATCH_CHECK(expand_tasks_per_node("1,2(x3)") == std::vector<int>{1, 2, 2, 2});
  for (const std::string bad : {"", "4(x2", "4(2)", "x", "0", "4(x0)", "4,,3", "(x2)"}) {
    CATCH_INFO("list: " << bad);
    CATCH_REQUIRE_THROWS_WITH(expand_tasks_per_node(bad), Contains("SLURM_TASKS_PER_NODE \"" + bad + "\"") &&
                                                               Contains("4(x2),3"));
  }
}

CATCH_TEST_CASE("dist_env_from: no variables means a single process", "[dist_env]") {
  DistEnv d = from({});
  CATCH_CHECK(d.source == "single");
  CATCH_CHECK(d.rank == 0);
  CATCH_CHECK(d.world_size == 1);
  CATCH_CHECK(d.local_rank == 0);
  CATCH_CHECK(d.local_world_size == 1);
  CATCH_CHECK(d.master_addr == "127.0.0.1");
  CATCH_CHECK(d.master_port == 29500);
  // unrelated Slurm variables (e.g. in an sbatch script outside srun) do not make a job
  CATCH_CHECK(from({{"SLURM_JOB_ID", "7"}, {"SLURM_NTASKS", "4"}}).source == "single");
}

CATCH_TEST_CASE("dist_env_from reads torchrun variables", "[dist_env]") {
  DistEnv d = from(torchrun_vars());
  CATCH_CHECK(d.source == "torchrun");
  CATCH_CHECK(d.rank == 3);
  CATCH_CHECK(d.world_size == 4);
  CATCH_CHECK(d.local_rank == 1);
  CATCH_CHECK(d.local_world_size == 2);
  CATCH_CHECK(d.master_addr == "node-a");
  CATCH_CHECK(d.master_port == 29600);

  // without the LOCAL_ pair: one node, local = global; master defaults
  DistEnv one_node = from({{"RANK", "2"}, {"WORLD_SIZE", "3"}});
  CATCH_CHECK(one_node.local_rank == 2);
  CATCH_CHECK(one_node.local_world_size == 3);
  CATCH_CHECK(one_node.master_addr == "127.0.0.1");
  CATCH_CHECK(one_node.master_port == 29500);
}

CATCH_TEST_CASE("dist_env_from reads Slurm variables", "[dist_env]") {
  DistEnv d = from(slurm_vars());
  CATCH_CHECK(d.source == "slurm");
  CATCH_CHECK(d.rank == 5);
  CATCH_CHECK(d.world_size == 8);
  CATCH_CHECK(d.local_rank == 1);
  CATCH_CHECK(d.local_world_size == 4);
  CATCH_CHECK(d.master_addr == "gpu07");
  CATCH_CHECK(d.master_port == 20000 + 123456 % 20000);

  CATCH_SECTION("uneven nodes: SLURM_NODEID picks the entry of SLURM_TASKS_PER_NODE") {
    Vars v = with(slurm_vars(), {{"SLURM_NTASKS", "11"}, {"SLURM_PROCID", "9"}, {"SLURM_NODEID", "2"},
                                 {"SLURM_LOCALID", "1"}, {"SLURM_TASKS_PER_NODE", "4(x2),3"},
                                 {"SLURM_JOB_NODELIST", "n[008-010]"}});
    DistEnv u = from(v);
    CATCH_CHECK(u.local_world_size == 3);
    CATCH_CHECK(u.master_addr == "n008");
  }
  CATCH_SECTION("SLURM_NTASKS_PER_NODE wins over SLURM_TASKS_PER_NODE") {
    DistEnv u = from(with(slurm_vars(), {{"SLURM_NTASKS_PER_NODE", "2"}, {"SLURM_LOCALID", "0"}}));
    CATCH_CHECK(u.local_world_size == 2);
  }
  CATCH_SECTION("one node needs no SLURM_NODEID") {
    DistEnv u = from(without(with(slurm_vars(), {{"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "1"},
                                                 {"SLURM_TASKS_PER_NODE", "2"}, {"SLURM_JOB_NODELIST", "cpu5"}}),
                             {"SLURM_NODEID"}));
    CATCH_CHECK(u.local_world_size == 2);
    CATCH_CHECK(u.master_addr == "cpu5");
  }
  CATCH_SECTION("a mixed node list: the first host is the master") {
    DistEnv u = from(with(slurm_vars(), {{"SLURM_JOB_NODELIST", "login2,gpu[01-03,07]"}}));
    CATCH_CHECK(u.master_addr == "login2");
  }
  CATCH_SECTION("MASTER_ADDR and MASTER_PORT override the derived ones") {
    DistEnv u = from(with(slurm_vars(), {{"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "31000"}}));
    CATCH_CHECK(u.master_addr == "10.0.0.1");
    CATCH_CHECK(u.master_port == 31000);
  }
  CATCH_SECTION("no SLURM_JOB_ID: the default port") {
    CATCH_CHECK(from(without(slurm_vars(), {"SLURM_JOB_ID"})).master_port == 29500);
  }
}

CATCH_TEST_CASE("dist_env_from: torchrun variables win over Slurm's", "[dist_env]") {
  Vars both = slurm_vars();
  for (const auto& [k, v] : torchrun_vars()) both[k] = v;
  DistEnv d = from(both);
  CATCH_CHECK(d.source == "torchrun");
  CATCH_CHECK(d.rank == 3);
  CATCH_CHECK(d.world_size == 4);
  CATCH_CHECK(d.master_addr == "node-a");
  CATCH_CHECK(d.master_port == 29600);
  // an incomplete torchrun set is an error even though Slurm's is complete
  CATCH_CHECK_THAT(error_of(with(slurm_vars(), {{"RANK", "0"}})), Contains("WORLD_SIZE is not"));
}

CATCH_TEST_CASE("dist_env_from: every bad environment is an Error naming variable, value and fix", "[dist_env]") {
  struct Case {
    std::string what;
    Vars vars;
    std::vector<std::string> fragments;  // all must appear in the message
  };
  const std::vector<Case> cases = {
      {"RANK not an integer", with(torchrun_vars(), {{"RANK", "one"}}), {"RANK=\"one\" is not an integer", "set RANK"}},
      {"WORLD_SIZE empty", with(torchrun_vars(), {{"WORLD_SIZE", ""}}), {"WORLD_SIZE=\"\" is not an integer"}},
      {"RANK with trailing text", with(torchrun_vars(), {{"RANK", "3x"}}), {"RANK=\"3x\""}},
      {"LOCAL_RANK huge", with(torchrun_vars(), {{"LOCAL_RANK", "99999999999"}}), {"LOCAL_RANK=\"99999999999\""}},
      {"RANK >= WORLD_SIZE", with(torchrun_vars(), {{"RANK", "4"}}),
       {"RANK=4 is outside 0..3", "WORLD_SIZE=4", "set RANK below WORLD_SIZE"}},
      {"negative RANK", with(torchrun_vars(), {{"RANK", "-1"}}), {"RANK=-1 is outside 0..3"}},
      {"WORLD_SIZE 0", with(torchrun_vars(), {{"WORLD_SIZE", "0"}}),
       {"WORLD_SIZE=0 must be at least 1", "number of processes"}},
      {"WORLD_SIZE negative", with(torchrun_vars(), {{"WORLD_SIZE", "-2"}}), {"WORLD_SIZE=-2 must be at least 1"}},
      {"LOCAL_RANK >= LOCAL_WORLD_SIZE", with(torchrun_vars(), {{"LOCAL_RANK", "2"}}),
       {"LOCAL_RANK=2 is outside 0..1", "LOCAL_WORLD_SIZE=2"}},
      {"LOCAL_WORLD_SIZE 0", with(torchrun_vars(), {{"LOCAL_WORLD_SIZE", "0"}}), {"LOCAL_WORLD_SIZE=0 must be at least 1"}},
      {"LOCAL_WORLD_SIZE > WORLD_SIZE", with(torchrun_vars(), {{"LOCAL_WORLD_SIZE", "8"}}),
       {"LOCAL_WORLD_SIZE=8 is larger than WORLD_SIZE=4"}},
      {"RANK without WORLD_SIZE", {{"RANK", "0"}},
       {"torchrun-style environment is incomplete", "RANK is set but WORLD_SIZE is not", "unset all"}},
      {"only LOCAL_RANK", {{"LOCAL_RANK", "0"}}, {"LOCAL_RANK is set but RANK, WORLD_SIZE are not"}},
      {"LOCAL_RANK without LOCAL_WORLD_SIZE", without(torchrun_vars(), {"LOCAL_WORLD_SIZE"}),
       {"LOCAL_WORLD_SIZE is not"}},
      {"MASTER_PORT too large", with(torchrun_vars(), {{"MASTER_PORT", "70000"}}),
       {"MASTER_PORT=70000 is not a TCP port", "1..65535"}},
      {"MASTER_PORT 0", with(torchrun_vars(), {{"MASTER_PORT", "0"}}), {"MASTER_PORT=0 is not a TCP port"}},
      {"MASTER_PORT text", with(torchrun_vars(), {{"MASTER_PORT", "http"}}), {"MASTER_PORT=\"http\" is not an integer"}},
      {"MASTER_PORT bad in a single process", {{"MASTER_PORT", "-5"}}, {"MASTER_PORT=-5 is not a TCP port"}},
      {"MASTER_ADDR empty", with(torchrun_vars(), {{"MASTER_ADDR", ""}}), {"MASTER_ADDR is set but empty"}},
      {"Slurm without SLURM_NTASKS", without(slurm_vars(), {"SLURM_NTASKS", "SLURM_LOCALID"}),
       {"Slurm environment is incomplete", "SLURM_NTASKS, SLURM_LOCALID are not", "srun"}},
      {"Slurm SLURM_PROCID >= SLURM_NTASKS", with(slurm_vars(), {{"SLURM_PROCID", "8"}}),
       {"SLURM_PROCID=8 is outside 0..7", "SLURM_NTASKS=8"}},
      {"Slurm SLURM_LOCALID too large", with(slurm_vars(), {{"SLURM_LOCALID", "4"}}),
       {"SLURM_LOCALID=4 is outside 0..3", "SLURM_TASKS_PER_NODE=4"}},
      {"Slurm non-integer SLURM_NTASKS", with(slurm_vars(), {{"SLURM_NTASKS", "eight"}}),
       {"SLURM_NTASKS=\"eight\" is not an integer"}},
      {"Slurm empty nodelist", with(slurm_vars(), {{"SLURM_JOB_NODELIST", ""}}),
       {"SLURM_JOB_NODELIST is empty", "set MASTER_ADDR"}},
      {"Slurm malformed nodelist", with(slurm_vars(), {{"SLURM_JOB_NODELIST", "gpu[07-08"}}),
       {"SLURM_JOB_NODELIST: malformed node list \"gpu[07-08\"", "position 3"}},
      {"Slurm without task counts", without(slurm_vars(), {"SLURM_TASKS_PER_NODE"}),
       {"neither SLURM_NTASKS_PER_NODE nor SLURM_TASKS_PER_NODE"}},
      {"Slurm several nodes without SLURM_NODEID", without(slurm_vars(), {"SLURM_NODEID"}),
       {"SLURM_TASKS_PER_NODE=\"4(x2)\" lists several nodes but SLURM_NODEID is not set"}},
      {"Slurm SLURM_NODEID past the list", with(slurm_vars(), {{"SLURM_NODEID", "2"}}),
       {"SLURM_NODEID=2 has no entry in SLURM_TASKS_PER_NODE=\"4(x2)\""}},
      {"Slurm malformed task counts", with(slurm_vars(), {{"SLURM_TASKS_PER_NODE", "4(x"}}),
       {"malformed SLURM_TASKS_PER_NODE \"4(x\""}},
      {"Slurm bad SLURM_JOB_ID", with(slurm_vars(), {{"SLURM_JOB_ID", "abc"}}), {"SLURM_JOB_ID=\"abc\" is not an integer"}},
      // what sbatch's batch script sees (read off a real Slurm 22.05): rank 0 of the job's tasks, no step
      {"Slurm batch script without srun",
       with(without(slurm_vars(), {"SLURM_STEP_ID", "SLURM_NODEID"}),
            {{"SLURM_PROCID", "0"}, {"SLURM_LOCALID", "0"}, {"SLURM_NTASKS", "3"}, {"SLURM_TASKS_PER_NODE", "3"}}),
       {"batch script of Slurm job 123456", "SLURM_NTASKS=3, no SLURM_STEP_ID", "start the ranks with srun"}},
  };
  for (const auto& c : cases) {
    CATCH_INFO(c.what);
    std::string message = error_of(c.vars);
    CATCH_CHECK_FALSE(message.empty());
    for (const auto& f : c.fragments) CATCH_CHECK_THAT(message, Contains(f));
  }
}

CATCH_TEST_CASE("dist_env reads the real environment", "[dist_env]") {
  ::setenv("RANK", "1", 1);
  ::setenv("WORLD_SIZE", "2", 1);
  DistEnv d = dist_env();
  ::unsetenv("RANK");
  ::unsetenv("WORLD_SIZE");
  CATCH_CHECK(d.source == "torchrun");
  CATCH_CHECK(d.rank == 1);
  CATCH_CHECK(d.world_size == 2);
}
