#include "common/format.h"

#include <charconv>
#include <cmath>

#include "common/page.h"
#include "mmgrad/core/error.h"

namespace mmgrad::lesson {
namespace {

struct Spec {
  char fill = ' ';
  char align = 0;  // 0: the type's default
  bool plus = false;
  int width = 0;
  int precision = -1;
  char type = 0;  // 0: the default for the argument
};

[[noreturn]] void bad(std::string_view fmt, const std::string& why) {
  fail(cat_str("lesson::format(\"", std::string(fmt), "\"): ", why));
}

bool is_align(char c) { return c == '<' || c == '>' || c == '^'; }

int read_number(std::string_view spec, size_t& p) {
  int v = 0;
  while (p < spec.size() && spec[p] >= '0' && spec[p] <= '9') {
    v = v * 10 + (spec[p] - '0');
    if (v > 1000) return 1000;  // a width of thousands of characters is a typo; cap it
    ++p;
  }
  return v;
}

Spec parse_spec(std::string_view fmt, std::string_view spec) {
  Spec s;
  size_t p = 0;
  if (spec.size() >= 2 && is_align(spec[1])) {
    s.fill = spec[0];
    s.align = spec[1];
    p = 2;
  } else if (!spec.empty() && is_align(spec[0])) {
    s.align = spec[0];
    p = 1;
  }
  if (p < spec.size() && spec[p] == '+') {
    s.plus = true;
    ++p;
  }
  s.width = read_number(spec, p);
  if (p < spec.size() && spec[p] == '.') {
    ++p;
    if (p >= spec.size() || spec[p] < '0' || spec[p] > '9')
      bad(fmt, cat_str("'{:", std::string(spec), "}': a '.' needs the precision digits after it"));
    s.precision = read_number(spec, p);
  }
  if (p < spec.size()) {
    s.type = spec[p++];
    if (std::string_view("dfegs%").find(s.type) == std::string_view::npos)
      bad(fmt, cat_str("'{:", std::string(spec), "}': unknown type '", s.type,
                       "' (d, f, e, g, % or s)"));
  }
  if (p != spec.size())
    bad(fmt,
        cat_str("'{:", std::string(spec), "}' is not [[fill]align][+][width][.precision][type]"));
  return s;
}

std::string shortest(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string printf_float(double v, char type, int precision, bool plus) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? (plus ? "+inf" : "inf") : "-inf";
  char f[16];
  std::snprintf(f, sizeof f, "%%%s.%d%c", plus ? "+" : "", precision < 0 ? 6 : precision, type);
  char buf[400];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string render(std::string_view fmt, const Spec& s, const FormatArg& a, bool& numeric) {
  using K = FormatArg::Kind;
  numeric = a.kind == K::Int || a.kind == K::Float;
  const char t = s.type;
  if (a.kind == K::Text || a.kind == K::Bool) {
    if (t != 0 && t != 's') bad(fmt, cat_str("type '", t, "' needs a number, got text"));
    std::string v = a.kind == K::Bool ? (a.b ? "true" : "false") : a.s;
    if (s.precision >= 0 && static_cast<size_t>(s.precision) < v.size()) v.resize(s.precision);
    return v;
  }
  if (t == 's') bad(fmt, "type 's' needs text, got a number");
  if (a.kind == K::Int && (t == 0 || t == 'd')) {
    if (s.precision >= 0) bad(fmt, "an integer takes no precision (use {:.2f} for decimals)");
    std::string v = std::to_string(a.i);
    return s.plus && a.i >= 0 ? "+" + v : v;
  }
  if (t == 'd') bad(fmt, "type 'd' needs an integer, got a float");
  const double v = a.kind == K::Int ? static_cast<double>(a.i) : a.f;
  if (t == '%') return printf_float(100.0 * v, 'f', s.precision, s.plus) + "%";
  if (t == 0 && s.precision < 0) {
    if (std::isnan(v)) return "nan";
    std::string r = std::isinf(v) ? (v > 0 ? "inf" : "-inf") : shortest(v);
    return s.plus && v >= 0 ? "+" + r : r;
  }
  return printf_float(v, t == 0 ? 'g' : t, s.precision, s.plus);
}

}  // namespace

void write_out(const std::string& s) {
  std::fputs(s.c_str(), stdout);
  page::record_text(s);
}

std::string vformat(std::string_view fmt, const std::vector<FormatArg>& args) {
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      bad(fmt, "a lone '}' (write '}}' for a brace)");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const size_t close = fmt.find('}', i);
    if (close == std::string_view::npos) bad(fmt, "a '{' without its '}'");
    std::string_view field = fmt.substr(i + 1, close - i - 1);
    if (!field.empty() && field[0] != ':')
      bad(fmt, cat_str("'{", std::string(field),
                       "}': fields take no index or name, only {} or {:spec}"));
    if (next >= args.size())
      bad(fmt, cat_str("more {} fields than the ", args.size(), " argument",
                       args.size() == 1 ? "" : "s", " given"));
    const Spec s = parse_spec(fmt, field.empty() ? field : field.substr(1));
    bool numeric = false;
    std::string v = render(fmt, s, args[next++], numeric);
    const size_t len = v.size();
    if (static_cast<size_t>(s.width) > len) {
      const size_t pad = s.width - len;
      const char align = s.align ? s.align : (numeric ? '>' : '<');
      const size_t left = align == '<' ? 0 : align == '>' ? pad : pad / 2;
      v = std::string(left, s.fill) + v + std::string(pad - left, s.fill);
    }
    out += v;
    i = close;
  }
  if (next != args.size())
    bad(fmt, cat_str(args.size(), " argument", args.size() == 1 ? "" : "s", " given but only ",
                     next, " {} field", next == 1 ? "" : "s"));
  return out;
}

}  // namespace mmgrad::lesson
