// Packing: records -> tokenized examples -> fixed-length rows drawn from a weighted mixture.
// Randomness is stateless: the k-th mixture draw and each (source, epoch) shuffle are pure
// functions of the seed (splitmix64 hashes), so a DataCursor pins the stream down exactly.
#include "datasets/sampling/packing.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "datasets/base/util.h"

namespace ethos {

namespace {

// splitmix64's finaliser: a well-mixed 64-bit hash of x.
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
uint64_t mix(uint64_t a, uint64_t b) { return splitmix64(a ^ splitmix64(b)); }
double to_unit(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }  // [0, 1)

// Separate streams for the two uses of the seed.
constexpr uint64_t kMixtureStream = 0x6d6978747572ULL;  // "mixture"
constexpr uint64_t kShuffleStream = 0x73687566666cULL;  // "shuffl"

// Fisher-Yates with a splitmix64 sequence seeded from (seed, source, epoch).
std::vector<uint32_t> shuffled_order(size_t n, uint64_t seed, size_t source, uint64_t epoch) {
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  uint64_t state = mix(mix(mix(seed, kShuffleStream), source), epoch);
  for (size_t i = n; i > 1; --i) {
    state = splitmix64(state);
    std::swap(order[i - 1], order[state % i]);
  }
  return order;
}

TokenizedExample slice(const TokenizedExample& ex, size_t begin, size_t end) {
  TokenizedExample out;
  out.tokens.assign(ex.tokens.begin() + begin, ex.tokens.begin() + end);
  out.weights.assign(ex.weights.begin() + begin, ex.weights.begin() + end);
  out.span.assign(ex.span.begin() + begin, ex.span.begin() + end);
  out.weights[0] = 0.0f;  // the first token of a chunk is input only (the previous chunk predicts it)
  return out;
}

void check_seq_len(int seq_len) {
  if (seq_len < 2) throw Error("packing: seq_len must be at least 2, got " + std::to_string(seq_len));
}

// A non-negative integer field of a cursor's JSON.
uint64_t cursor_count(const nlohmann::json& v, const std::string& field) {
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0))
    throw Error("data cursor: field " + field + ": expected a non-negative integer, got " +
                (v.is_number_integer() ? v.dump() : v.type_name()));
  return v.get<uint64_t>();
}

void check_keys(const nlohmann::json& j, const std::vector<std::string>& keys, const std::string& where) {
  if (!j.is_object()) throw Error("data cursor: " + where + ": expected an object, got " + j.type_name());
  for (const auto& k : keys)
    if (!j.contains(k)) throw Error("data cursor: " + where + ": missing field \"" + k + "\"");
  for (const auto& item : j.items())
    if (std::find(keys.begin(), keys.end(), item.key()) == keys.end())
      throw Error("data cursor: " + where + ": unknown field \"" + item.key() + "\"");
}

}  // namespace

std::vector<TokenizedExample> tokenize_records(const std::vector<Record>& records, const ChatTemplate& tmpl,
                                               const TemplateOptions& opt, int seq_len) {
  check_seq_len(seq_len);
  const size_t max_len = static_cast<size_t>(seq_len) + 1;
  std::vector<TokenizedExample> out;
  size_t too_long = 0, longest = 0;
  std::string first_too_long;
  for (const Record& r : records) {
    TokenizedExample ex = tmpl.render(r, opt);
    if (r.kind != RecordKind::document && ex.tokens.size() > max_len) {
      // Cutting a conversation cuts its answer (the supervised part comes last): refuse.
      if (too_long++ == 0) first_too_long = r.where + " (" + std::to_string(ex.tokens.size()) + " tokens)";
      longest = std::max(longest, ex.tokens.size());
      continue;
    }
    if (r.kind != RecordKind::document || ex.tokens.size() <= max_len) {
      out.push_back(std::move(ex));
      continue;
    }
    // Chunks overlap by one token, so every token after the first is a target exactly once.
    for (size_t begin = 0; begin + 1 < ex.tokens.size(); begin += max_len - 1)
      out.push_back(slice(ex, begin, std::min(ex.tokens.size(), begin + max_len)));
  }
  if (too_long > 0)
    throw Error(std::to_string(too_long) + " of " + std::to_string(records.size()) +
                " examples do not fit a row of data.seq_len=" + std::to_string(seq_len) +
                " and would lose their answers to truncation; first: " + first_too_long +
                ". Raise data.seq_len to at least " + std::to_string(longest - 1) + " or shorten those examples.");
  return out;
}

double PackedBatch::weight_sum() const {
  double s = 0;
  for (float w : weights) s += w;
  return s;
}

nlohmann::json DataCursor::to_json() const {
  nlohmann::json src = nlohmann::json::array();
  for (const auto& s : sources) src.push_back({{"epoch", s.epoch}, {"index", s.index}});
  return {{"drawn", drawn}, {"sources", src}, {"pending", pending}};
}

DataCursor DataCursor::from_json(const nlohmann::json& j) {
  check_keys(j, {"drawn", "sources", "pending"}, "top level");
  DataCursor c;
  c.drawn = cursor_count(j.at("drawn"), "\"drawn\"");
  const auto& p = j.at("pending");
  if (!p.is_number_integer() || (!p.is_number_unsigned() && p.get<int64_t>() < -1))
    throw Error("data cursor: field \"pending\": expected a source index or -1, got " + p.dump());
  c.pending = p.get<int64_t>();
  const auto& src = j.at("sources");
  if (!src.is_array()) throw Error(std::string("data cursor: field \"sources\": expected an array, got ") + src.type_name());
  for (size_t i = 0; i < src.size(); ++i) {
    const std::string where = "\"sources\"[" + std::to_string(i) + "]";
    check_keys(src[i], {"epoch", "index"}, where);
    c.sources.push_back({cursor_count(src[i].at("epoch"), where + ".epoch"), cursor_count(src[i].at("index"), where + ".index")});
  }
  return c;
}

PackedStream::PackedStream(std::vector<DataSource> sources, int seq_len, uint64_t seed)
    : sources_(std::move(sources)), seq_len_(seq_len), seed_(seed) {
  check_seq_len(seq_len_);
  if (sources_.empty()) throw Error("packing: no data sources; a training stage needs at least one");
  double total = 0;
  std::string names;
  for (const auto& s : sources_) {
    if (!(s.weight > 0) || !std::isfinite(s.weight))
      throw Error("data source \"" + s.name + "\": mixture weight must be a positive number, got " + std::to_string(s.weight));
    for (size_t k = 0; k < s.examples.size(); ++k) {
      const auto& ex = s.examples[k];
      if (ex.tokens.size() < 2 || ex.weights.size() != ex.tokens.size())
        throw Error("data source \"" + s.name + "\": example " + std::to_string(k) + " has " +
                    std::to_string(ex.tokens.size()) + " tokens and " + std::to_string(ex.weights.size()) +
                    " weights; an example needs at least 2 tokens and one weight per token");
    }
    if (s.examples.size() > std::numeric_limits<uint32_t>::max())
      throw Error("data source \"" + s.name + "\": more than 2^32 examples; split the file into several sources");
    if (!s.examples.empty()) total += s.weight;
    names += (names.empty() ? "" : ", ") + s.name;
  }
  if (total == 0) throw Error("packing: every data source is empty (" + names + "); check that the files hold records");
  double acc = 0;
  for (const auto& s : sources_) {
    if (!s.examples.empty()) acc += s.weight / total;
    cumulative_.push_back(acc);
  }
  cur_.sources.resize(sources_.size());
  order_.resize(sources_.size());
  order_epoch_.assign(sources_.size(), std::numeric_limits<uint64_t>::max());
}

const std::vector<uint32_t>& PackedStream::order(size_t source, uint64_t epoch) {
  if (order_epoch_[source] != epoch) {
    order_[source] = shuffled_order(sources_[source].examples.size(), seed_, source, epoch);
    order_epoch_[source] = epoch;
  }
  return order_[source];
}

PackedStream::Draw PackedStream::draw() {
  const double u = to_unit(mix(mix(seed_, kMixtureStream), cur_.drawn));
  size_t s = 0;
  for (size_t i = 0; i < sources_.size(); ++i) {
    if (sources_[i].examples.empty()) continue;
    s = i;  // the last non-empty source also takes u at or above a rounded-down total
    if (u < cumulative_[i]) break;
  }
  auto& pos = cur_.sources[s];
  const size_t example = order(s, pos.epoch)[pos.index];
  if (++pos.index == sources_[s].examples.size()) {
    pos.index = 0;
    ++pos.epoch;
  }
  ++cur_.drawn;
  if (sources_[s].examples[example].tokens.size() > static_cast<size_t>(seq_len_) + 1) ++truncated_;
  return {s, example};
}

size_t PackedStream::previous_example(size_t source) const {
  const auto& pos = cur_.sources[source];
  const size_t n = sources_[source].examples.size();
  if (pos.index > 0) return shuffled_order(n, seed_, source, pos.epoch)[pos.index - 1];
  return shuffled_order(n, seed_, source, pos.epoch - 1)[n - 1];
}

// Next-fit: place examples until one does not fit; that one becomes pending for the next row.
void PackedStream::fill_row(PackedBatch& b, int row) {
  const size_t base = static_cast<size_t>(row) * seq_len_;
  int filled = 0;
  for (int32_t doc = 0; filled < seq_len_; ++doc) {
    const Draw d = cur_.pending >= 0 ? Draw{static_cast<size_t>(cur_.pending), pending_example_} : draw();
    cur_.pending = -1;
    const TokenizedExample& ex = sources_[d.source].examples[d.example];
    const int len = static_cast<int>(std::min(ex.tokens.size(), static_cast<size_t>(seq_len_) + 1));  // truncated
    if (filled + len - 1 > seq_len_) {
      cur_.pending = static_cast<int64_t>(d.source);
      pending_example_ = d.example;
      return;  // the rest of the row stays padding
    }
    for (int j = 0; j + 1 < len; ++j) {
      const size_t at = base + filled + j;
      b.inputs[at] = ex.tokens[j];
      b.targets[at] = ex.tokens[j + 1];
      b.weights[at] = ex.weights[j + 1];
      b.doc_ids[at] = doc;
      b.positions[at] = j;
    }
    filled += len - 1;
  }
}

PackedBatch PackedStream::next_batch(int rows) {
  if (rows < 1) throw Error("packing: a batch needs at least one row, got " + std::to_string(rows));
  PackedBatch b;
  b.rows = rows;
  b.seq_len = seq_len_;
  const size_t n = static_cast<size_t>(rows) * seq_len_;  // [rows, seq_len]; padding: token 0, weight 0, doc -1
  b.inputs.assign(n, 0);
  b.targets.assign(n, 0);
  b.doc_ids.assign(n, -1);
  b.positions.assign(n, 0);
  b.weights.assign(n, 0.0f);
  for (int r = 0; r < rows; ++r) fill_row(b, r);
  return b;
}

DataCursor PackedStream::cursor() const { return cur_; }

void PackedStream::restore(const DataCursor& c) {
  const std::string hint = " (did the recipe's data sources or files change since the checkpoint?)";
  if (c.sources.size() != sources_.size())
    throw Error("data cursor: it has " + std::to_string(c.sources.size()) + " sources, this stream has " +
                std::to_string(sources_.size()) + hint);
  uint64_t total = 0;
  for (size_t s = 0; s < sources_.size(); ++s) {
    const uint64_t n = sources_[s].examples.size();
    const auto& pos = c.sources[s];
    if (pos.index >= std::max<uint64_t>(n, 1) || (n == 0 && pos.epoch > 0))
      throw Error("data cursor: source \"" + sources_[s].name + "\" is at epoch " + std::to_string(pos.epoch) +
                  " index " + std::to_string(pos.index) + " but has " + std::to_string(n) + " examples" + hint);
    total += pos.epoch * n + pos.index;
  }
  if (total != c.drawn)
    throw Error("data cursor: the sources' positions add up to " + std::to_string(total) + " draws, but \"drawn\" is " +
                std::to_string(c.drawn) + hint);
  if (c.pending < -1 || c.pending >= static_cast<int64_t>(sources_.size()) ||
      (c.pending >= 0 && c.sources[c.pending].epoch == 0 && c.sources[c.pending].index == 0))
    throw Error("data cursor: pending source " + std::to_string(c.pending) + " has drawn nothing yet" + hint);
  cur_ = c;
  if (cur_.pending >= 0) pending_example_ = previous_example(static_cast<size_t>(cur_.pending));
}

}  // namespace ethos
