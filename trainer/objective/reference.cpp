#include "trainer/objective/reference.h"

#include <filesystem>
#include <iostream>

#include "datasets/base/util.h"
#include "trainer/model/safetensors.h"

namespace fs = std::filesystem;

namespace ethos {

std::string weights_hash(Llama& model) {
  Hasher h;
  auto params = model->hf_parameters();
  if (model->lora_enabled()) {  // adapters count; switched off, the model is its base
    const auto lora = model->lora_parameters();
    params.insert(params.end(), lora.begin(), lora.end());
    h.update("lora").update(std::to_string(model->lora_config().scale()));
  }
  for (const auto& [name, p] : params) {
    const auto t = p.detach().to(torch::kCPU).contiguous();
    h.update(name).update(std::string(c10::toString(t.scalar_type())));
    for (int64_t d : t.sizes()) h.update(&d, sizeof d);
    h.update(t.data_ptr(), t.numel() * t.element_size());
  }
  return h.hex();
}

std::string reference_cache_key(const std::string& weights, const std::string& tokenizer, const std::string& pairs) {
  return Hasher().update(weights).update("|").update(tokenizer).update("|").update(kTemplateVersion)
      .update("|").update(pairs).hex();
}

void compute_pair_logprobs(Llama& model, const std::vector<PairExample>& pairs, int64_t batch_size,
                           const torch::Device& device, torch::Tensor& chosen, torch::Tensor& rejected) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  std::vector<torch::Tensor> c, r;
  for (size_t start = 0; start < pairs.size(); start += static_cast<size_t>(batch_size)) {
    std::vector<size_t> index;
    for (size_t i = start; i < std::min(pairs.size(), start + static_cast<size_t>(batch_size)); ++i) index.push_back(i);
    const PairLogprobs lp = pair_logprobs(model, pair_rows(pairs, index, device));
    c.push_back(lp.chosen.to(torch::kCPU));
    r.push_back(lp.rejected.to(torch::kCPU));
  }
  if (was_training) model->train();
  chosen = torch::cat(c);
  rejected = torch::cat(r);
}

namespace {

std::string tensor_checksum(const torch::Tensor& chosen, const torch::Tensor& rejected) {
  Hasher h;
  for (const auto& t : {chosen, rejected}) h.update(t.data_ptr(), t.numel() * t.element_size());
  return h.hex();
}

// The cached log-probs at `path` if they are complete and belong to `key`; otherwise a note why not.
bool read_cache(const std::string& path, const std::string& key, size_t pairs, ReferenceCacheResult& out) {
  try {
    const auto file = SafetensorsFile::read(path);
    const auto& meta = file.metadata();
    auto get = [&](const char* k) { return meta.count(k) ? meta.at(k) : std::string(); };
    auto chosen = file.get("chosen").to(torch::kFloat32).contiguous();
    auto rejected = file.get("rejected").to(torch::kFloat32).contiguous();
    if (get("key") != key) out.note = "its key is " + get("key") + ", not " + key;
    else if (chosen.dim() != 1 || chosen.size(0) != static_cast<int64_t>(pairs) || rejected.sizes() != chosen.sizes())
      out.note = "it holds " + std::to_string(chosen.numel()) + " log-probs for " + std::to_string(pairs) + " pairs";
    else if (get("checksum") != tensor_checksum(chosen, rejected)) out.note = "its checksum does not match its data";
    if (!out.note.empty()) return false;
    out.chosen = chosen;
    out.rejected = rejected;
    return true;
  } catch (const Error& e) {
    out.note = e.what();
    return false;
  }
}

}  // namespace

ReferenceCacheResult cached_reference_logprobs(const std::string& cache_dir, const std::string& key,
                                               Llama& reference, const std::vector<PairExample>& pairs,
                                               int64_t batch_size, const torch::Device& device) {
  ReferenceCacheResult out;
  out.path = (fs::path(cache_dir) / "reference" / (key + ".safetensors")).string();
  if (fs::exists(out.path)) {
    if (read_cache(out.path, key, pairs.size(), out)) {
      out.hit = true;
      return out;
    }
    std::cerr << "[ethos] reference cache " << out.path << " is unusable (" << out.note << "); recomputing it"
              << std::endl;
  }
  compute_pair_logprobs(reference, pairs, batch_size, device, out.chosen, out.rejected);
  out.chosen = out.chosen.to(torch::kFloat32).contiguous();
  out.rejected = out.rejected.to(torch::kFloat32).contiguous();
  fs::create_directories(fs::path(out.path).parent_path());
  write_safetensors(out.path, {{"chosen", out.chosen}, {"rejected", out.rejected}},
                    {{"key", key},
                     {"pairs", std::to_string(pairs.size())},
                     {"template", kTemplateVersion},
                     {"checksum", tensor_checksum(out.chosen, out.rejected)}});
  return out;
}

}  // namespace ethos
