// The layout holds: each library folder includes only from its own floor and the floors below
//   datasets (0, no torch)  <-  trainer (1)  <-  eval (2)  <-  launch (3)
// and the repository points to nothing outside itself. The checker is run on the real tree and
// on a small made-up tree with one violation of each kind, so the test is known to fail.
#include "catch.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/helpers.h"

namespace fs = std::filesystem;
using ethos_catch::Contains;

namespace {

const std::vector<std::string> kFloors = {"datasets", "trainer", "eval", "launch"};

int floor_of(const std::string& top) {
  for (size_t i = 0; i < kFloors.size(); ++i)
    if (kFloors[i] == top) return static_cast<int>(i);
  return -1;
}

std::string first_component(const std::string& rel) { return rel.substr(0, rel.find('/')); }

// Every violation under `root`, one line each: "file:line: what".
std::vector<std::string> layout_violations(const fs::path& root) {
  static const std::regex quoted(R"(^\s*#\s*include\s*"([^"]+)\")");
  static const std::regex torch(R"(^\s*#\s*include\s*<(torch|ATen|c10|caffe2)/)");
  std::vector<std::string> out;
  for (const auto& top : kFloors) {
    if (!fs::is_directory(root / top)) continue;
    for (const auto& e : fs::recursive_directory_iterator(root / top)) {
      const std::string ext = e.path().extension().string();
      if (!e.is_regular_file() || (ext != ".h" && ext != ".cpp" && ext != ".hpp" && ext != ".cc")) continue;
      const std::string rel = fs::relative(e.path(), root).string();
      const int own = floor_of(top);
      std::ifstream in(e.path());
      std::string line;
      for (int n = 1; std::getline(in, line); ++n) {
        std::smatch m;
        const std::string at = rel + ":" + std::to_string(n) + ": ";
        if (std::regex_search(line, m, quoted)) {
          const int target = floor_of(first_component(m[1].str()));
          if (target > own)
            out.push_back(at + top + "/ includes \"" + m[1].str() + "\" from the floor above it (" + kFloors[target] +
                          "/); move the shared code down to " + top + "/ or the code up");
        }
        if (own == 0 && std::regex_search(line, m, torch))
          out.push_back(at + "datasets/ includes torch (<" + m[1].str() + "/...>); datasets/ is the torch-free floor");
      }
    }
  }
  return out;
}

// Text files that point outside the repository (a sibling checkout, an absolute work path, or
// documents that only exist outside it). The needles are assembled so this file is no match.
std::vector<std::string> outside_references(const fs::path& root) {
  const std::vector<std::string> needles = {std::string("../") + "shared", std::string("/work") + "/",
                                            std::string("design") + ".md", std::string("science") + ".md"};
  const std::vector<std::string> exts = {".h", ".cpp", ".md", ".sh", ".py", ".yaml", ".txt", ".json", ""};
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const std::string name = it->path().filename().string();
    // Build and run outputs at the top (build*/, runs/, data/, test-tmp/) are not the repository's
    // files; datasets/data/ below is, and is read.
    const bool output = it.depth() == 0 && (name.rfind("build", 0) == 0 || name == "runs" || name == "data" ||
                                            name == "test-tmp");
    if (it->is_directory() && (output || name == ".git" || name == "__pycache__")) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    const std::string ext = it->path().extension().string();
    if (std::find(exts.begin(), exts.end(), ext) == exts.end()) continue;
    if (ext.empty() && name != "run") continue;  // extension-less: only .ci/run
    if (ext == ".json" && fs::file_size(it->path()) > (1 << 20)) continue;
    std::ifstream in(it->path());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n)
      for (const auto& needle : needles)
        if (line.find(needle) != std::string::npos)
          out.push_back(fs::relative(it->path(), root).string() + ":" + std::to_string(n) + ": refers to \"" + needle +
                        "\", which is not in the repository");
  }
  return out;
}

std::string lines(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

}  // namespace

CATCH_TEST_CASE("layout: no folder includes from a floor above it, datasets/ has no torch") {
  const auto v = layout_violations(ethos::test::source_dir());
  CATCH_INFO(lines(v));
  CATCH_CHECK(v.empty());
}

CATCH_TEST_CASE("layout: nothing in the repository points outside it") {
  const auto v = outside_references(ethos::test::source_dir());
  CATCH_INFO(lines(v));
  CATCH_CHECK(v.empty());
}

CATCH_TEST_CASE("layout: the checks find each kind of violation in a made-up tree") {
  const fs::path root = fs::path(ethos::test::fresh_dir("layout_bad"));
  write(root / "datasets/base/ok.h", "#include \"datasets/base/util.h\"\n#include <vector>\n");
  write(root / "datasets/world/up.cpp", "#include <string>\n#include \"trainer/config.h\"\n");
  write(root / "datasets/torchy.h", "  #include <torch/torch.h>\n");
  write(root / "trainer/loop.cpp", "#include \"datasets/base/util.h\"\n#include \"eval/score/metrics.h\"\n");
  write(root / "eval/x.cpp", "#include \"trainer/trainer.h\"\n#include <torch/torch.h>\n#include \"launch/ablate.h\"\n");
  write(root / "launch/main.cpp", "#include \"eval/report/report.h\"\n#include \"datasets/base/util.h\"\n");
  write(root / "README.md", "See ../" "shared/notes for more.\n");
  write(root / "datasets/data/tiny/make.py", "# from /" "work/x\n");
  write(root / "data/generated.md", "see ../" "shared\n");  // a top-level output: not read
  const auto v = layout_violations(root);
  CATCH_INFO(lines(v));
  CATCH_REQUIRE(v.size() == 4);
  const std::string all = lines(v);
  CATCH_CHECK_THAT(all, Contains("datasets/world/up.cpp:2: datasets/ includes \"trainer/config.h\""));
  CATCH_CHECK_THAT(all, Contains("datasets/torchy.h:1: datasets/ includes torch"));
  CATCH_CHECK_THAT(all, Contains("trainer/loop.cpp:2: trainer/ includes \"eval/score/metrics.h\""));
  CATCH_CHECK_THAT(all, Contains("eval/x.cpp:3: eval/ includes \"launch/ablate.h\""));
  const auto o = outside_references(root);
  CATCH_INFO(lines(o));
  CATCH_REQUIRE(o.size() == 2);
  CATCH_CHECK_THAT(lines(o), Contains("README.md:1: refers to"));
  CATCH_CHECK_THAT(lines(o), Contains("datasets/data/tiny/make.py:1: refers to"));
}
