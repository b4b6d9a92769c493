// Grad mode: whether ops record the graph. NoGradGuard turns recording off in a scope
// (evaluation, optimizer updates, the backward pass itself), as torch::NoGradGuard does.
#pragma once

namespace mmgrad {

class GradMode {
 public:
  static bool is_enabled() { return enabled_; }
  static void set_enabled(bool on) { enabled_ = on; }

 private:
  // Defined here (inline, constant-initialised) so no TU goes through a TLS init wrapper: with
  // the wrapper, GCC's UBSan null check reads stale flags after the linker relaxes the TLS
  // access and reports a false "store to null pointer" on every NoGradGuard.
  static inline thread_local bool enabled_ = true;
};

class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

class EnableGradGuard {
 public:
  EnableGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(true); }
  ~EnableGradGuard() { GradMode::set_enabled(prev_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace mmgrad
