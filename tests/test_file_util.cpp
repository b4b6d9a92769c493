// The atomic writer's temporary files (core/file_util.h): a writer reuses or removes the stale
// temporaries of killed writers and never touches a live writer's temporary or any other file;
// kill -9 during checkpoint saves leaves the file loadable and no pile of temporaries.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "file_test_util.h"
#include "mmgrad/core/error.h"
#include "mmgrad/core/file_util.h"
#include "mmgrad/mmgrad.h"
#include "mmgrad/nn/checkpoint.h"

using namespace mmgrad;
using doctest::Contains;
using mmgrad::testing::read_text;
using mmgrad::testing::TempDir;
namespace fs = std::filesystem;

namespace {

void write_plain(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}

// The names in the folder that start with "<name>.tmp.", sorted.
std::vector<std::string> temporaries(const TempDir& dir, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir.path)) {
    const std::string f = e.path().filename().string();
    if (f.rfind(name + ".tmp.", 0) == 0) out.push_back(f);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A file locked the way a live writer holds its temporary (a separate open file description, so
// it conflicts with the writer's own lock even within this process).
struct HeldLock {
  int fd;
  explicit HeldLock(const std::string& path) {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  }
  ~HeldLock() { ::close(fd); }
};

}  // namespace

TEST_CASE("AtomicFile: stale temporaries are reused or removed, live ones and others kept") {
  TempDir dir("fileutil");
  const std::string p = dir.file("model.ckpt");
  write_plain(p, "old");

  // A live writer (a real AtomicFile, still open) takes the first slot.
  AtomicFile live(p, "test");
  CHECK(live.temp_path() == p + ".tmp.0");
  live.write("live bytes", 10);

  // A writer that died mid-save: a child process creates its temporary and exits without
  // committing or cleaning up (_exit runs no destructors, as kill -9 would not).
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      AtomicFile f(p, "child");
      f.write("dead writer", 11);
      ::_exit(f.temp_path() == p + ".tmp.1" ? 0 : 3);
    } catch (...) {
      ::_exit(2);
    }
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(fs::exists(p + ".tmp.1"));  // its pid is gone, its temporary is left

  // More stale temporaries (unlocked files in the pattern) and one locked by a live "writer".
  write_plain(p + ".tmp.3", "stale 3");
  write_plain(p + ".tmp.7", "stale 7");
  HeldLock locked(p + ".tmp.2");
  // Files that must never be touched: outside the 8 slots, not a number, the old per-pid pattern,
  // another target's temporary, and a symbolic link in a slot (and the file it points to).
  const std::vector<std::string> others = {p + ".tmp.8",
                                           p + ".tmp.x",
                                           p + ".tmp.123.0",
                                           p + ".tmp.05",
                                           dir.file("model.ckpt2.tmp.1"),
                                           dir.file("other.ckpt.tmp.4")};
  for (const auto& f : others) write_plain(f, "keep");
  write_plain(dir.file("victim"), "victim");
  fs::create_symlink(dir.file("victim"), p + ".tmp.4");

  write_file_atomic(p, "new", "test");
  CHECK(read_text(p) == "new");
  // The save reused the first free slot (1, the dead child's) and removed the other stale ones.
  CHECK_FALSE(fs::exists(p + ".tmp.1"));
  CHECK_FALSE(fs::exists(p + ".tmp.3"));
  CHECK_FALSE(fs::exists(p + ".tmp.7"));
  // The live ones are untouched.
  CHECK(fs::exists(p + ".tmp.0"));
  CHECK(fs::exists(p + ".tmp.2"));
  for (const auto& f : others) CHECK_MESSAGE(read_text(f) == "keep", f);
  CHECK(fs::is_symlink(fs::symlink_status(p + ".tmp.4")));
  CHECK(read_text(dir.file("victim")) == "victim");

  // The live writer finishes undisturbed; its file replaces the newer one, as last writer.
  live.commit();
  CHECK(read_text(p) == "live bytes");
  CHECK_FALSE(fs::exists(p + ".tmp.0"));
  CHECK(temporaries(dir, "model.ckpt") ==
        std::vector<std::string>{"model.ckpt.tmp.05", "model.ckpt.tmp.123.0", "model.ckpt.tmp.2",
                                 "model.ckpt.tmp.4", "model.ckpt.tmp.8", "model.ckpt.tmp.x"});
}

TEST_CASE("AtomicFile: a failed or abandoned write leaves no temporary, the file intact") {
  TempDir dir("fileutil");
  const std::string p = dir.file("a.txt");
  write_file_atomic(p, "first", "test");
  write_plain(p + ".tmp.0", "a stale temporary of a killed writer");
  {
    AtomicFile f(p, "test");
    CHECK(f.temp_path() == p + ".tmp.0");  // reused
    f.write("half", 4);
  }  // abandoned
  CHECK(read_text(p) == "first");
  CHECK(temporaries(dir, "a.txt").empty());
}

TEST_CASE("AtomicFile: more simultaneous writers of one file than slots is a named error") {
  TempDir dir("fileutil");
  const std::string p = dir.file("busy.bin");
  std::vector<std::unique_ptr<AtomicFile>> writers;
  for (int k = 0; k < 8; ++k) {
    writers.push_back(std::make_unique<AtomicFile>(p, "test"));
    CHECK(writers.back()->temp_path() == p + ".tmp." + std::to_string(k));
  }
  const std::string want = "save: cannot write '" + p + "': all 8 temporary names";
  CHECK_THROWS_WITH_AS(AtomicFile(p, "save"), Contains(want.c_str()), Error);
  writers[3]->write("three", 5);
  writers[3]->commit();
  writers.clear();  // the others abandon
  CHECK(read_text(p) == "three");
  CHECK(temporaries(dir, "busy.bin").empty());
}

TEST_CASE("AtomicFile: threads writing the same file concurrently") {
  TempDir dir("fileutil");
  const std::string p = dir.file("shared.txt");
  std::vector<std::thread> threads;
  std::vector<int> errors(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        try {
          write_file_atomic(p, "writer " + std::to_string(t) + " pass " + std::to_string(i),
                            "test");
        } catch (const Error&) {
          ++errors[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) CHECK(errors[t] == 0);
  CHECK(read_text(p).rfind("writer ", 0) == 0);
  CHECK(read_text(p).find("pass 49") != std::string::npos);  // some writer's last pass is last
  CHECK(temporaries(dir, "shared.txt").empty());
}

TEST_CASE("AtomicFile: kill -9 during checkpoint saves leaves a loadable file and <= 1 temporary") {
  TempDir dir("fileutil");
  const std::string p = dir.file("run.ckpt");
  // Checkpoints of 4 MB (a save takes ~5-40 ms here, most of it in write and fsync). Each round
  // the parent writes checkpoint c, a child saves a, b, a, b, ... in a loop, reporting each
  // finished save through a pipe, and is killed with SIGKILL once it has finished round % 3
  // saves, after a further random 0..30 ms. The file must then be one of a, b, c, whole.
  auto ckpt = [](double v) { return nn::StateDict{{"w", Tensor::full({1 << 20}, v, kFloat32)}}; };
  const nn::StateDict a = ckpt(1.0), b = ckpt(2.0), c = ckpt(3.0);
  Generator delays(2024);
  const int kills = 10;
  int left_temp = 0, completed = 0;
  for (int round = 0; round < kills; ++round) {
    save(c, p);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(fds[0]);
      try {
        for (int i = 0;; ++i) {
          save(i % 2 ? b : a, p);
          const char done = 1;
          if (::write(fds[1], &done, 1) != 1) ::_exit(3);
        }
      } catch (...) {
        ::_exit(2);
      }
    }
    ::close(fds[1]);
    for (int k = 0; k < round % 3; ++k) {
      char done = 0;
      REQUIRE(::read(fds[0], &done, 1) == 1);
    }
    const double u = Tensor::rand({1}, kFloat64, &delays).item();
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int>(u * 30000)));
    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK_MESSAGE(WIFSIGNALED(status), "the saving child ended by itself: ", status);
    ::close(fds[0]);

    // At most one temporary: the one the killed save was writing (the previous saves reused
    // the same slot).
    const auto temps = temporaries(dir, "run.ckpt");
    CHECK(temps.size() <= 1);
    if (!temps.empty()) {
      CHECK(temps[0] == "run.ckpt.tmp.0");
      ++left_temp;
    }
    // The checkpoint itself is always whole and valid, never half-written.
    nn::StateDict got = load_state_dict(p);
    REQUIRE(got.size() == 1);
    const std::vector<float> w = got[0].second.to_vector<float>();
    CHECK((w.front() == w.back() && (w[0] == 1.0f || w[0] == 2.0f || w[0] == 3.0f)));
    completed += w[0] != 3.0f;
  }
  MESSAGE("kill -9 x ", kills, " during a loop of 4 MB saves: ", left_temp,
          " kills left a temporary (never more than 1), ", completed,
          " rounds completed a save before the kill; the file loaded every time");
  // Both outcomes happened, else the test exercised nothing.
  CHECK(left_temp >= 1);
  CHECK(completed >= 6);  // the rounds that waited for finished saves
  // The next save reuses or removes the temporary: none remains.
  save(a, p);
  CHECK(temporaries(dir, "run.ckpt").empty());
  CHECK(load_state_dict(p)[0].second.to_vector<float>()[0] == 1.0f);
}

// The file-written observer (the lesson pages' hook): told once per completed write, with the
// path the writer gave; never for an abandoned write; its exception does not fail the write.
namespace {
std::vector<std::string>& observed() {
  static std::vector<std::string> v;
  return v;
}
void observe(const std::string& path) { observed().push_back(path); }
void observe_and_throw(const std::string& path) {
  observed().push_back(path);
  throw std::runtime_error("observer trouble");
}
}  // namespace

TEST_CASE("AtomicFile: the file-written observer hears of each completed write, and only those") {
  TempDir tmp("observer");
  observed().clear();
  set_file_written_observer(&observe);
  write_file_atomic(tmp.file("a.svg"), "<svg/>", "test");
  {
    AtomicFile f(tmp.file("abandoned.bin"), "test");
    f.write("x", 1);
  }  // destroyed without commit: not written, not heard of
  write_file_atomic(tmp.file("sub/b.csv"), "1,2\n", "test");
  notify_file_written(tmp.file("by_dot.svg"));  // a writer outside mmgrad reports its file
  CHECK(observed() ==
        std::vector<std::string>{tmp.file("a.svg"), tmp.file("sub/b.csv"), tmp.file("by_dot.svg")});

  set_file_written_observer(&observe_and_throw);
  CHECK_NOTHROW(write_file_atomic(tmp.file("c.svg"), "<svg/>", "test"));
  CHECK(read_text(tmp.file("c.svg")) == "<svg/>");
  CHECK(observed().back() == tmp.file("c.svg"));

  set_file_written_observer(nullptr);
  write_file_atomic(tmp.file("d.svg"), "<svg/>", "test");
  CHECK(observed().back() == tmp.file("c.svg"));  // off
}
