// Helpers for tests that train tiny models: one shared tokenizer, small recipes, and readers
// for what a run writes (train.jsonl events, checkpoint weights).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace ethos::test {

// A file of the bundled tiny data set (datasets/data/tiny/).
std::string tiny_data(const std::string& file);
// One BPE tokenizer (vocab 1024, chat markers) trained from the tiny data on first use.
const std::string& shared_tokenizer();
// The body of a recipe's `data:` that trains on the bundled tiny demonstrations (seq_len 256).
std::string demo_data_yaml();
// dir/recipe.yaml: a 2-layer hidden-32 model with the shared tokenizer, its run in dir/run.
// data_yaml / train_yaml are the bodies of `data:` and `train:`; extra_yaml is appended.
std::string write_recipe(const std::string& dir, const std::string& data_yaml, const std::string& train_yaml,
                         const std::string& extra_yaml = "");
// Every event of a JSONL log with "event" == name, in order.
std::vector<nlohmann::json> events(const std::string& jsonl_path, const std::string& name);
// (step, loss) of every train event of a run.
std::vector<std::pair<int64_t, double>> logged_losses(const std::string& run_dir);
// The bytes of a checkpoint's model.safetensors.
std::string weights_of(const std::string& run_dir, int64_t step);
// The bytes of a checkpoint's optimizer.safetensors (whole AdamW moments).
std::string optimizer_of(const std::string& run_dir, int64_t step);
// The checkpoint `latest` names ("" when none).
std::string latest(const std::string& run_dir);

}  // namespace ethos::test
