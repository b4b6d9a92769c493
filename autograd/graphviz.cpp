// Graphviz output of the autograd graph (see graphviz.h).
#include "mmgrad/autograd/graphviz.h"

#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "mmgrad/autograd/node.h"
#include "mmgrad/core/file_util.h"

extern char** environ;

namespace mmgrad {
namespace {

// A DOT string literal body: quotes and backslashes escaped, line breaks as \n.
std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string shape_dtype(const Shape& shape, DType dtype) {
  return cat_str(shape.str(), " ", dtype_name(dtype));
}

// Walks the graph from the root's op once (iteratively: graphs can be thousands deep), naming
// each op node and leaf in order of discovery so the text is the same on every run.
class DotWriter {
 public:
  std::string run(const Tensor& root) {
    out_ << "digraph autograd {\n"
         << "  node [fontname=\"Helvetica\", fontsize=11];\n"
         << "  edge [color=\"#555555\"];\n";
    std::string root_id = "output";
    std::string label = root.name().empty() ? "output" : root.name();
    label = cat_str(label, "\n", shape_dtype(root.shape(), root.dtype()));
    if (root.grad_fn()) {
      std::string op = op_id(root.grad_fn().get());
      walk(root.grad_fn().get());
      emit_node(root_id, label, "ellipse", "#f8cecc");
      out_ << "  " << op << " -> " << root_id << ";\n";
    } else {
      // A leaf on its own: the whole graph is that tensor.
      std::string kind = !root.requires_grad() ? "no grad"
                         : root.name().empty() ? "leaf"
                                               : "parameter";
      emit_node(root_id, cat_str(label, "\n", kind), "ellipse", "#f8cecc");
    }
    out_ << "}\n";
    return out_.str();
  }

 private:
  std::string op_id(const Node* n) {
    auto it = ops_.find(n);
    if (it != ops_.end()) return it->second;
    std::string id = cat_str("op", ops_.size());
    ops_.emplace(n, id);
    return id;
  }

  // A leaf is drawn once however many ops read it.
  std::string leaf_id(const TensorImpl* t) {
    auto it = leaves_.find(t);
    if (it != leaves_.end()) return it->second;
    std::string id = cat_str("leaf", leaves_.size());
    leaves_.emplace(t, id);
    bool param = !t->name.empty();
    std::string label = cat_str(param ? t->name + "\n" : std::string(),
                                shape_dtype(t->shape, t->dtype), param ? "\nparameter" : "\nleaf");
    emit_node(id, label, "ellipse", param ? "#d5e8d4" : "#fff2cc");
    return id;
  }

  void emit_node(const std::string& id, const std::string& label, const char* shape,
                 const char* fill) {
    out_ << "  " << id << " [shape=" << shape << ", style=\"filled"
         << (std::string(shape) == "box" ? ",rounded" : "") << "\", fillcolor=\"" << fill
         << "\", label=\"" << escape(label) << "\"];\n";
  }

  void walk(const Node* root) {
    std::vector<const Node*> stack{root};
    std::unordered_map<const Node*, bool> done;
    done[root] = true;
    while (!stack.empty()) {
      const Node* n = stack.back();
      stack.pop_back();
      std::string id = op_id(n);
      emit_node(id, cat_str(n->name(), "\n", shape_dtype(n->out_shape, n->out_dtype)), "box",
                "#dae8fc");
      for (const Edge& e : n->next) {
        if (e.fn) {
          out_ << "  " << op_id(e.fn.get()) << " -> " << id << ";\n";
          if (!done[e.fn.get()]) {
            done[e.fn.get()] = true;
            stack.push_back(e.fn.get());
          }
        } else if (e.leaf) {
          std::string leaf = leaf_id(e.leaf.get());
          out_ << "  " << leaf << " -> " << id << ";\n";
        }
      }
    }
  }

  std::ostringstream out_;
  std::unordered_map<const Node*, std::string> ops_;
  std::unordered_map<const TensorImpl*, std::string> leaves_;
};

// The full path of an executable called `name` on PATH, or "" when there is none.
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (dir.empty()) dir.push_back('.');  // an empty PATH entry means the current directory
    std::string candidate = cat_str(dir, "/", name);
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    start = end + 1;
  }
  return "";
}

}  // namespace

std::string to_dot(const Tensor& root) {
  MMGRAD_CHECK(root.defined(), "to_dot: the tensor to draw is undefined");
  return DotWriter().run(root);
}

void write_dot(const Tensor& root, const std::string& path) {
  write_file_atomic(path, to_dot(root), "write_dot");
}

bool write_svg(const Tensor& root, const std::string& path) {
  MMGRAD_CHECK(!path.empty(), "write_svg: empty output path");
  // graph.svg -> graph.dot (an extension is a '.' after the last '/').
  std::string dot_path = path;
  size_t slash = path.find_last_of('/');
  size_t dot = path.find_last_of('.');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash) && dot > 0)
    dot_path = path.substr(0, dot);
  dot_path += ".dot";
  MMGRAD_CHECK(dot_path != path, "write_svg: output path '", path, "' already ends in .dot");
  write_dot(root, dot_path);

  std::string exe = find_on_path("dot");
  if (exe.empty()) return false;
  // Run Graphviz directly (no shell, so no quoting of paths can go wrong). It writes a temporary
  // file beside the figure, renamed over it only when dot succeeded: like every other writer, a
  // failed or interrupted run leaves the old figure (or none), never half an SVG.
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  std::vector<std::string> args = {"dot", "-Tsvg", "-o", tmp, dot_path};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), environ) != 0) return false;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      std::remove(tmp.c_str());
      return false;
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
      std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return false;
  }
  notify_file_written(path);
  return true;
}

}  // namespace mmgrad
