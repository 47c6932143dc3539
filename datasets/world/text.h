// Text helpers of the scenario world: the word unit budgets are counted in, tidying of
// rendered templates, and the name/number normaliser the leakage checks compare texts with.
#pragma once
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ethos {

// The budget unit: whitespace-separated words (the sentencepiece tokenizer is trained later,
// on this very data, so tokens cannot be counted here). Deterministic and tokenizer-free.
size_t count_words(std::string_view s);

std::string capitalize(std::string s);  // first character upper-cased (ASCII)
// Collapses runs of spaces, drops spaces before , . ; : ? ! and at line ends/starts.
std::string tidy(std::string_view s);
// Lower-cased words made of letters, digits, ' and - (punctuation stripped): "Turn it down," -> turn it down
std::vector<std::string> plain_words(std::string_view s);
std::string first_word(std::string_view s);  // plain_words(s)[0] or ""
std::string lower(std::string_view s);

// Leakage normaliser: lower-cases, splits into word and punctuation tokens, replaces every
// occurrence of a known name (any pool value: people, companies, AI names, days, projects...)
// by "<n>" and every digit run by "#", and joins the tokens with single spaces. Two prompts
// that differ only in names and numbers normalise to the same string.
class NameNormalizer {
 public:
  explicit NameNormalizer(const std::vector<std::string>& names);
  std::string operator()(std::string_view text) const;

 private:
  // first token -> candidate names as token lists, longest first
  std::unordered_map<std::string, std::vector<std::vector<std::string>>> by_first_;
};

// Tokens as NameNormalizer sees them (before name replacement).
std::vector<std::string> normalizer_tokens(std::string_view text);

}  // namespace ethos
