#include "mmgrad/data/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include "mmgrad/core/error.h"
#include "mmgrad/core/file_util.h"

namespace mmgrad::data {

namespace {

const char* const kSpecialNames[Tokenizer::kNumSpecial] = {"<pad>", "<bos>", "<eos>", "<unk>"};
constexpr const char* kVocabHeader = "mmgrad-vocab 1";

bool is_space(unsigned char c) { return std::isspace(c) != 0; }
bool is_punct(unsigned char c) { return c < 128 && std::ispunct(c) != 0; }

// Punctuation written without a space before it / after it when decoding.
bool attaches_left(const std::string& t) {
  return t.size() == 1 && std::string(".,!?;:)]}%").find(t[0]) != std::string::npos;
}
bool attaches_right(const std::string& t) {
  return t.size() == 1 && std::string("([{").find(t[0]) != std::string::npos;
}

}  // namespace

Tokenizer::Tokenizer() {
  for (const char* s : kSpecialNames) add(s);
}

void Tokenizer::add(const std::string& word) {
  ids_.emplace(word, static_cast<int64_t>(words_.size()));
  words_.push_back(word);
}

std::vector<std::string> Tokenizer::split(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (is_space(c) || is_punct(c)) {
      if (!cur.empty()) out.push_back(std::move(cur)), cur.clear();
      if (is_punct(c)) out.emplace_back(1, ch);
    } else {
      cur.push_back(c < 128 ? static_cast<char>(std::tolower(c)) : ch);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

Tokenizer Tokenizer::build(const std::vector<std::string>& texts, int64_t min_freq,
                           int64_t max_words) {
  MMGRAD_CHECK(min_freq >= 1, "Tokenizer::build: min_freq must be >= 1, got ", min_freq);
  MMGRAD_CHECK(max_words >= -1, "Tokenizer::build: max_words must be -1 (no limit) or >= 0, got ",
               max_words);
  std::map<std::string, int64_t> counts;  // ordered: ties below come out alphabetical
  for (const std::string& t : texts)
    for (std::string& w : split(t)) ++counts[w];
  std::vector<std::pair<std::string, int64_t>> items;
  for (auto& [w, c] : counts)
    if (c >= min_freq) items.emplace_back(w, c);
  std::stable_sort(items.begin(), items.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (max_words >= 0 && static_cast<int64_t>(items.size()) > max_words) items.resize(max_words);
  Tokenizer tok;
  for (auto& [w, c] : items) tok.add(w);
  return tok;
}

int64_t Tokenizer::token_to_id(const std::string& word) const {
  auto it = ids_.find(word);
  return it == ids_.end() ? kUnk : it->second;
}

const std::string& Tokenizer::id_to_token(int64_t id) const {
  MMGRAD_CHECK(id >= 0 && id < vocab_size(), "Tokenizer::id_to_token: id ", id,
               " is outside the vocabulary [0, ", vocab_size(), ")");
  return words_[static_cast<size_t>(id)];
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, int64_t max_len, bool add_bos,
                                       bool add_eos) const {
  const int64_t specials = (add_bos ? 1 : 0) + (add_eos ? 1 : 0);
  MMGRAD_CHECK(max_len == -1 || max_len >= specials, "Tokenizer::encode: max_len must be -1 ",
               "(no padding) or at least the ", specials, " special tokens asked for, got ",
               max_len);
  std::vector<std::string> words = split(text);
  size_t keep = words.size();
  if (max_len >= 0) keep = std::min(keep, static_cast<size_t>(max_len - specials));
  std::vector<int64_t> ids;
  ids.reserve(max_len >= 0 ? static_cast<size_t>(max_len) : keep + 2);
  if (add_bos) ids.push_back(kBos);
  for (size_t i = 0; i < keep; ++i) ids.push_back(token_to_id(words[i]));
  if (add_eos) ids.push_back(kEos);
  if (max_len >= 0) ids.resize(static_cast<size_t>(max_len), kPad);
  return ids;
}

Tensor Tokenizer::encode_batch(const std::vector<std::string>& texts, int64_t max_len, bool add_bos,
                               bool add_eos) const {
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(texts.size());
  size_t longest = 0;
  for (const std::string& t : texts) {
    rows.push_back(encode(t, max_len, add_bos, add_eos));
    longest = std::max(longest, rows.back().size());
  }
  const int64_t T = max_len >= 0 ? max_len : static_cast<int64_t>(longest);
  std::vector<int64_t> flat;
  flat.reserve(rows.size() * static_cast<size_t>(T));
  for (auto& r : rows) {
    r.resize(static_cast<size_t>(T), kPad);
    flat.insert(flat.end(), r.begin(), r.end());
  }
  return Tensor::from_vector(flat, {static_cast<int64_t>(texts.size()), T});
}

std::vector<int64_t> Tokenizer::strip_special(const std::vector<int64_t>& ids) {
  std::vector<int64_t> out;
  for (int64_t id : ids) {
    if (id == kEos) break;
    if (id == kPad || id == kBos) continue;
    out.push_back(id);
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string out;
  bool glue_next = true;  // no space before the first token
  for (size_t i = 0; i < ids.size(); ++i) {
    int64_t id = ids[i];
    MMGRAD_CHECK(id >= 0 && id < vocab_size(), "Tokenizer::decode: id ", id, " at position ", i,
                 " is outside the vocabulary [0, ", vocab_size(), ")");
    if (skip_special) {
      if (id == kEos) break;
      if (id == kPad || id == kBos) continue;
    }
    const std::string& w = words_[static_cast<size_t>(id)];
    if (!glue_next && !attaches_left(w)) out.push_back(' ');
    out += w;
    glue_next = attaches_right(w);
  }
  return out;
}

std::string Tokenizer::decode(const Tensor& ids, bool skip_special) const {
  MMGRAD_CHECK(ids.defined() && ids.dtype() == kInt64 && ids.dim() == 1,
               "Tokenizer::decode: ", "expects a 1-D int64 tensor, got ",
               ids.defined() ? describe(ids) : std::string("an undefined tensor"));
  return decode(ids.to_vector<int64_t>(), skip_special);
}

std::vector<std::string> Tokenizer::decode_batch(const Tensor& ids, bool skip_special) const {
  MMGRAD_CHECK(ids.defined() && ids.dtype() == kInt64 && ids.dim() == 2,
               "Tokenizer::decode_batch: expects an int64 [B, T] tensor, got ",
               ids.defined() ? describe(ids) : std::string("an undefined tensor"));
  std::vector<int64_t> all = ids.to_vector<int64_t>();
  const int64_t B = ids.size(0), T = ids.size(1);
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b)
    out.push_back(
        decode(std::vector<int64_t>(all.begin() + b * T, all.begin() + (b + 1) * T), skip_special));
  return out;
}

void Tokenizer::save(const std::string& path) const {
  std::string s = cat_str(kVocabHeader, " ", vocab_size(), "\n");
  for (const std::string& w : words_) s += w + "\n";
  write_file_atomic(path, s, "Tokenizer::save");
}

Tokenizer Tokenizer::load(const std::string& path) {
  const char* op = "Tokenizer::load";
  std::ifstream in(path, std::ios::binary);
  MMGRAD_CHECK(in.good(), op, ": cannot open '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

Tokenizer Tokenizer::parse(const std::string& text, const std::string& path) {
  const char* op = "Tokenizer::load";
  MMGRAD_CHECK(!text.empty() && text.back() == '\n', op, ": '", path, "' is truncated or not a ",
               "vocabulary file (it does not end with a newline)");
  std::vector<std::string> lines;
  for (size_t start = 0; start < text.size();) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();  // tolerate CRLF files
    lines.push_back(std::move(line));
    start = nl + 1;
  }
  const std::string prefix = std::string(kVocabHeader) + " ";
  MMGRAD_CHECK(lines[0].rfind(prefix, 0) == 0, op, ": '", path, "' is not an mmgrad vocabulary ",
               "(first line should start with '", kVocabHeader, "', got '", lines[0].substr(0, 40),
               "')");
  int64_t size = -1;
  {
    std::string num = lines[0].substr(prefix.size());
    bool digits = !num.empty() && num.size() < 12 &&
                  std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; });
    MMGRAD_CHECK(digits, op, ": '", path, "' has a malformed header line '", lines[0], "'");
    size = std::stoll(num);
  }
  const int64_t got = static_cast<int64_t>(lines.size()) - 1;
  MMGRAD_CHECK(got == size, op, ": '", path, "' declares ", size, " tokens but holds ", got,
               got < size ? " (truncated file)" : " (extra lines: corrupt file)");
  MMGRAD_CHECK(size >= kNumSpecial, op, ": '", path, "' has ", size,
               " tokens, fewer than the 4 special tokens");
  Tokenizer tok;  // starts with the specials
  for (int64_t i = 0; i < kNumSpecial; ++i)
    MMGRAD_CHECK(lines[1 + i] == kSpecialNames[i], op, ": '", path, "' line ", i + 2,
                 ": expected special token '", kSpecialNames[i], "', got '", lines[1 + i], "'");
  for (int64_t i = kNumSpecial; i < size; ++i) {
    const std::string& w = lines[1 + i];
    std::vector<std::string> parts = split(w);
    MMGRAD_CHECK(parts.size() == 1 && parts[0] == w, op, ": '", path, "' line ", i + 2, ": '",
                 w.substr(0, 40), "' is not a single lowercase token (corrupt file?)");
    MMGRAD_CHECK(!tok.contains(w), op, ": '", path, "' line ", i + 2, ": token '", w,
                 "' appears twice (corrupt file?)");
    tok.add(w);
  }
  return tok;
}

}  // namespace mmgrad::data
