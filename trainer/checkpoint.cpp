#include "trainer/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "datasets/util.h"
#include "trainer/model/weights.h"
#include "trainer/safetensors.h"

namespace fs = std::filesystem;

namespace ethos {

static const char* kStateFile = "trainer_state.json";
static const char* kOptimizerFile = "optimizer.safetensors";

nlohmann::json TrainerState::to_json() const {
  return {{"global_step", global_step}, {"stage_index", stage_index}, {"stage_name", stage_name},
          {"stage_step", stage_step},   {"stage_steps", stage_steps}, {"data_cursor", data_cursor},
          {"torch_rng", torch_rng},     {"hashes", {{"config", config_hash}, {"data", data_hash}, {"tokenizer", tokenizer_hash}}},
          {"files", files},             {"format", "ethos-checkpoint-1"}};
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
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": malformed trainer state (" + e.what() + "); the checkpoint is damaged, resume from another one.");
  }
  return s;
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

std::string save_checkpoint(const std::string& run_dir, TrainerState state, Llama& model, const AdamW* opt,
                            const std::string& tokenizer_path, const std::string& resolved_yaml, int64_t keep_last) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  fs::create_directories(root);
  const std::string name = checkpoint_name(state.global_step);
  const fs::path tmp = root / (".tmp-" + name);
  const fs::path final_dir = root / name;
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  // 1. every file into the temporary directory (each written atomically and fsynced)
  save_model(model, tmp.string());
  if (opt) {
    std::map<std::string, std::string> meta{{"step_count", std::to_string(opt->step_count())}};
    write_safetensors((tmp / kOptimizerFile).string(), opt->state_tensors(), meta);
  }
  copy_file_synced(tokenizer_path, (tmp / "tokenizer.model").string());
  write_file_atomic((tmp / "config.yaml").string(), resolved_yaml);
  state.files = nlohmann::json::object();
  for (const auto& e : fs::directory_iterator(tmp))
    state.files[e.path().filename().string()] = static_cast<int64_t>(fs::file_size(e.path()));
  write_file_atomic((tmp / kStateFile).string(), state.to_json().dump(1) + "\n");
  fsync_path(tmp.string());
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
    j = nlohmann::json::parse(read_file(state_path.string()));
  } catch (const nlohmann::json::exception& e) {
    return {state_path.string() + ": not valid JSON (" + e.what() + ")"};
  }
  if (!j.contains("files") || !j["files"].is_object()) return {state_path.string() + ": no file list"};
  for (const auto& [file, size] : j["files"].items()) {
    if (file == kStateFile) continue;
    const fs::path p = fs::path(dir) / file;
    if (!fs::exists(p)) {
      problems.push_back(p.string() + ": missing");
    } else if (static_cast<int64_t>(fs::file_size(p)) != size.get<int64_t>()) {
      problems.push_back(p.string() + ": " + std::to_string(fs::file_size(p)) + " bytes, the checkpoint recorded " +
                         std::to_string(size.get<int64_t>()) + " (truncated or modified)");
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
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
  return TrainerState::from_json(j, path);
}

void load_optimizer(AdamW& opt, const std::string& dir, int64_t step_count) {
  auto file = SafetensorsFile::read((fs::path(dir) / kOptimizerFile).string());
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& e : file.entries()) tensors[e.name] = file.get(e.name);
  opt.load_state(tensors, step_count);
}

}  // namespace ethos
