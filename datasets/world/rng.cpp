// WorldRng: xoshiro256** seeded through splitmix64 from (seed, stream name).
#include "datasets/world/rng.h"

#include "datasets/base/util.h"

namespace ethos {
namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

WorldRng::WorldRng(uint64_t seed, std::string_view stream) {
  Hasher h;
  h.update(stream);
  uint64_t x = h.value() ^ splitmix64(seed);
  for (uint64_t& s : s_) s = splitmix64(x);
}

uint64_t WorldRng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

size_t WorldRng::below(size_t n) {
  if (n == 0) throw Error("WorldRng::below(0): nothing to choose from (internal error)");
  const uint64_t bound = static_cast<uint64_t>(n);
  const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod n: reject below it
  for (;;) {
    const uint64_t r = next();
    if (r >= threshold) return static_cast<size_t>(r % bound);
  }
}

double WorldRng::unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }

}  // namespace ethos
