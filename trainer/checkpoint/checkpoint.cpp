#include "trainer/checkpoint/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "datasets/base/limits.h"
#include "datasets/base/util.h"
#include "datasets/tokenizer/tokenizer.h"
#include "trainer/model/weights.h"
#include "trainer/model/safetensors.h"

namespace fs = std::filesystem;

namespace ethos {

static const char* kStateFile = "trainer_state.json";
static const char* kOptimizerFile = "optimizer.safetensors";
static const char* kOptimizerIndex = "optimizer.index.json";

static std::string shard_file_name(int rank, int world) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "optimizer-rank%05d-of-%05d.safetensors", rank, world);
  return buf;
}

nlohmann::json TrainerState::to_json() const {
  nlohmann::json j = {{"global_step", global_step}, {"stage_index", stage_index}, {"stage_name", stage_name},
          {"stage_step", stage_step},   {"stage_steps", stage_steps}, {"data_cursor", data_cursor},
          {"torch_rng", torch_rng},     {"hashes", {{"config", config_hash}, {"data", data_hash}, {"tokenizer", tokenizer_hash}}},
          {"files", files},             {"world_size", world_size}, {"format", "ethos-checkpoint-1"}};
  if (preempt) j["preempt"] = true;
  if (!checksums.empty()) j["checksums"] = checksums;
  return j;
}

TrainerState TrainerState::from_json(const nlohmann::json& j, const std::string& where) {
  TrainerState s;
  try {
    s.global_step = j.at("global_step").get<int64_t>();
    s.stage_index = j.at("stage_index").get<int64_t>();
    s.stage_name = j.at("stage_name").get<std::string>();
    s.stage_step = j.at("stage_step").get<int64_t>();
    s.stage_steps = j.at("stage_steps").get<int64_t>();
    s.data_cursor = j.at("data_cursor");
    s.torch_rng = j.at("torch_rng").get<std::string>();
    const auto& h = j.at("hashes");
    s.config_hash = h.at("config").get<std::string>();
    s.data_hash = h.at("data").get<std::string>();
    s.tokenizer_hash = h.at("tokenizer").get<std::string>();
    s.files = j.at("files");
    s.world_size = j.value("world_size", int64_t{1});
    s.preempt = j.value("preempt", false);
    if (j.contains("checksums")) s.checksums = j.at("checksums");
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": malformed trainer state (" + e.what() + "); the checkpoint is damaged, resume from another one.");
  }
  return s;
}

// The state with "state_checksum": the checksum of its own compact dump without that key. The
// state holds every other file's checksum; this one covers the state itself (a flipped digit in
// the step or the data cursor would otherwise still parse).
static nlohmann::json sealed_state(const TrainerState& state) {
  nlohmann::json j = state.to_json();
  j["state_checksum"] = checksum_bytes(j.dump());
  return j;
}

// "" when the state has no seal (checkpoints written before it) or the seal matches.
static std::string state_seal_problem(nlohmann::json j, const std::string& path) {
  if (!j.is_object() || !j.contains("state_checksum")) return "";
  const nlohmann::json recorded = j["state_checksum"];
  j.erase("state_checksum");
  if (recorded.is_string() && recorded.get<std::string>() == checksum_bytes(j.dump())) return "";
  return path + ": its content does not match its own checksum (a flipped bit, a damaged copy or a hand edit)";
}

std::string checkpoint_name(int64_t global_step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%06lld", static_cast<long long>(global_step));
  return buf;
}

std::string torch_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  auto state = gen.get_state();  // uint8 tensor
  auto* p = state.data_ptr<uint8_t>();
  static const char* hexd = "0123456789abcdef";
  std::string out;
  out.reserve(static_cast<size_t>(state.numel()) * 2);
  for (int64_t i = 0; i < state.numel(); ++i) {
    out.push_back(hexd[p[i] >> 4]);
    out.push_back(hexd[p[i] & 15]);
  }
  return out;
}

void set_torch_rng_state(const std::string& hex) {
  if (hex.size() % 2) throw Error("torch RNG state in the checkpoint is malformed (odd hex length)");
  auto state = torch::empty({static_cast<int64_t>(hex.size() / 2)}, torch::kUInt8);
  auto* p = state.data_ptr<uint8_t>();
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw Error("torch RNG state in the checkpoint is malformed (non-hex character)");
  };
  for (size_t i = 0; i < hex.size() / 2; ++i) p[i] = static_cast<uint8_t>(nib(hex[2 * i]) << 4 | nib(hex[2 * i + 1]));
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

// Test hook: sleeps for the milliseconds in environment variable `name`, if set.
void debug_sleep(const char* name) {
  if (const char* v = std::getenv(name)) std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(v)));
}

static void copy_file_synced(const std::string& from, const std::string& to) {
  write_file_atomic(to, read_file(from));
}

// Checkpoint directories of a run, newest first.
static std::vector<fs::path> checkpoint_dirs(const std::string& run_dir) {
  std::vector<fs::path> dirs;
  fs::path root = fs::path(run_dir) / "checkpoints";
  if (!fs::exists(root)) return dirs;
  for (const auto& e : fs::directory_iterator(root)) {
    std::string n = e.path().filename().string();
    if (e.is_directory() && n.rfind("step_", 0) == 0) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) { return a.filename() > b.filename(); });
  return dirs;
}

std::string checkpoint_tmp_dir(const std::string& run_dir, int64_t global_step) {
  return (fs::path(run_dir) / "checkpoints" / (".tmp-" + checkpoint_name(global_step))).string();
}

std::string prepare_checkpoint_tmp(const std::string& run_dir, int64_t global_step) {
  const std::string tmp = checkpoint_tmp_dir(run_dir, global_step);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  return tmp;
}

void write_optimizer_shard(const std::string& tmp_dir, int rank, int world,
                           const std::vector<std::pair<std::string, torch::Tensor>>& slices, int64_t step_count) {
  std::map<std::string, std::string> meta{{"step_count", std::to_string(step_count)}, {"rank", std::to_string(rank)},
                                          {"world_size", std::to_string(world)}};
  write_safetensors((fs::path(tmp_dir) / shard_file_name(rank, world)).string(), slices, meta);
}

nlohmann::json optimizer_shard_index(int world, int64_t step_count,
                                     const std::vector<std::pair<std::string, torch::Tensor>>& params) {
  nlohmann::json j = {{"format", "ethos-zero1-shards-1"}, {"world_size", world}, {"step_count", step_count},
                      {"files", nlohmann::json::array()}, {"shapes", nlohmann::json::object()}};
  for (int r = 0; r < world; ++r) j["files"].push_back(shard_file_name(r, world));
  for (const auto& [name, p] : params) j["shapes"][name] = p.sizes().vec();
  return j;
}

std::map<std::string, torch::Tensor> read_optimizer_state(const std::string& dir, int64_t* step_count) {
  std::map<std::string, torch::Tensor> tensors;
  const fs::path whole = fs::path(dir) / kOptimizerFile, index_path = fs::path(dir) / kOptimizerIndex;
  if (fs::exists(whole)) {
    auto file = SafetensorsFile::read(whole.string());
    for (const auto& e : file.entries()) tensors[e.name] = file.get(e.name);
    if (step_count) *step_count = std::stoll(file.metadata().count("step_count") ? file.metadata().at("step_count") : "0");
    return tensors;
  }
  if (!fs::exists(index_path))
    throw Error(dir + ": no optimizer state (neither " + kOptimizerFile + " nor " + kOptimizerIndex + ")");
  nlohmann::json index;
  try {
    index = parse_json(read_text_file(index_path.string(), kMaxConfigBytes, "optimizer index"), index_path.string());
    std::map<std::string, int64_t> covered;
    for (const auto& [name, shape] : index.at("shapes").items())
      for (const char* suffix : {".exp_avg", ".exp_avg_sq"}) {
        tensors[name + suffix] = torch::zeros(shape.get<std::vector<int64_t>>(), torch::kFloat);
        covered[name + suffix] = 0;
      }
    // Slices "<param>@<offset>.exp_avg(_sq)" from every rank's file, copied into whole tensors.
    for (const auto& f : index.at("files")) {
      const std::string path = (fs::path(dir) / f.get<std::string>()).string();
      auto file = SafetensorsFile::read(path);
      for (const auto& e : file.entries()) {
        const bool sq = e.name.size() > 11 && e.name.compare(e.name.size() - 11, 11, ".exp_avg_sq") == 0;
        const std::string suffix = sq ? ".exp_avg_sq" : ".exp_avg";
        const std::string base = e.name.substr(0, e.name.size() - suffix.size());
        const auto at = base.rfind('@');
        const std::string key = base.substr(0, at == std::string::npos ? base.size() : at) + suffix;
        auto it = tensors.find(key);
        if (at == std::string::npos || it == tensors.end())
          throw Error(path + ": entry '" + e.name + "' is not a slice of a parameter listed in " + kOptimizerIndex);
        const int64_t offset = std::stoll(base.substr(at + 1));
        const torch::Tensor slice = file.get(e.name).reshape(-1);
        if (offset < 0 || offset + slice.numel() > it->second.numel())
          throw Error(path + ": slice '" + e.name + "' runs past the end of its parameter");
        it->second.view(-1).narrow(0, offset, slice.numel()).copy_(slice);
        covered[key] += slice.numel();
      }
    }
    for (const auto& [key, n] : covered)
      if (n != tensors.at(key).numel())
        throw Error(dir + ": the optimizer shards cover " + std::to_string(n) + " of " +
                    std::to_string(tensors.at(key).numel()) + " elements of " + key +
                    " (a shard file is missing or from another run); resume from another checkpoint");
    if (step_count) *step_count = index.at("step_count").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(index_path.string() + ": malformed optimizer index (" + e.what() + ")");
  }
  return tensors;
}

// Bytes a checkpoint needs: the newest checkpoint's files when there is one (the same model and
// optimizer), otherwise the tensors to be written plus the tokenizer.
static uint64_t checkpoint_bytes_needed(const std::string& run_dir, Llama& model, const OptimizerCheckpoint* opt,
                                        const std::string& tokenizer_path) {
  std::error_code ec;
  for (const auto& d : checkpoint_dirs(run_dir)) {
    uint64_t total = 0;
    for (const auto& f : fs::directory_iterator(d, ec)) total += f.is_regular_file(ec) ? f.file_size(ec) : 0;
    if (total > 0) return total;
  }
  uint64_t total = 0;
  for (const auto& [src, name] : tokenizer_files(tokenizer_path)) {
    const uint64_t n = fs::file_size(src, ec);
    total += ec ? 0 : n;
  }
  for (const auto& p : model->trainable_parameters()) total += p.second.nbytes();
  if (opt)
    for (const auto& t : opt->tensors) total += t.second.nbytes();
  return total;
}

// "cannot write checkpoint step_N: <why>. It needs about X; Y are free ... The previous
// checkpoint and `latest` are intact ... free space and run the same command again".
static std::string checkpoint_write_failure(const std::string& run_dir, const std::string& name, const std::string& why,
                                            Llama& model, const OptimizerCheckpoint* opt, const std::string& tokenizer_path) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  std::string msg = "cannot write checkpoint " + (root / name).string() + ": " + why + ". ";
  std::error_code ec;
  const fs::space_info space = fs::space(root, ec);
  msg += "A checkpoint needs about " + human_bytes(checkpoint_bytes_needed(run_dir, model, opt, tokenizer_path));
  if (!ec) msg += "; " + human_bytes(space.available) + " are free on the file system of " + root.string();
  msg += ". The temporary directory was removed; ";
  const auto dirs = checkpoint_dirs(run_dir);
  msg += dirs.empty() ? std::string("there is no earlier checkpoint")
                      : "the previous checkpoint " + dirs.front().filename().string() + " and `latest` are intact";
  return msg + ". Free space (or move out_dir) and run the same command again to resume.";
}

std::string save_checkpoint(const std::string& run_dir, TrainerState state, Llama& model,
                            const OptimizerCheckpoint* opt, const std::string& tokenizer_path,
                            const std::string& resolved_yaml, int64_t keep_last, bool keep_tmp) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  fs::create_directories(root);
  const std::string name = checkpoint_name(state.global_step);
  const fs::path tmp = checkpoint_tmp_dir(run_dir, state.global_step);
  const fs::path final_dir = root / name;
  // 1. every file into the temporary directory (each written atomically and fsynced). A write
  // that fails (a full disk, a quota, an I/O error) removes the temporary directory and stops
  // the run; the previous checkpoint and `latest` are untouched, so the same command resumes.
  try {
    if (!keep_tmp) prepare_checkpoint_tmp(run_dir, state.global_step);
    save_trained_weights(model, tmp.string());
    if (opt && opt->shard_index.is_null()) {
      std::map<std::string, std::string> meta{{"step_count", std::to_string(opt->step_count)}};
      write_safetensors((tmp / kOptimizerFile).string(), opt->tensors, meta);
    } else if (opt) {
      write_file_atomic((tmp / kOptimizerIndex).string(), opt->shard_index.dump(1) + "\n");
    }
    for (const auto& [src, name] : tokenizer_files(tokenizer_path)) copy_file_synced(src, (tmp / name).string());
    write_file_atomic((tmp / "config.yaml").string(), resolved_yaml);
    state.files = nlohmann::json::object();
    state.checksums = nlohmann::json::object();
    for (const auto& e : fs::directory_iterator(tmp)) {
      state.files[e.path().filename().string()] = static_cast<int64_t>(fs::file_size(e.path()));
      state.checksums[e.path().filename().string()] = checksum_file(e.path().string());
    }
    write_file_atomic((tmp / kStateFile).string(), sealed_state(state).dump(1) + "\n");
    fsync_path(tmp.string());
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw Error(checkpoint_write_failure(run_dir, name, e.what(), model, opt, tokenizer_path));
  }
  debug_sleep("ETHOS_DEBUG_SAVE_SLEEP_MS");  // tests kill the process here: mid-save

  // 2. publish: rename the directory, then point `latest` at it
  if (fs::exists(final_dir)) {  // a re-run reached the same step: replace the older copy
    const fs::path old = root / (".old-" + name);
    fs::remove_all(old);
    fs::rename(final_dir, old);
    fs::rename(tmp, final_dir);
    fs::remove_all(old);
  } else {
    fs::rename(tmp, final_dir);
  }
  fsync_path(root.string());
  write_file_atomic((root / "latest").string(), name + "\n");

  // 3. prune the oldest beyond keep_last
  if (keep_last > 0) {
    auto dirs = checkpoint_dirs(run_dir);
    for (size_t i = static_cast<size_t>(keep_last); i < dirs.size(); ++i) fs::remove_all(dirs[i]);
  }
  return final_dir.string();
}

std::vector<std::string> checkpoint_problems(const std::string& dir) {
  std::vector<std::string> problems;
  const fs::path state_path = fs::path(dir) / kStateFile;
  if (!fs::is_directory(dir)) return {dir + ": no such checkpoint directory"};
  if (!fs::exists(state_path)) return {dir + ": missing " + kStateFile};
  nlohmann::json j;
  try {
    j = parse_json(read_text_file(state_path.string(), kMaxConfigBytes, "trainer state"), state_path.string());
  } catch (const nlohmann::json::exception& e) {
    return {state_path.string() + ": not valid JSON (" + e.what() + ")"};
  } catch (const Error& e) {
    return {e.what()};
  }
  if (const std::string seal = state_seal_problem(j, state_path.string()); !seal.empty()) return {seal};
  if (!j.contains("files") || !j["files"].is_object()) return {state_path.string() + ": no file list"};
  for (const auto& [file, size] : j["files"].items()) {
    if (!size.is_number_integer() || (j.contains("checksums") && j["checksums"].contains(file) && !j["checksums"][file].is_string()))
      return {state_path.string() + ": malformed entry for " + file + " in its file list"};
    if (file.empty() || file.find('/') != std::string::npos || file == "..")
      return {state_path.string() + ": file list names \"" + file + "\", which is not a file of the checkpoint"};
    if (file == kStateFile) continue;
    const fs::path p = fs::path(dir) / file;
    if (!fs::exists(p)) {
      problems.push_back(p.string() + ": missing");
    } else if (static_cast<int64_t>(fs::file_size(p)) != size.get<int64_t>()) {
      problems.push_back(p.string() + ": " + std::to_string(fs::file_size(p)) + " bytes, the checkpoint recorded " +
                         std::to_string(size.get<int64_t>()) + " (truncated or modified)");
    } else if (j.contains("checksums") && j["checksums"].contains(file)) {
      const std::string recorded = j["checksums"][file].get<std::string>(), now = checksum_file(p.string());
      if (now != recorded)
        problems.push_back(p.string() + ": checksum " + now + ", the checkpoint recorded " + recorded +
                           " (the file changed after it was written: a flipped bit, a bad disk or a damaged copy)");
    }
  }
  return problems;
}

std::optional<std::string> find_latest_checkpoint(const std::string& run_dir) {
  for (const auto& d : checkpoint_dirs(run_dir)) {
    auto problems = checkpoint_problems(d.string());
    if (problems.empty()) return d.string();
    std::cerr << "[ethos] skipping invalid checkpoint " << d.string() << ": " << problems.front() << std::endl;
  }
  return std::nullopt;
}

TrainerState read_trainer_state(const std::string& dir) {
  const std::string path = (fs::path(dir) / kStateFile).string();
  nlohmann::json j;
  try {
    j = parse_json(read_text_file(path, kMaxConfigBytes, "trainer state"), path);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
  if (const std::string seal = state_seal_problem(j, path); !seal.empty()) throw Error(seal);
  return TrainerState::from_json(j, path);
}

}  // namespace ethos
