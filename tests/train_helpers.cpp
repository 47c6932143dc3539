#include "tests/train_helpers.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/trainer.h"

namespace ethos::test {

std::string tiny_data(const std::string& file) { return source_dir() + "/datasets/data/tiny/" + file; }

std::string demo_data_yaml() {
  return "  seq_len: 256\n  sources: [{path: " + tiny_data("tiny_demonstrations.jsonl") + ", kind: demonstration}]\n";
}

const std::string& shared_tokenizer() {
  static const std::string path = [] {
    const std::string dir = fresh_dir("train_tokenizer_" + std::to_string(::getpid()));
    TokenizerSection t;
    t.path = dir + "/tokenizer.model";
    t.train_files = {tiny_data("tiny_documents.jsonl"), tiny_data("tiny_demonstrations.jsonl"),
                     tiny_data("tiny_explained.jsonl")};
    t.vocab_size = 1024;
    return prepare_tokenizer(t, 1);
  }();
  return path;
}

std::string write_recipe(const std::string& dir, const std::string& data_yaml, const std::string& train_yaml,
                         const std::string& extra_yaml) {
  std::ostringstream y;
  y << "name: t\nseed: 0\nthreads: 1\nout_dir: " << dir << "/run\n"
    << "tokenizer: {path: " << shared_tokenizer() << "}\n"
    << "model:\n  arch: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4,"
    << " num_key_value_heads: 2}\n"
    << "data:\n" << data_yaml << "train:\n" << train_yaml << extra_yaml;
  const std::string path = dir + "/recipe.yaml";
  write_text(path, y.str());
  return path;
}

std::vector<nlohmann::json> events(const std::string& jsonl_path, const std::string& name) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(jsonl_path));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.value("event", "") == name) out.push_back(j);
  }
  return out;
}

std::vector<std::pair<int64_t, double>> logged_losses(const std::string& run_dir) {
  std::vector<std::pair<int64_t, double>> out;
  for (const auto& j : events(run_dir + "/train.jsonl", "train"))
    out.emplace_back(j["step"].get<int64_t>(), j["loss"].get<double>());
  return out;
}

std::string weights_of(const std::string& run_dir, int64_t step) {
  return read_file(run_dir + "/checkpoints/" + checkpoint_name(step) + "/model.safetensors");
}

std::string optimizer_of(const std::string& run_dir, int64_t step) {
  return read_file(run_dir + "/checkpoints/" + checkpoint_name(step) + "/optimizer.safetensors");
}

std::string latest(const std::string& run_dir) {
  std::ifstream in(run_dir + "/checkpoints/latest");
  std::string s;
  in >> s;
  return s;
}

}  // namespace ethos::test
