#include "trainer/checkpoint/stage_cache.h"

#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "datasets/base/util.h"
#include "trainer/model/weights.h"
#include "trainer/objective/reference.h"

namespace fs = std::filesystem;

namespace ethos {

std::string shared_stage_key(const Recipe& r, size_t stage_index, Llama& start_weights,
                             const std::string& tokenizer_hash, int world) {
  Recipe only = r;  // the stage alone, without what names or places the run
  only.name = "shared-stage";
  only.eval = {};
  only.stages = {r.stages.at(stage_index)};
  // The stage's own seed, not the recipe's: stages that share a base seed share the entry
  // whatever the later stages' seed is (an explicit seed equal to the recipe's is the same entry).
  only.seed = r.stage_seed(stage_index);
  only.stages[0].seed = -1;
  only.rebase = {};  // the paths are already rebased, and their content is hashed below
  // Where the tokenizer and the data lie does not change what is trained: their content enters
  // the key instead (the tokenizer's hash, each source's file hash), so the same stage trained
  // from another directory (e.g. `ethos ablate --out`, whose worlds are generated there) is found.
  only.tokenizer.path.clear();
  only.tokenizer.train_files.clear();
  for (auto& src : only.stages[0].data.sources) src.path.clear();
  Hasher h;
  h.update(config_hash(only, world)).update("|").update(std::to_string(stage_index)).update("|");
  h.update(weights_hash(start_weights)).update("|").update(tokenizer_hash).update("|").update(kTemplateVersion);
  for (const auto& src : r.stages[stage_index].data.sources) h.update("|").update(hash_file(src.path));
  return h.hex();
}

std::optional<std::string> find_shared_stage(const std::string& cache_dir, const std::string& key) {
  const fs::path dir = fs::path(cache_dir) / "stages" / key;
  if (!(fs::exists(dir / "stage.json") && (fs::exists(dir / "config.json") || is_adapter_dir(dir.string()))))
    return std::nullopt;
  // Every file the entry recorded must still have its checksum; a damaged entry is set aside
  // (renamed, kept for inspection) so that the stage is trained and published again.
  const auto info = nlohmann::json::parse(read_file((dir / "stage.json").string()), nullptr, /*allow_exceptions=*/false);
  std::string problem;
  if (info.is_discarded() || !info.is_object()) problem = "stage.json is not valid JSON";
  else if (info.contains("checksums"))
    for (const auto& [file, sum] : info["checksums"].items()) {
      const fs::path f = dir / file;
      if (!fs::exists(f)) problem = f.string() + " is missing";
      else if (checksum_file(f.string()) != sum.get<std::string>()) problem = f.string() + " does not match its checksum";
      if (!problem.empty()) break;
    }
  if (problem.empty()) return dir.string();
  const fs::path aside = dir.parent_path() / (".damaged-" + key + "-" + unique_suffix());
  std::error_code ec;
  fs::rename(dir, aside, ec);
  std::cerr << "[ethos] warning: the cached shared stage " << dir.string() << " is damaged (" << problem
            << "); set aside as " << aside.string() << ", training the stage again" << std::endl;
  return std::nullopt;
}

void store_shared_stage(const std::string& cache_dir, const std::string& key, Llama& model,
                        const nlohmann::json& info) {
  const fs::path root = fs::path(cache_dir) / "stages";
  const fs::path tmp = root / (".tmp-" + key + "-" + unique_suffix());
  fs::create_directories(tmp);
  save_trained_weights(model, tmp.string());
  nlohmann::json with_sums = info;
  for (const auto& e : fs::directory_iterator(tmp)) with_sums["checksums"][e.path().filename().string()] = checksum_file(e.path().string());
  write_file_atomic((tmp / "stage.json").string(), with_sums.dump(1) + "\n");  // written last: marks it complete
  fsync_path(tmp.string());
  std::error_code ec;
  fs::rename(tmp, root / key, ec);  // another run may have published the same stage first: keep that one
  if (ec) fs::remove_all(tmp);
  fsync_path(root.string());
}

}  // namespace ethos
