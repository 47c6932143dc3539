// TensorBoard event files: CRC-32C against its published check value, and files read back by an
// independent reader (tests/reference/read_tfevents.py: TFRecord framing with masked CRC-32C and
// the protobuf wire format, in plain Python) with every scalar and its step; through the binary,
// a run with log.tensorboard writes the scalars its JSONL holds, and `ethos tensorboard` rewrites
// them for any run.
#include "catch.h"
#include <filesystem>
#include <nlohmann/json.hpp>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "trainer/tensorboard.h"

namespace fs = std::filesystem;
using namespace ethos;
using namespace ethos::test;
using ethos_catch::Contains;
using json = nlohmann::json;

namespace {

json read_back(const std::string& path) {
  const auto r = run("/usr/bin/python3 " + source_dir() + "/tests/reference/read_tfevents.py " + path);
  CATCH_REQUIRE(r.status == 0);
  return json::parse(r.output);
}

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> out;
  if (fs::exists(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) out.push_back(e.path().string());
  return out;
}

// (tag, step) -> value of a read-back file.
std::map<std::pair<std::string, int64_t>, double> by_tag(const json& file) {
  std::map<std::pair<std::string, int64_t>, double> out;
  for (const auto& s : file["scalars"]) out[{s["tag"].get<std::string>(), s["step"].get<int64_t>()}] = s["value"].get<double>();
  return out;
}

}  // namespace

CATCH_TEST_CASE("CRC-32C: the published check value and the record mask") {
  const std::string digits = "123456789";
  CATCH_CHECK(crc32c(digits.data(), digits.size()) == 0xE3069283u);  // RFC 3720's CRC32C check value
  CATCH_CHECK(crc32c("", 0) == 0u);
  const uint32_t c = crc32c(digits.data(), digits.size());
  CATCH_CHECK(masked_crc32c(digits.data(), digits.size()) == static_cast<uint32_t>(((c >> 15) | (c << 17)) + 0xa282ead8u));
}

CATCH_TEST_CASE("event files are read back by an independent reader: every tag, step and value") {
  const std::string dir = fresh_dir("tensorboard_unit");
  const std::vector<Scalar> scalars = {{"train/loss", 1, 1000.5, 2.5f},
                                       {"train/loss", 2, 1001.0, 2.25f},
                                       {"train/lr", 2, 1001.0, 3e-4f},
                                       {"eval/world/likelihood_direct_mean/ood/shift=harm/misaligned_rate", 300, 1002.0, 0.125f},
                                       {"big step", int64_t{1} << 40, 1003.0, -1.0f}};
  write_text(dir + "/events.out.tfevents.1.test", tensorboard_events(scalars, 999.0));
  const json back = read_back(dir + "/events.out.tfevents.1.test");
  CATCH_CHECK(back["file_version"] == "brain.Event:2");
  CATCH_REQUIRE(back["scalars"].size() == scalars.size());
  for (size_t i = 0; i < scalars.size(); ++i) {
    CATCH_CHECK(back["scalars"][i]["tag"] == scalars[i].tag);
    CATCH_CHECK(back["scalars"][i]["step"] == scalars[i].step);
    CATCH_CHECK(back["scalars"][i]["value"].get<double>() == static_cast<double>(scalars[i].value));
    CATCH_CHECK(back["scalars"][i]["wall_time"].get<double>() == scalars[i].wall_time);
  }
  // A flipped byte is found by the reader's CRC check (the framing is what it verifies).
  std::string bytes = tensorboard_events(scalars, 999.0);
  bytes[bytes.size() / 2] ^= 0x10;
  write_text(dir + "/damaged", bytes);
  CATCH_CHECK(run("/usr/bin/python3 " + source_dir() + "/tests/reference/read_tfevents.py " + dir + "/damaged").status == 1);
}

CATCH_TEST_CASE("a run with log.tensorboard writes the JSONL's scalars; ethos tensorboard rewrites them") {
  const std::string dir = fresh_dir("tensorboard_run");
  const std::string recipe = write_recipe(
      dir, "  seq_len: 256\n  sources: [{path: " + tiny_data("tiny_demonstrations.jsonl") + ", kind: demonstration}]\n",
      "  {steps: 12, batch_size: 4, lr: 3.0e-3, checkpoint_every: 6, log_every: 2}\n",
      "eval: {heldout: [{path: " + tiny_data("tiny_heldout.jsonl") + ", kind: demonstration}]}\nlog: {tensorboard: true}\n");
  CATCH_REQUIRE(run(ethos_bin() + " train " + recipe).status == 0);
  const auto files = event_files(dir + "/run/tensorboard");
  CATCH_REQUIRE(files.size() == 1);  // each rewrite replaces the previous file
  const auto back = by_tag(read_back(files[0]));
  const auto train = events(dir + "/run/train.jsonl", "train");
  CATCH_REQUIRE(train.size() == 6);  // steps 2, 4, .., 12
  for (const auto& e : train) {
    const int64_t step = e["step"].get<int64_t>();
    for (const char* k : {"loss", "lr", "grad_norm", "tokens_per_s"})
      CATCH_CHECK(std::abs(back.at({std::string("train/") + k, step}) - e[k].get<double>()) <=
                  1e-6 * std::max(1.0, std::abs(e[k].get<double>())));  // float32 of the logged double
  }
  const auto evals = events(dir + "/run/eval.jsonl", "eval");
  CATCH_REQUIRE(evals.size() == 2);  // held-out loss at steps 6 and 12
  for (const auto& e : evals)
    CATCH_CHECK(std::abs(back.at({"eval/heldout/id/loss", e["step"].get<int64_t>()}) - e["value"].get<double>()) < 1e-5);
  CATCH_CHECK(back.size() == train.size() * (train[0].size() - 4) + evals.size());  // numbers of each event but step, stage_step

  // The resolved config shows the setting; the config hash ignores it (resume with it switched off).
  CATCH_CHECK_THAT(read_file(dir + "/run/config.yaml"), Contains("tensorboard: true"));
  auto again = run(ethos_bin() + " train " + recipe + " log.tensorboard=false 2>&1");
  CATCH_CHECK(again.status == 0);
  CATCH_CHECK_THAT(again.output, !Contains("refusing"));

  // ethos tensorboard: any run (or a tree of runs), from its JSONL.
  fs::remove_all(dir + "/run/tensorboard");
  auto rewrite = run(ethos_bin() + " tensorboard " + dir + " 2>&1");
  CATCH_REQUIRE(rewrite.status == 0);
  const auto rewritten = event_files(dir + "/run/tensorboard");
  CATCH_REQUIRE(rewritten.size() == 1);
  CATCH_CHECK(by_tag(read_back(rewritten[0])) == back);
  auto nothing = run(ethos_bin() + " tensorboard " + dir + "/run/checkpoints 2>&1");
  CATCH_CHECK(nothing.status == 1);
  CATCH_CHECK_THAT(nothing.output, Contains("train.jsonl"));
}
