// Word counting, tidying and name/number normalisation for the scenario world.
#include "datasets/world/text.h"

#include <algorithm>
#include <cctype>

namespace ethos {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

}  // namespace

size_t count_words(std::string_view s) {
  size_t n = 0;
  bool in_word = false;
  for (char c : s) {
    if (is_space(c)) {
      in_word = false;
    } else if (!in_word) {
      in_word = true;
      ++n;
    }
  }
  return n;
}

std::string capitalize(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string tidy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == ' ' || c == '\t') {
      // keep one space, and only between two visible characters that need it
      size_t j = i;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      const bool at_start = out.empty() || out.back() == '\n';
      const bool at_end = j >= s.size() || s[j] == '\n';
      const bool before_punct = j < s.size() && std::string_view(",.;:?!").find(s[j]) != std::string_view::npos;
      if (!at_start && !at_end && !before_punct) out += ' ';
      i = j - 1;
      continue;
    }
    out += c;
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::vector<std::string> plain_words(std::string_view s) {
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    while (!cur.empty() && (cur.back() == '\'' || cur.back() == '-')) cur.pop_back();
    size_t k = 0;
    while (k < cur.size() && (cur[k] == '\'' || cur[k] == '-')) ++k;
    if (k < cur.size()) words.push_back(cur.substr(k));
    cur.clear();
  };
  for (char c : s) {
    if (is_word_char(c) || c == '\'' || c == '-') cur += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else flush();
  }
  flush();
  return words;
}

std::string first_word(std::string_view s) {
  const auto w = plain_words(s);
  return w.empty() ? "" : w.front();
}

std::vector<std::string> normalizer_tokens(std::string_view text) {
  std::vector<std::string> toks;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (is_space(c)) {
      ++i;
    } else if (is_word_char(c)) {
      size_t j = i;
      bool digits = true;
      while (j < text.size() && is_word_char(text[j])) {
        digits = digits && std::isdigit(static_cast<unsigned char>(text[j]));
        ++j;
      }
      toks.push_back(digits ? "#" : lower(text.substr(i, j - i)));
      i = j;
    } else {
      toks.emplace_back(1, c);
      ++i;
    }
  }
  return toks;
}

NameNormalizer::NameNormalizer(const std::vector<std::string>& names) {
  for (const auto& n : names) {
    auto toks = normalizer_tokens(n);
    if (toks.empty()) continue;
    by_first_[toks.front()].push_back(std::move(toks));
  }
  for (auto& [first, list] : by_first_) {
    std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
      return a.size() != b.size() ? a.size() > b.size() : a < b;
    });
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
}

std::string NameNormalizer::operator()(std::string_view text) const {
  const auto toks = normalizer_tokens(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < toks.size();) {
    size_t matched = 0;
    auto it = by_first_.find(toks[i]);
    if (it != by_first_.end()) {
      for (const auto& name : it->second) {
        if (i + name.size() > toks.size()) continue;
        if (std::equal(name.begin(), name.end(), toks.begin() + static_cast<std::ptrdiff_t>(i))) {
          matched = name.size();
          break;
        }
      }
    }
    if (!out.empty()) out += ' ';
    if (matched) {
      out += "<n>";
      i += matched;
    } else {
      out += toks[i];
      ++i;
    }
  }
  return out;
}

}  // namespace ethos
