// Reads the rank layout of a multi-process job from torchrun-style or Slurm variables
// (see dist_env.h for the rules), and expands Slurm's compressed host and task lists.
#include "trainer/dist/env.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "datasets/base/util.h"

namespace ethos {
namespace {

constexpr size_t kMaxHosts = 1000000;  // guards against "n[0-999999999]" eating memory

using GetEnv = std::function<const char*(const char*)>;

const std::vector<const char*> kTorchrunVars = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"};

// The variable names one source uses for the four numbers, for error messages.
struct VarNames {
  const char* rank;
  const char* world;
  const char* local_rank;
  const char* local_world;
};

bool is_set(const GetEnv& env, const char* name) { return env(name) != nullptr; }

// A whole decimal integer in int range; anything else is an Error naming the variable.
int parse_int(const char* name, const std::string& value) {
  size_t start = (!value.empty() && value[0] == '-') ? 1 : 0;
  bool digits = value.size() > start && value.size() - start <= 9;
  for (size_t i = start; digits && i < value.size(); ++i) digits = value[i] >= '0' && value[i] <= '9';
  if (!digits)
    throw Error(std::string(name) + "=\"" + value + "\" is not an integer: set " + name +
                " to a whole number (for example " + name + "=0) or unset it");
  return std::atoi(value.c_str());
}

int int_var(const GetEnv& env, const char* name) { return parse_int(name, env(name)); }

// Every name in `required` must be set once any of `group` is; the Error lists the set and missing ones.
void require_all(const GetEnv& env, const std::vector<const char*>& group, const std::vector<const char*>& required,
                 const std::string& what, const std::string& fix) {
  std::vector<std::string> missing, present;
  for (const char* n : required)
    if (!is_set(env, n)) missing.emplace_back(n);
  for (const char* n : group)
    if (is_set(env, n)) present.emplace_back(n);
  if (!missing.empty())
    throw Error(what + " is incomplete: " + join(present) + (present.size() == 1 ? " is" : " are") +
                " set but " + join(missing) + (missing.size() == 1 ? " is" : " are") + " not; " + fix);
}

std::string show(const char* name, int value) { return std::string(name) + "=" + std::to_string(value); }

// Ranks, sizes and their relations; `n` says which variables they came from.
void check_layout(const DistEnv& d, const VarNames& n) {
  if (d.world_size <= 0)
    throw Error(show(n.world, d.world_size) + " must be at least 1: set it to the number of processes in the job");
  if (d.rank < 0 || d.rank >= d.world_size)
    throw Error(show(n.rank, d.rank) + " is outside 0.." + std::to_string(d.world_size - 1) + " (" +
                show(n.world, d.world_size) + "): set " + n.rank + " below " + n.world + ", or " + n.world +
                " to the number of processes");
  if (d.local_world_size <= 0)
    throw Error(show(n.local_world, d.local_world_size) +
                " must be at least 1: set it to the number of processes on this node");
  if (d.local_world_size > d.world_size)
    throw Error(show(n.local_world, d.local_world_size) + " is larger than " + show(n.world, d.world_size) +
                ": a node cannot hold more processes than the whole job; fix one of the two");
  if (d.local_rank < 0 || d.local_rank >= d.local_world_size)
    throw Error(show(n.local_rank, d.local_rank) + " is outside 0.." + std::to_string(d.local_world_size - 1) +
                " (" + show(n.local_world, d.local_world_size) + "): set " + n.local_rank + " below " +
                n.local_world + ", or " + n.local_world + " to the number of processes on this node");
}

int parse_port(const char* name, const std::string& value) {
  int port = parse_int(name, value);
  if (port < 1 || port > 65535)
    throw Error(show(name, port) + " is not a TCP port: set it to a free port in 1..65535 (for example 29500)");
  return port;
}

// MASTER_ADDR / MASTER_PORT override whatever the source derived.
void apply_master_overrides(const GetEnv& env, DistEnv& d) {
  if (const char* addr = env("MASTER_ADDR")) {
    if (std::string(addr).empty())
      throw Error("MASTER_ADDR is set but empty: set it to the host name or IP of rank 0, or unset it");
    d.master_addr = addr;
  }
  if (const char* port = env("MASTER_PORT")) d.master_port = parse_port("MASTER_PORT", port);
}

DistEnv from_torchrun(const GetEnv& env) {
  const std::string fix = "set RANK and WORLD_SIZE together (and LOCAL_RANK with LOCAL_WORLD_SIZE), or unset all "
                          "of them to run a single process";
  require_all(env, kTorchrunVars, {"RANK", "WORLD_SIZE"}, "the torchrun-style environment", fix);
  DistEnv d;
  d.source = "torchrun";
  d.rank = int_var(env, "RANK");
  d.world_size = int_var(env, "WORLD_SIZE");
  if (is_set(env, "LOCAL_RANK") || is_set(env, "LOCAL_WORLD_SIZE")) {
    require_all(env, kTorchrunVars, {"LOCAL_RANK", "LOCAL_WORLD_SIZE"}, "the torchrun-style environment", fix);
    d.local_rank = int_var(env, "LOCAL_RANK");
    d.local_world_size = int_var(env, "LOCAL_WORLD_SIZE");
  } else {  // one node: local ranks are the global ones
    d.local_rank = d.rank;
    d.local_world_size = d.world_size;
  }
  check_layout(d, {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"});
  return d;
}

// Tasks on this node: SLURM_NTASKS_PER_NODE, else this node's entry of SLURM_TASKS_PER_NODE.
int slurm_local_world_size(const GetEnv& env) {
  if (is_set(env, "SLURM_NTASKS_PER_NODE")) return int_var(env, "SLURM_NTASKS_PER_NODE");
  const char* list = env("SLURM_TASKS_PER_NODE");
  if (!list)
    throw Error("the Slurm environment has SLURM_PROCID but neither SLURM_NTASKS_PER_NODE nor "
                "SLURM_TASKS_PER_NODE: start the ranks with srun, which sets them");
  std::vector<int> counts = expand_tasks_per_node(list);
  if (counts.size() == 1) return counts[0];
  if (!is_set(env, "SLURM_NODEID"))
    throw Error(std::string("SLURM_TASKS_PER_NODE=\"") + list + "\" lists several nodes but SLURM_NODEID is not "
                "set: start the ranks with srun, or set SLURM_NTASKS_PER_NODE");
  int node = int_var(env, "SLURM_NODEID");
  if (node < 0 || node >= static_cast<int>(counts.size()))
    throw Error(show("SLURM_NODEID", node) + " has no entry in SLURM_TASKS_PER_NODE=\"" + list + "\" (" +
                std::to_string(counts.size()) + " nodes): the two come from different jobs; start the ranks with srun");
  return counts[node];
}

DistEnv from_slurm(const GetEnv& env) {
  const std::vector<const char*> needed = {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_JOB_NODELIST"};
  require_all(env, needed, needed, "the Slurm environment",
              "start the ranks with srun inside the allocation, which sets all of them");
  DistEnv d;
  d.source = "slurm";
  d.rank = int_var(env, "SLURM_PROCID");
  d.world_size = int_var(env, "SLURM_NTASKS");
  // The batch script itself (sbatch, salloc's shell) has the job's SLURM_NTASKS but is one process
  // and has no step id: joining would wait for ranks that never start.
  if (d.world_size > 1 && is_set(env, "SLURM_JOB_ID") && !is_set(env, "SLURM_STEP_ID") && !is_set(env, "SLURM_STEPID"))
    throw Error("this is the batch script of Slurm job " + std::string(env("SLURM_JOB_ID")) + " (SLURM_NTASKS=" +
                std::to_string(d.world_size) + ", no SLURM_STEP_ID), one process, not " + std::to_string(d.world_size) +
                " ranks: start the ranks with srun, e.g. `srun ethos train RECIPE`");
  d.local_rank = int_var(env, "SLURM_LOCALID");
  d.local_world_size = slurm_local_world_size(env);
  const char* local_world_name = is_set(env, "SLURM_NTASKS_PER_NODE") ? "SLURM_NTASKS_PER_NODE" : "SLURM_TASKS_PER_NODE";
  check_layout(d, {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", local_world_name});

  std::string nodelist = trim(env("SLURM_JOB_NODELIST"));
  if (nodelist.empty())
    throw Error("SLURM_JOB_NODELIST is empty: the master address comes from its first host; run inside a Slurm "
                "allocation or set MASTER_ADDR");
  try {
    d.master_addr = expand_nodelist(nodelist).front();
  } catch (const Error& e) {
    throw Error(std::string("SLURM_JOB_NODELIST: ") + e.what());
  }
  if (const char* job = env("SLURM_JOB_ID")) {
    int id = parse_int("SLURM_JOB_ID", job);
    if (id < 0) throw Error(show("SLURM_JOB_ID", id) + " is negative: set MASTER_PORT to choose the port yourself");
    d.master_port = 20000 + id % 20000;
  }
  return d;
}

// ---- node lists ------------------------------------------------------------------------

// Recursive-descent parser for list := name (',' name)*; name := (text | '[' ranges ']')+;
// ranges := range (',' range)*; range := digits ('-' digits)?.
class NodelistParser {
 public:
  explicit NodelistParser(const std::string& s) : s_(s) {}

  std::vector<std::string> parse() {
    if (s_.empty()) fail("the list is empty", 0);
    std::vector<std::string> hosts;
    while (true) {
      for (auto& h : parse_name()) add(hosts, std::move(h));
      if (i_ == s_.size()) return hosts;
      ++i_;  // the ',' between names
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what, size_t pos) const {
    throw Error("malformed node list \"" + s_ + "\": " + what + " at position " + std::to_string(pos) +
                " (0-based); expected a form like gpu[01-03,07],cpu5");
  }

  void add(std::vector<std::string>& out, std::string host) const {
    if (out.size() >= kMaxHosts) fail("more than " + std::to_string(kMaxHosts) + " hosts", 0);
    out.push_back(std::move(host));
  }

  // One name with its bracket groups expanded (several groups give their product).
  std::vector<std::string> parse_name() {
    size_t start = i_;
    std::vector<std::string> names{""};
    while (i_ < s_.size() && s_[i_] != ',') {
      char c = s_[i_];
      if (c == '[') {
        std::vector<std::string> suffixes = parse_group();
        std::vector<std::string> product;
        for (const auto& n : names)
          for (const auto& sfx : suffixes) add(product, n + sfx);
        names = std::move(product);
      } else if (c == ']') {
        fail("']' without a matching '['", i_);
      } else if (c == ' ' || c == '\t' || c == '\n') {
        fail("whitespace", i_);
      } else {
        for (auto& n : names) n += c;
        ++i_;
      }
    }
    if (i_ == start) fail("an empty host name", i_);
    return names;
  }

  // '[' ranges ']' -> the numbers as strings, each padded to its range's low-bound width.
  std::vector<std::string> parse_group() {
    size_t open = i_++;
    std::vector<std::string> out;
    while (true) {
      std::string lo = parse_number(open);
      std::string hi = lo;
      if (i_ < s_.size() && s_[i_] == '-') {
        ++i_;
        hi = parse_number(open);
      }
      long a = std::stol(lo), b = std::stol(hi);
      if (b < a) fail("range " + lo + "-" + hi + " runs backwards", i_ - hi.size());
      for (long v = a; v <= b; ++v) {
        std::string digits = std::to_string(v);
        if (digits.size() < lo.size()) digits.insert(0, lo.size() - digits.size(), '0');
        add(out, std::move(digits));
      }
      if (i_ == s_.size()) fail("'[' is never closed", open);
      if (s_[i_] == ']') {
        ++i_;
        return out;
      }
      if (s_[i_] != ',') fail(std::string("unexpected '") + s_[i_] + "' inside brackets", i_);
      ++i_;
    }
  }

  std::string parse_number(size_t open) {
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    if (i_ == start) {
      if (i_ == s_.size()) fail("'[' is never closed", open);
      fail("expected a number inside brackets", i_);
    }
    if (i_ - start > 9) fail("a number longer than 9 digits", start);
    return s_.substr(start, i_ - start);
  }

  const std::string& s_;
  size_t i_ = 0;
};

}  // namespace

std::vector<std::string> expand_nodelist(const std::string& list) { return NodelistParser(list).parse(); }

std::vector<int> expand_tasks_per_node(const std::string& list) {
  auto fail = [&](const std::string& what) -> Error {
    return Error("malformed SLURM_TASKS_PER_NODE \"" + list + "\": " + what +
                 "; expected counts like 4(x2),3 (4 tasks on each of 2 nodes, then 3)");
  };
  if (trim(list).empty()) throw fail("it is empty");
  std::vector<int> counts;
  for (const std::string& item : split(list, ',')) {
    std::string count = item, repeat = "1";
    size_t paren = item.find('(');
    if (paren != std::string::npos) {
      if (item.size() < paren + 4 || item.compare(paren, 2, "(x") != 0 || item.back() != ')')
        throw fail("\"" + item + "\" is not of the form N(xM)");
      count = item.substr(0, paren);
      repeat = item.substr(paren + 2, item.size() - paren - 3);
    }
    int n = 0, r = 0;
    try {
      n = parse_int("task count", count);
      r = parse_int("repeat count", repeat);
    } catch (const Error&) {
      throw fail("\"" + item + "\" is not a number of tasks");
    }
    if (n <= 0 || r <= 0) throw fail("\"" + item + "\" has a count below 1");
    if (counts.size() + r > kMaxHosts) throw fail("more than " + std::to_string(kMaxHosts) + " nodes");
    counts.insert(counts.end(), r, n);
  }
  return counts;
}

DistEnv dist_env_from(const GetEnv& env) {
  DistEnv d;
  bool torchrun = false;
  for (const char* n : kTorchrunVars) torchrun = torchrun || is_set(env, n);
  if (torchrun) d = from_torchrun(env);
  else if (is_set(env, "SLURM_PROCID")) d = from_slurm(env);
  apply_master_overrides(env, d);
  return d;
}

DistEnv dist_env() {
  return dist_env_from([](const char* name) -> const char* { return std::getenv(name); });
}

}  // namespace ethos
