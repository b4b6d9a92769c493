// Fuzz target: checkpoint files (nn/checkpoint.cpp: load_state_dict). The reader takes a path,
// so the input is served as an in-memory file (fuzz_util.h, MemFile).
#include "fuzz_util.h"
#include "mmgrad/nn/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mmgrad;
  fuzz::MemFile file(data, size);
  fuzz::expect_ok_or_error([&] {
    nn::StateDict state = load_state_dict(file.path());
    // What was loaded is usable: every tensor's bytes can be read.
    for (const auto& [name, t] : state) {
      if (name.empty()) std::abort();
      if (t.numel() > 0) (void)t.to(kFloat64).sum().item();
    }
  });
  return 0;
}
