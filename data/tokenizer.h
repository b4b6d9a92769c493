// Tokenizer: a word-level vocabulary for captions.
//
// Text is lowercased (ASCII) and split into words (runs of letters, digits and any non-ASCII
// bytes) and punctuation marks (each ASCII punctuation character is a token of its own);
// whitespace separates and is dropped. "A red car, parked." -> a | red | car | , | parked | .
// Ids 0-3 are the special tokens; words follow, most frequent first (ties alphabetical), so the
// same texts always give the same vocabulary.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "mmgrad/tensor/tensor.h"

namespace mmgrad::data {

class Tokenizer {
 public:
  static constexpr int64_t kPad = 0;  // fills sequences up to max_len
  static constexpr int64_t kBos = 1;  // beginning of sequence
  static constexpr int64_t kEos = 2;  // end of sequence
  static constexpr int64_t kUnk = 3;  // a word not in the vocabulary
  static constexpr int64_t kNumSpecial = 4;

  // Only the special tokens.
  Tokenizer();
  // A vocabulary of the words in `texts` seen at least min_freq times, at most max_words of
  // them (-1: no limit) besides the special tokens.
  static Tokenizer build(const std::vector<std::string>& texts, int64_t min_freq = 1,
                         int64_t max_words = -1);
  // The lowercased words and punctuation marks of a text (the rule above).
  static std::vector<std::string> split(const std::string& text);

  int64_t vocab_size() const { return static_cast<int64_t>(words_.size()); }
  bool contains(const std::string& word) const { return ids_.count(word) != 0; }
  // kUnk for unknown words.
  int64_t token_to_id(const std::string& word) const;
  // "<pad>", "<bos>", "<eos>", "<unk>" for the specials.
  const std::string& id_to_token(int64_t id) const;

  // Token ids of a text: [BOS] words [EOS]. max_len >= 0 truncates the words so that the whole
  // sequence (specials included) fits, then pads with PAD to exactly max_len; -1 leaves the
  // length as it is.
  std::vector<int64_t> encode(const std::string& text, int64_t max_len = -1, bool add_bos = false,
                              bool add_eos = false) const;
  // int64 [B, T]: T = max_len, or the longest encoded text when max_len is -1.
  Tensor encode_batch(const std::vector<std::string>& texts, int64_t max_len = -1,
                      bool add_bos = false, bool add_eos = false) const;
  // Words joined by spaces (punctuation attached to the word before it). skip_special drops
  // PAD and BOS and stops at the first EOS; otherwise specials appear as "<pad>" etc.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = true) const;
  // The same for a 1-D int64 tensor.
  std::string decode(const Tensor& ids, bool skip_special = true) const;
  // [B, T] int64 -> one string per row.
  std::vector<std::string> decode_batch(const Tensor& ids, bool skip_special = true) const;
  // The content tokens only: drops PAD/BOS, stops at EOS (what BLEU should compare).
  static std::vector<int64_t> strip_special(const std::vector<int64_t>& ids);

  // One token per line after a header line "mmgrad-vocab 1 <size>", specials first. Written
  // atomically. load() checks the header, the size, the specials, duplicates, and that every
  // word is one token under split() (what a corrupt or hand-edited file breaks).
  void save(const std::string& path) const;
  static Tokenizer load(const std::string& path);
  // The same from a vocabulary file's text already in memory; `name` stands for the path in
  // error messages (the fuzz target, fuzz/fuzz_tokenizer.cpp, calls this).
  static Tokenizer parse(const std::string& text, const std::string& name = "<memory>");

 private:
  void add(const std::string& word);
  std::vector<std::string> words_;
  std::unordered_map<std::string, int64_t> ids_;
};

}  // namespace mmgrad::data
