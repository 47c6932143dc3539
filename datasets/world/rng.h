// Random numbers for the scenario world generator. Identical on every platform and standard
// library (std:: distributions are not), and split into named streams: each output file draws
// from its own stream, so changing how many items one file gets never shifts another's draws.
#pragma once
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace ethos {

class WorldRng {
 public:
  // A stream: the seed and the stream's name are mixed (FNV-1a + splitmix64) into the state.
  WorldRng(uint64_t seed, std::string_view stream);

  uint64_t next();                   // xoshiro256**
  size_t below(size_t n);            // uniform in [0, n); n must be > 0 (rejection, no modulo bias)
  double unit();                     // uniform in [0, 1), 53 bits
  bool chance(double p) { return unit() < p; }

  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }
  template <class T>
  void shuffle(std::vector<T>& v) {  // Fisher-Yates
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  uint64_t s_[4];
};

}  // namespace ethos
