// Loading a big checkpoint: time and peak memory against the checkpoint's size (README.md here).
//   bench_load write DIR [hidden layers heads kv_heads intermediate vocab]   random weights, HF format
//   bench_load load DIR            as ethos's load_model: parameters allocated without default
//                                  initialisation, shards memory-mapped, pages released per tensor
//   bench_load load-copy DIR       the path before: default-initialised parameters, each shard read
//                                  whole into memory, for comparison in the same run
//   bench_load write-bf16 SRC DST  SRC's weights rounded to bf16, written as a bf16 model directory
//   bench_load load DIR DTYPE      load_model's path into parameters of DTYPE (bfloat16: a bf16 file
//                                  is copied as it is; float32: widened, twice its size)
// Each load prints one JSON line: seconds to build the model (its default initialisation),
// seconds to read the weights, peak RSS (getrusage) and the weights' bytes on disk.
#include <sys/resource.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "datasets/base/util.h"
#include "trainer/model/llama.h"
#include "trainer/model/safetensors.h"
#include "trainer/model/weights.h"

using namespace ethos;
namespace fs = std::filesystem;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;
}
uint64_t weight_bytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") n += e.file_size();
  return n;
}
}  // namespace

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::cerr << "usage: bench_load write|load|load-copy DIR [hidden layers heads kv_heads intermediate vocab]\n";
    return 2;
  }
  const std::string mode = argv[1], dir = argv[2];
  torch::set_num_threads(2);
  if (mode == "write") {
    ModelConfig c;
    const int64_t v[6] = {2048, 22, 32, 4, 5632, 32000};  // TinyLlama-1.1B's shape
    int64_t a[6];
    for (int k = 0; k < 6; ++k) a[k] = argc > 3 + k ? std::stoll(argv[3 + k]) : v[k];
    c.hidden_size = a[0], c.num_hidden_layers = a[1], c.num_attention_heads = a[2], c.num_key_value_heads = a[3];
    c.intermediate_size = a[4], c.vocab_size = a[5];
    c.tie_word_embeddings = false;
    torch::manual_seed(0);
    Llama m(c);
    int64_t params = 0;
    for (auto& [name, p] : m->hf_parameters()) params += p.numel();
    fs::create_directories(dir);
    const double t0 = now();
    save_model(m, dir);
    std::cout << nlohmann::json{{"mode", mode}, {"parameters", params}, {"bytes", weight_bytes(dir)},
                                {"write_s", now() - t0}}.dump() << std::endl;
    return 0;
  }
  if (mode == "write-bf16") {
    if (argc < 4) throw Error("write-bf16 needs SRC and DST");
    Llama m = load_model(dir, torch::kBFloat16);
    fs::create_directories(argv[3]);
    save_model(m, argv[3]);
    std::cout << nlohmann::json{{"mode", mode}, {"bytes", weight_bytes(argv[3])}}.dump() << std::endl;
    return 0;
  }
  const std::string dtype = mode == "load" && argc > 3 ? argv[3] : "float32";
  const double t0 = now();
  // ethos allocates without LibTorch's default initialisation (load_model); the path before did it.
  Llama m(read_model_config(dir), /*default_init=*/mode != "load", model_dtype(dtype, "DTYPE"));
  const double t1 = now();
  if (mode == "load") {
    load_weights(m, dir);
  } else if (mode == "load-copy") {
    torch::NoGradGuard no_grad;
    std::map<std::string, torch::Tensor> params;
    for (auto& [name, p] : m->hf_parameters()) params.emplace(name, p);
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() != ".safetensors") continue;
      const auto file = SafetensorsFile::parse(read_file(e.path().string()), e.path().string());
      for (const auto& t : file.entries()) params.at(t.name).copy_(file.get(t.name));
    }
  } else {
    std::cerr << "unknown mode " << mode << "\n";
    return 2;
  }
  const double t2 = now();
  std::cout << nlohmann::json{{"mode", mode}, {"dtype", dtype}, {"construct_s", t1 - t0}, {"load_s", t2 - t1},
                              {"peak_rss_bytes", peak_rss_bytes()}, {"bytes", weight_bytes(dir)}}.dump() << std::endl;
  return 0;
} catch (const std::exception& e) {
  std::cerr << "bench_load: " << e.what() << "\n";
  return 1;
}
