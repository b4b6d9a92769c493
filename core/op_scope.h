// OpScope: the name of the user-facing op that is running, for errors raised deep below it.
//
// An allocation failure or a size overflow is detected in Tensor::empty or in the shape layer,
// which do not know which op asked for the memory: one_hot(indices, 1 << 40) allocates its result
// through arange and eq. An op (or a reader) that can ask for a size taken from its arguments or
// from a file opens a scope with its name; the errors below it then start with that name
// ("one_hot: cannot allocate ..."). The outermost scope wins: it is the op the user called.
#pragma once

namespace mmgrad {

class OpScope {
 public:
  explicit OpScope(const char* op) : prev_(current_) {
    if (current_ == nullptr) current_ = op;
  }
  ~OpScope() { current_ = prev_; }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

  // The outermost open scope's op on this thread, or nullptr.
  static const char* current() { return current_; }

 private:
  const char* prev_;
  static inline thread_local const char* current_ = nullptr;
};

// The running op's name, or `fallback` outside any scope.
inline const char* op_name_or(const char* fallback) {
  return OpScope::current() ? OpScope::current() : fallback;
}

}  // namespace mmgrad
