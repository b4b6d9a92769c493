// Fuzz target: vocabulary files (data/tokenizer.cpp: Tokenizer::parse, what Tokenizer::load runs
// on a file's text), then the tokenizer on the same bytes as a caption: split, encode, decode.
#include <string>

#include "fuzz_util.h"
#include "mmgrad/data/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mmgrad;
  const std::string text(reinterpret_cast<const char*>(data), size);
  data::Tokenizer tok;  // only the specials, if the file is rejected
  fuzz::expect_ok_or_error([&] { tok = data::Tokenizer::parse(text); });
  fuzz::expect_ok_or_error([&] {
    std::vector<int64_t> ids = tok.encode(text, -1, true, true);
    for (int64_t id : ids)
      if (id < 0 || id >= tok.vocab_size()) std::abort();
    (void)tok.decode(ids, false);
    (void)tok.encode_batch({text, text.substr(0, text.size() / 2)}, 16, true, true);
  });
  return 0;
}
